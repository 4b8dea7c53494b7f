"""CDA R2 reader: C-CDA and mainland WS/T 500 shared documents → one FHIR transaction
(``reader.read``). Mapping tables are the data files beside these modules; README.md names
their sources and the choices made where the standards are silent."""

from fhir_exchange.convert.cda.reader import read

__all__ = ["read"]
