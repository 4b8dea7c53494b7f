"""The HL7 v2 reader: ``read(data, source)`` turns a message or a batch into Conversions
(``reader.py`` says which parser and why; ``resources.py`` which segment becomes what)."""

from fhir_exchange.convert.hl7v2.reader import read, read_each

__all__ = ["read", "read_each"]
