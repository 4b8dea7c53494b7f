"""The ways records come in: HL7 v2 over HTTP and MLLP, CDA documents, batches as jobs; each
input converted by its reader (``fhir_exchange/convert``) and applied as one transaction."""
