"""Record conversion: one reader per source format (``hl7v2/``, ``cda/``, ``fhir/``), each
turning one input into one FHIR transaction (``base.Conversion``); the ingest path applies it."""
