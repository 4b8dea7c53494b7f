"""The Hong Kong Elderly Health Care Voucher: eligibility, the account ledger and claims.

- ``rules.py`` + ``rules.json``: the scheme's rules as dated, sourced data; the monthly RMB
  conversion factors (``conversion_factors.json``).
- ``models.py``: the ledger's tables (accounts keyed by the person's identity document's blind
  index, claims, reward lots, immutable entries).
- ``ledger.py``: the repository (all SQL on those tables; the account row lock).
- ``eligibility.py``: who may use vouchers for what, where, in words.
- ``claims.py``: submit, void, refund; ``tasks.py``: the beat's annual credit and rewards.
- ``api.py``: the ``/vouchers`` routes, and ``balance_for`` for the patient's page.
"""
