"""CDA R2 documents (C-CDA and mainland WS/T 500) → one FHIR transaction.

The transaction carries:

- the Patient as a conditional update on its best identifier (an identity document number
  where the document has one), so the same person sent twice is one Patient;
- every discrete resource the document holds (Practitioner, Organization, Encounter,
  Condition, Observation, …) POSTed with a urn:uuid fullUrl (Practitioner, Organization and
  Location as conditional creates on their identifier);
- the Composition as a conditional update on its identifier (the document's setId), so a
  later version of the document replaces the earlier one;
- the ``document`` Bundle (Composition first, then every resource it refers to) POSTed as a
  Bundle resource. Its entries share their fullUrls with the transaction's entries, so the
  server rewrites the references inside the stored document to the stored resources
  (``Patient/123``): the document is then known as the patient's data to the release gate
  and the audit trail, exactly as its discrete resources are.

A document whose body is not XML (nonXMLBody: a PDF, plain text, a reference to a file)
becomes a DocumentReference with the attachment, which the Composition's one section
points at.
"""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.convert.cda import wst500
from fhir_exchange.convert.cda.context import Context, Terms
from fhir_exchange.convert.cda.datatypes import attachment_data, codeable, date_time, identifier, instant, period
from fhir_exchange.convert.cda.header import (
    attesters,
    authors,
    custodian,
    encompassing_encounter,
    patient,
    reference,
    token,
)
from fhir_exchange.convert.cda.sections import body_sections, plain_narrative
from fhir_exchange.convert.cda.tables import ccda_documents, value_map
from fhir_exchange.convert.cda.xml import Element, attr, child, children, fail, parse, template_ids, text
from terminology import api as terminology_api

CONTENT_TYPE = "application/xml"
BAY_AREA_PROFILES = ("hk", "cn", "mo")
BAY_AREA_REALMS = ("CN", "HK", "MO")
# Hong Kong, Macao and the mainland all keep UTC+8 (no daylight saving): a Bay Area document's
# local time without an offset is read as +08:00.
BAY_AREA_OFFSET = "+08:00"
_CONFIGURED: Any = object()


def read(data: bytes, source: Source, *, terminology: Terms | None = _CONFIGURED) -> Conversion:
    """Convert one CDA document. ``terminology`` defaults to the process's configured one
    (``terminology.api.configured()``); None converts without translating codes."""
    root = parse(data)
    terms = terminology_api.configured() if terminology is _CONFIGURED else terminology
    document = wst500.document_type(root)
    language = attr(child(root, "languageCode"), "code")
    realm = attr(child(root, "realmCode"), "code")
    ctx = Context(terms, language=language, wst500=document is not None)
    if document is not None or realm in BAY_AREA_REALMS or source.profile in BAY_AREA_PROFILES:
        ctx.default_offset = BAY_AREA_OFFSET
    ctx.index_narrative(root)

    doc_id_el = child(root, "id")
    doc_id = identifier(ctx, doc_id_el)
    if doc_id is None or doc_id_el is None:
        raise fail("the document has no id (ClinicalDocument/id): it cannot be told apart from others",
                   doc_id_el if doc_id_el is not None else root)
    message_id = _message_id(doc_id_el)
    when_el = child(root, "effectiveTime")
    written = date_time(ctx, when_el, strict=True)
    if not written:
        raise fail("the document has no effectiveTime: when was it written?", when_el if when_el is not None else root)
    version = attr(child(root, "versionNumber"), "value")

    patient_url = patient(ctx, root)
    encounter_url = encompassing_encounter(ctx, root)
    author_refs = authors(ctx, children(root, "author"))
    custodian_url = custodian(ctx, root)
    attested = attesters(ctx, root)

    code_el = child(root, "code")
    if document is not None:
        doc_type = wst500.composition_type(document, code_el)
        event = wst500.event_name(document)
    else:
        doc_type = codeable(ctx, code_el) or {}
        event = _ccda_name(root, doc_type)
    title = text(child(root, "title")) or doc_type.get("text") or _first_display(doc_type) or event
    if not doc_type:
        doc_type = {"text": title}

    composition: dict[str, Any] = {"resourceType": "Composition"}
    set_id = identifier(ctx, child(root, "setId"))
    composition["identifier"] = set_id or doc_id
    composition["status"] = "final" if child(root, "legalAuthenticator") is not None else "preliminary"
    composition["type"] = doc_type
    composition["subject"] = {"reference": patient_url}
    if encounter_url:
        composition["encounter"] = {"reference": encounter_url}
    composition["date"] = written
    if not author_refs:
        ctx.warn("the document names no author: the custodian (or 'unknown') stands in", root)
        author_refs = [reference(custodian_url) or {"display": "unknown"}]
    composition["author"] = author_refs
    composition["title"] = title
    confidentiality = attr(child(root, "confidentialityCode"), "code")
    if confidentiality in value_map("confidentiality"):
        composition["confidentiality"] = confidentiality
    if attested:
        composition["attester"] = attested
    if custodian_url:
        composition["custodian"] = {"reference": custodian_url}
    relates = _relates_to(ctx, root)
    if relates:
        composition["relatesTo"] = relates
    events = _events(ctx, root)
    if events:
        composition["event"] = events

    body = child(root, "component")
    structured = child(body, "structuredBody")
    unstructured = child(body, "nonXMLBody")
    if structured is not None:
        composition["section"] = body_sections(ctx, structured)
        if not composition["section"]:
            del composition["section"]
    elif unstructured is not None:
        doc_ref = _document_reference(ctx, root, unstructured, doc_type, title, written, author_refs, custodian_url,
                                      encounter_url)
        if doc_ref:
            composition["section"] = [{"title": title, "text": plain_narrative(
                "The document's content is the attachment of the DocumentReference this section refers to."),
                "entry": [{"reference": doc_ref}]}]
    else:
        raise fail("the document has neither a structuredBody nor a nonXMLBody", body if body is not None else root)

    composition_request = {"method": "PUT", "url": f"Composition?identifier={token(composition['identifier'])}"} \
        if token(composition["identifier"]) else {"method": "POST", "url": "Composition"}
    composition_url = ctx.add(composition, composition_request)
    if ctx.language:
        for made in ctx.made:
            made.resource["language"] = ctx.language

    bundle = _transaction(ctx, composition_url, doc_id, instant(ctx, when_el))
    return Conversion(kind="cda", message_id=message_id, event=event, bundle=bundle, original=bytes(data),
                      content_type=CONTENT_TYPE, warnings=ctx.warnings, version=version)


def _message_id(el: Element) -> str:
    root, extension = attr(el, "root") or "", attr(el, "extension")
    return f"{root}^{extension}" if extension else root


def _first_display(concept: dict[str, Any]) -> str | None:
    for coding in concept.get("coding", []):
        if coding.get("display"):
            return coding["display"]
    return None


def _ccda_name(root: Element, doc_type: dict[str, Any]) -> str:
    templates = template_ids(root)
    names = [name for template, name in ccda_documents().items() if template in templates]
    specific = [n for n in names if n != "US Realm Header"]
    if specific:
        return specific[0]
    return _first_display(doc_type) or (names[0] if names else "CDA document")


def _relates_to(ctx: Context, root: Element) -> list[dict[str, Any]]:
    result = []
    for related in children(root, "relatedDocument"):
        code = value_map("related_document").get(attr(related, "typeCode") or "")
        target = identifier(ctx, child(related, "parentDocument", "id"))
        if code and target:
            result.append({"code": code, "targetIdentifier": target})
    return result


def _events(ctx: Context, root: Element) -> list[dict[str, Any]]:
    result = []
    for item in children(root, "documentationOf"):
        service = child(item, "serviceEvent")
        if service is None:
            continue
        event: dict[str, Any] = {}
        if concept := codeable(ctx, child(service, "code")):
            event["code"] = [concept]
        if when := period(ctx, child(service, "effectiveTime")):
            event["period"] = when
        if event:
            result.append(event)
    return result


def _document_reference(ctx: Context, root: Element, body: Element, doc_type: dict[str, Any], title: str,
                        written: str, author_refs: list[dict[str, Any]], custodian_url: str | None,
                        encounter_url: str | None) -> str | None:
    content = child(body, "text")
    if content is None:
        ctx.warn("the nonXMLBody holds no text: no DocumentReference is made", body)
        return None
    attachment: dict[str, Any] = {"contentType": attr(content, "mediaType") or "text/plain"}
    link = child(content, "reference")
    if link is not None and attr(link, "value"):
        attachment["url"] = attr(link, "value")
    else:
        payload = attachment_data(content)
        if not payload:
            ctx.warn("the nonXMLBody's text is empty: no DocumentReference is made", content)
            return None
        attachment["data"] = base64.b64encode(payload).decode("ascii")
    if ctx.language:
        attachment["language"] = ctx.language
    attachment["title"] = title
    resource: dict[str, Any] = {"resourceType": "DocumentReference", "status": "current",
                                "docStatus": "final" if child(root, "legalAuthenticator") is not None else "preliminary"}
    master = identifier(ctx, child(root, "id"))
    if master:
        resource["masterIdentifier"] = master
    resource["type"] = doc_type
    resource["subject"] = {"reference": ctx.patient}
    stamp = instant(ctx, child(root, "effectiveTime"))
    if stamp:
        resource["date"] = stamp
    people = [a for a in author_refs if "reference" in a]
    if people:
        resource["author"] = people
    if custodian_url:
        resource["custodian"] = {"reference": custodian_url}
    resource["description"] = title
    resource["content"] = [{"attachment": attachment}]
    context: dict[str, Any] = {}
    if encounter_url:
        context["encounter"] = [{"reference": encounter_url}]
    if written and len(written) >= 4:
        context["period"] = {"start": written}
    if context:
        resource["context"] = context
    return ctx.add(resource)


def _transaction(ctx: Context, composition_url: str, doc_id: dict[str, Any], timestamp: str | None) -> dict[str, Any]:
    by_url = {made.full_url: made for made in ctx.made}
    composition = by_url[composition_url]
    others = [made for made in ctx.made if made.full_url != composition_url]
    document: dict[str, Any] = {"resourceType": "Bundle"}
    if ctx.language:
        document["language"] = ctx.language
    document["identifier"] = doc_id
    document["type"] = "document"
    if timestamp:
        document["timestamp"] = timestamp
    else:
        ctx.warn("the document's effectiveTime is not precise to the second with an offset: "
                 "the document Bundle has no timestamp", once="timestamp")
    document["entry"] = [{"fullUrl": made.full_url, "resource": copy.deepcopy(made.resource)}
                         for made in [composition, *others] if made.in_document]
    entries: list[dict[str, Any]] = []
    for made in [*others, composition]:
        entries.append({"fullUrl": made.full_url, "resource": made.resource, "request": made.request})
    document_request: dict[str, Any] = {"method": "POST", "url": "Bundle"}
    if key := token(doc_id):
        document_request["ifNoneExist"] = f"identifier={key}"
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": document, "request": document_request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


__all__ = ["ConversionError", "read"]
