"""Mainland WS/T 500 shared documents (电子病历共享文档规范).

A WS/T 500 document is recognised by its document type code (ClinicalDocument/code in the
system 2.16.156.10011.2.4, C0001…C0053) or its templateId (2.16.156.10011.2.1.1.<20+part>),
both as public WS/T 500 document templates write them; ``wst500-documents.csv`` lists the
parts BayLink knows with a LOINC equivalent where one fits (an editorial choice, said so in
README.md). Otherwise a WS/T 500 document is CDA R2 and converts by the common rules: the
resident ID under ``patient/id`` (2.16.156.10011.1.3), GB/T 2261.1 sex codes, national
ICD-10 codes (2.16.156.10011.2.3.3.11) translated to WHO ICD-10 through terminology, data
element observations (卫生信息数据元目录 2.16.156.10011.2.2.1) kept with their codes.
"""

from __future__ import annotations

from typing import Any

from fhir_exchange.convert.cda.tables import WsDocument, wst500_documents
from fhir_exchange.convert.cda.xml import Element, attr, child, template_ids, text

DOCUMENT_CODES = "2.16.156.10011.2.4"
TEMPLATE_PREFIX = "2.16.156.10011.2.1.1."
LOINC = "http://loinc.org"


def document_type(root: Element) -> WsDocument | None:
    """The WS/T 500 document this is, or None for any other CDA document."""
    code_el = child(root, "code")
    code = attr(code_el, "code")
    system = attr(code_el, "codeSystem")
    templates = template_ids(root)
    for known in wst500_documents():
        if known.template in templates or (code == known.code and system == DOCUMENT_CODES):
            return known
    ours = [t for t in templates if t.startswith(TEMPLATE_PREFIX)]
    if system == DOCUMENT_CODES or ours:
        title = text(child(root, "title")) or attr(code_el, "displayName") or (code or "")
        return WsDocument("", code or "", ours[0] if ours else "", title, None, None)
    return None


def composition_type(document: WsDocument, code_el: Element | None) -> dict[str, Any]:
    codings: list[dict[str, Any]] = []
    code = attr(code_el, "code") or document.code
    if code:
        codings.append({"system": f"urn:oid:{DOCUMENT_CODES}", "code": code, "display": document.title})
    if document.loinc:
        coding = {"system": LOINC, "code": document.loinc}
        if document.loinc_display:
            coding["display"] = document.loinc_display
        codings.append(coding)
    result: dict[str, Any] = {"text": document.title} if document.title else {}
    if codings:
        result["coding"] = codings
    return result or {"text": "WS/T 500"}


def event_name(document: WsDocument) -> str:
    return f"WS/T 500 {document.title}".strip()
