"""The FHIR REST API (http.html of R4) as a FastAPI router mounted at ``/fhir``."""
