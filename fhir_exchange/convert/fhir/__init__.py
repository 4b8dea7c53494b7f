"""FHIR bundles from other profiles, normalised to BayLink's shared profile (reader.py)."""
