"""Referrals and the Elderly Health Care Voucher: closed-loop cross-border referrals
(ServiceRequest + Task, HL7 BSeR) and voucher eligibility, balance and claims.

Builds on ``fhir_exchange`` (storage, REST) and ``consent`` (release gate). Filled in by
the referrals issue.
"""
