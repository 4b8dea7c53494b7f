"""Consent: the release gate that decides what leaves BayLink, and the patient's consent page.

Implements ``fhir_exchange.ports.ReleaseGate`` from the patient's FHIR Consents (IHE PCF,
PIPL Art. 29/39, Hong Kong eHealth sharing consent). Filled in by the consent issue; until
then the composition root plugs in ``fhir_exchange``'s allow-all gate.
"""
