"""Storage of FHIR resources: versioned rows, history, search index tables, and the
request-scoped repository through which all access goes."""
