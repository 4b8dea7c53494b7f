"""The structured body: each section → a Composition.section (title, code, the narrative as
XHTML, the resources its entries became, nested sections).

The CDA narrative block is rewritten element by element into FHIR's XHTML subset: only
known structure (paragraphs, lists, tables, spans, sub/sup, links to http(s) or local
anchors) is kept, with no attributes but ids and table spans; the text is escaped by lxml.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from fhir_exchange.convert.cda.context import Context
from fhir_exchange.convert.cda.datatypes import codeable
from fhir_exchange.convert.cda.entries import Entries
from fhir_exchange.convert.cda.tables import sections as section_table
from fhir_exchange.convert.cda.xml import Element, attr, child, children, elements, local, text

XHTML = "http://www.w3.org/1999/xhtml"
LOINC_OID = "2.16.840.1.113883.6.1"
SAME = {"table", "thead", "tbody", "tfoot", "tr", "th", "td", "col", "colgroup", "sub", "sup", "br"}
RENAMED = {"content": "span", "paragraph": "p", "item": "li", "footnote": "span", "footnoteRef": "span"}


def _x(name: str) -> str:
    return f"{{{XHTML}}}{name}"


def _copy(source: Element, target: Element) -> None:
    """Copy the children (text and elements) of a CDA narrative element into ``target``."""
    last: Element | None = None

    def add_text(value: str | None) -> None:
        if not value:
            return
        if last is None:
            target.text = (target.text or "") + value
        else:
            last.tail = (last.tail or "") + value

    add_text(source.text)
    for node in source:
        if not isinstance(node.tag, str):
            add_text(node.tail)
            continue
        name = local(node)
        made: Element | None = None
        if name in SAME:
            made = etree.SubElement(target, _x(name))
            for span in ("colspan", "rowspan"):
                if (value := node.get(span)) and value.isdigit():
                    made.set(span, value)
            if name != "br":
                _copy(node, made)
        elif name == "caption":
            made = etree.SubElement(target, _x("caption" if local(source) == "table" else "b"))
            _copy(node, made)
        elif name == "list":
            made = etree.SubElement(target, _x("ol" if node.get("listType") == "ordered" else "ul"))
            for part in node:
                if not isinstance(part.tag, str):
                    continue
                item = etree.SubElement(made, _x("li"))
                _copy(part, item)
        elif name == "linkHtml":
            made = etree.SubElement(target, _x("a"))
            href = (node.get("href") or "").strip()
            if href.startswith(("http://", "https://", "#")):
                made.set("href", href)
            _copy(node, made)
        elif name == "renderMultiMedia":
            made = etree.SubElement(target, _x("span"))
            made.text = "[multimedia]"
        else:
            made = etree.SubElement(target, _x(RENAMED.get(name, "span")))
            _copy(node, made)
        ident = node.get("ID")
        if ident and made is not None and ident.replace("-", "").replace("_", "").replace(".", "").isalnum() \
                and ident[0].isalpha():
            made.set("id", ident)
        last = made
        add_text(node.tail)


def narrative(el: Element | None) -> dict[str, str] | None:
    """A CDA section/text as a FHIR Narrative (None when it holds nothing)."""
    if el is None or not text(el):
        return None
    div = etree.Element(_x("div"), nsmap={None: XHTML})
    _copy(el, div)
    # Ids must be unique within the narrative: drop repeats.
    seen: set[str] = set()
    for node in div.iter():
        ident = node.get("id")
        if ident is not None:
            if ident in seen:
                del node.attrib["id"]
            seen.add(ident)
    return {"status": "generated", "div": etree.tostring(div, encoding="unicode")}


def plain_narrative(message: str) -> dict[str, str]:
    div = etree.Element(_x("div"), nsmap={None: XHTML})
    div.text = message
    return {"status": "generated", "div": etree.tostring(div, encoding="unicode")}


def section(ctx: Context, el: Element) -> dict[str, Any] | None:
    code_el = child(el, "code")
    loinc = attr(code_el, "code") if attr(code_el, "codeSystem") in (LOINC_OID, None) else None
    known = section_table().get(loinc or "")
    kind = known.kind if known else "other"
    chinese = (ctx.language or "").lower().startswith("zh")
    title = text(child(el, "title")) or (known and (known.title_zh if chinese else known.title_en)) \
        or attr(code_el, "displayName")
    entries = Entries(ctx, kind, title)
    for entry in children(el, "entry"):
        entries.entry(entry)
    result: dict[str, Any] = {}
    if title:
        result["title"] = title
    if concept := codeable(ctx, code_el):
        result["code"] = concept
    story = narrative(child(el, "text"))
    nested = [s for s in (section(ctx, sub) for sub in _subsections(el)) if s]
    if story:
        result["text"] = story
    if entries.refs:
        result["entry"] = [{"reference": url} for url in entries.refs]
    if nested:
        result["section"] = nested
    if not story and not entries.refs and not nested:
        result["text"] = plain_narrative("No narrative or entries in the source section.")
    return result


def _subsections(el: Element) -> list[Element]:
    return [s for c in children(el, "component") for s in children(c, "section")]


def body_sections(ctx: Context, structured: Element) -> list[dict[str, Any]]:
    found = []
    for component in children(structured, "component"):
        for item in elements(component):
            if local(item) == "section":
                made = section(ctx, item)
                if made:
                    found.append(made)
    return found
