"""The FHIR core of BayLink: storage, search, REST, conversion, identity and audit.

It knows nothing of consent rules: every resource it releases passes the
``ReleaseGate`` port (``fhir_exchange.ports``) that the composition root plugs in.
"""
