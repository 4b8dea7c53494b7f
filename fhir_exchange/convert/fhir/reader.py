"""FHIR R4 input from systems that already speak FHIR, in their own profiles: a Bundle (of
type transaction, batch, collection, document or message) or a single resource, normalised to
BayLink's shared profile and returned as one transaction:

- identity documents under their BayLink systems (aliases such as a national OID or another
  registry's URI become the preferred system; numbers in canonical form — this is what
  ``validation.canonical_identifiers`` does on every write, here applied before matching);
- every coding kept, and beside it the shared coding its code system maps to (the
  terminology's concept maps: mainland clinical ICD-10 → WHO ICD-10, local lab codes → LOINC,
  drug codes → ATC), marked as BayLink's translation (``userSelected`` false);
- displays in the three languages where the terminology has them (the R4 ``translation``
  extension on ``Coding.display``);
- everything else — unknown extensions included — kept as sent.

A document Bundle is kept whole (one entry) and its resources are written too; a message
Bundle's MessageHeader is dropped (the transport is BayLink's own). Patients become
conditional updates on their best identity document. ``message_id`` is Bundle.identifier
(system|value), else its id, else a digest of the input.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.identity.documents import InvalidIdentifier, canonical, document_for

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
LANGUAGES = ("en", "zh-Hant", "zh-Hans")
# shared target systems, by the source systems the shipped concept maps translate
SHARED = ("http://hl7.org/fhir/sid/icd-10", "http://loinc.org", "http://www.whocc.no/atc", "http://unitsofmeasure.org")


def _terminology() -> Any | None:
    import terminology
    from terminology import api

    return terminology if api.configured() else None


def _coding_additions(coding: dict[str, Any], terms: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The coding with displays in three languages, and the shared codings it maps to."""
    system, code = coding.get("system"), coding.get("code")
    if not system or not code or terms is None:
        return coding, []
    enriched = dict(coding)
    display = coding.get("display") or terms.display(system, code)
    if display:
        enriched["display"] = display
        translations = []
        for language in LANGUAGES:
            words = terms.display(system, code, language)
            if words and words != display:
                translations.append({"url": TRANSLATION, "extension": [{"url": "lang", "valueCode": language},
                                                                       {"url": "content", "valueString": words}]})
        if translations:
            known = {e.get("extension", [{}])[0].get("valueCode") for e in (coding.get("_display") or {}).get("extension") or []}
            extra = [t for t in translations if t["extension"][0]["valueCode"] not in known]
            if extra:
                enriched["_display"] = {"extension": [*((coding.get("_display") or {}).get("extension") or []), *extra]}
    shared = []
    if system not in SHARED:
        for match in terms.translate(system, code):
            if match.system in SHARED and match.equivalence in ("equivalent", "equal", "wider", "subsumes", "relatedto"):
                shared.append({"system": match.system, "code": match.code,
                               **({"display": match.display} if match.display else {}), "userSelected": False})
    return enriched, shared


def _normalise(node: Any, terms: Any) -> Any:
    if isinstance(node, list):
        return [_normalise(item, terms) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _normalise(value, terms) for key, value in node.items()}
    if isinstance(result.get("coding"), list):  # a CodeableConcept
        codings: list[dict[str, Any]] = []
        seen = set()
        for coding in result["coding"]:
            enriched, shared = _coding_additions(coding, terms) if isinstance(coding, dict) else (coding, [])
            for item in (enriched, *shared):
                key = (item.get("system"), item.get("code")) if isinstance(item, dict) else None
                if key not in seen:
                    seen.add(key)
                    codings.append(item)
        result["coding"] = codings
    if isinstance(result.get("identifier"), list):
        identifiers = []
        for identifier in result["identifier"]:
            if isinstance(identifier, dict) and document_for(identifier.get("system")) and identifier.get("value"):
                try:
                    system, value = canonical(identifier["system"], str(identifier["value"]))
                    identifier = {**identifier, "system": system, "value": value}
                except InvalidIdentifier:
                    pass  # refused with its reason when written
            identifiers.append(identifier)
        result["identifier"] = identifiers
    return result


def _best_document(patient: dict[str, Any]) -> tuple[str, str] | None:
    for identifier in patient.get("identifier") or []:
        if document_for(identifier.get("system")) and identifier.get("value"):
            return identifier["system"], identifier["value"]
    return None


def _entry(resource: dict[str, Any], full_url: str | None) -> dict[str, Any]:
    full_url = full_url if full_url and full_url.startswith("urn:uuid:") else f"urn:uuid:{uuid.uuid4()}"
    resource_type = resource["resourceType"]
    if resource_type == "Patient" and (document := _best_document(resource)):
        request = {"method": "PUT", "url": f"Patient?identifier={document[0]}|{document[1]}"}
        resource = {k: v for k, v in resource.items() if k != "id"}
    else:
        request = {"method": "POST", "url": resource_type}
        resource = {k: v for k, v in resource.items() if k != "id"}
    return {"fullUrl": full_url, "resource": resource, "request": request}


def _rewrite_references(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite_references(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _rewrite_references(value, ids) for key, value in node.items()}
    reference = result.get("reference")
    if isinstance(reference, str) and reference in ids:
        result["reference"] = ids[reference]
    return result


def read(data: bytes, source: Source) -> Conversion:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ConversionError(f"not JSON: {error}", code="AR", line=getattr(error, "lineno", None)) from error
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise ConversionError("the input is not a FHIR resource (no resourceType)", code="AR", element="resourceType")
    terms = _terminology()
    document = _normalise(document, terms)
    identifier = document.get("identifier") if document.get("resourceType") == "Bundle" else None
    message_id = (f"{identifier.get('system', '')}|{identifier.get('value', '')}" if isinstance(identifier, dict)
                  and identifier.get("value") else document.get("id") or hashlib.sha256(data).hexdigest())
    if document["resourceType"] != "Bundle":
        entries = [_entry(document, None)]
        kind = document["resourceType"]
    elif document.get("type") in ("transaction", "batch"):
        entries = [e for e in document.get("entry") or [] if isinstance(e, dict)]
        kind = f"Bundle/{document['type']}"
        if document.get("type") == "batch":
            entries = [e for e in entries if (e.get("request") or {}).get("method") in ("POST", "PUT")]
    elif document.get("type") in ("collection", "document", "message", "searchset"):
        raw = [e for e in document.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        raw = [e for e in raw if e["resource"].get("resourceType") != "MessageHeader"]
        ids: dict[str, str] = {}
        entries = []
        for item in raw:
            entry = _entry(item["resource"], item.get("fullUrl"))
            resource = item["resource"]
            for alias in filter(None, (item.get("fullUrl"), f"{resource['resourceType']}/{resource.get('id')}"
                                       if resource.get("id") else None)):
                ids[alias] = entry["fullUrl"]
            entries.append(entry)
        entries = [_rewrite_references(entry, ids) for entry in entries]
        if document.get("type") == "document":
            entries.insert(0, {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": document,
                               "request": {"method": "POST", "url": "Bundle"}})
        kind = f"Bundle/{document['type']}"
    else:
        raise ConversionError(f"a Bundle of type '{document.get('type')}' carries nothing to store", element="Bundle.type")
    if not entries:
        raise ConversionError("the input carries no resources to store", element="Bundle.entry")
    return Conversion("fhir", str(message_id)[:255], kind, {"resourceType": "Bundle", "type": "transaction",
                                                           "entry": entries}, data, "application/fhir+json",
                      version=str((document.get("meta") or {}).get("versionId") or "") or None)
