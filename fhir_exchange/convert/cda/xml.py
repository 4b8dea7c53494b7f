"""Safe XML parsing for CDA documents, and the small helpers every part of the reader uses
to walk the HL7 v3 namespace.

Security (security-relevant; keep it this way):

- lxml is told not to load DTDs, not to touch the network, not to resolve or expand
  entities and to keep libxml2's limits on tree size (``huge_tree=False``);
- a document whose DOCTYPE declares entities, or points at an external DTD, is refused
  outright (billion laughs, XXE): a CDA document never needs either;
- every failure is a ``ConversionError`` carrying the line and an XPath-like location.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from fhir_exchange.convert.base import ConversionError

V3 = "urn:hl7-org:v3"
SDTC = "urn:hl7-org:sdtc"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
Element = etree._Element


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           dtd_validation=False, remove_comments=True, remove_pis=True)


def parse(data: bytes) -> Element:
    """The root element of a CDA document, parsed safely; ``ConversionError`` for anything
    that is not well-formed, declares entities, or is not a ``ClinicalDocument``."""
    if not isinstance(data, bytes | bytearray):
        raise ConversionError("a CDA document is given as bytes", code="AR", element="/")
    if not data.strip():
        raise ConversionError("the document is empty", code="AR", element="/", line=1)
    _refuse_doctype(bytes(data))
    try:
        tree = etree.fromstring(bytes(data), _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        raise ConversionError(f"the document is not well-formed XML: {exc.msg}", code="AR", element="/",
                              line=line) from None
    except (ValueError, etree.LxmlError) as exc:
        raise ConversionError(f"the document cannot be parsed as XML: {exc}", code="AR", element="/") from None
    _refuse_entities(tree)
    root = tree.getroot()
    if not isinstance(root.tag, str) or root.tag != f"{{{V3}}}ClinicalDocument":
        found = local(root) if isinstance(root.tag, str) else "?"
        namespace = etree.QName(root).namespace if isinstance(root.tag, str) else None
        what = f"{found} in namespace {namespace}" if namespace else f"{found} (no namespace)"
        raise ConversionError(f"not a CDA document: the root element is {what}, not ClinicalDocument in {V3}",
                              code="AR", element=f"/{found}", line=root.sourceline)
    return root


_DOCTYPE = re.compile(rb"<!DOCTYPE\b(?P<head>[^\[>]*)(?P<subset>\[.*?\]\s*)?>", re.DOTALL)


def _refuse_doctype(data: bytes) -> None:
    """Before parsing: a DOCTYPE that declares entities or names an external DTD is refused
    (checked on the bytes, so it does not depend on what the XML library would have done)."""
    start = data.find(b"<!DOCTYPE")
    if start < 0:
        return
    line = data.count(b"\n", 0, start) + 1
    match = _DOCTYPE.match(data, start)
    if match is None:
        raise ConversionError("the document's DOCTYPE is malformed", code="AR", element="/!DOCTYPE", line=line)
    head, subset = match.group("head"), match.group("subset") or b""
    if re.search(rb"\b(SYSTEM|PUBLIC)\b", head) or b"<!ENTITY" in subset or b"%" in subset:
        raise ConversionError("the document's DOCTYPE declares entities or an external DTD; CDA documents must not "
                              "(entity expansion and external entities are refused)", code="AR", element="/!DOCTYPE",
                              line=line)


def _refuse_entities(tree: etree._ElementTree) -> None:
    docinfo = tree.docinfo
    dtd = docinfo.internalDTD
    if docinfo.system_url or docinfo.public_id:
        raise ConversionError("the document refers to an external DTD; CDA documents must not (XXE)",
                              code="AR", element="/!DOCTYPE", line=1)
    if dtd is not None and (dtd.system_url or dtd.public_id or any(True for _ in dtd.iterentities())):
        raise ConversionError("the document's DOCTYPE declares entities; CDA documents must not "
                              "(entity expansion and external entities are refused)",
                              code="AR", element="/!DOCTYPE", line=1)
    for node in tree.iter(etree.Entity):
        raise ConversionError(f"the document uses the entity &{node.name};, which is not allowed",
                              code="AR", element=location(node.getparent()) if node.getparent() is not None else "/",
                              line=node.sourceline)


# --- walking --------------------------------------------------------------------------------


def local(el: Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def child(el: Element | None, *names: str) -> Element | None:
    """The first element down the path of local names in the v3 namespace."""
    current = el
    for name in names:
        if current is None:
            return None
        current = current.find(f"{{{V3}}}{name}")
    return current


def children(el: Element | None, name: str) -> list[Element]:
    if el is None:
        return []
    return el.findall(f"{{{V3}}}{name}")


def all_of(el: Element | None, *names: str) -> Iterator[Element]:
    """Every element at the end of the path (each step may repeat)."""
    if el is None:
        return
    if not names:
        yield el
        return
    for item in children(el, names[0]):
        yield from all_of(item, *names[1:])


def elements(el: Element | None) -> list[Element]:
    if el is None:
        return []
    return [c for c in el if isinstance(c.tag, str)]


def attr(el: Element | None, name: str) -> str | None:
    """An attribute's value with whitespace collapsed; None when absent or blank."""
    if el is None:
        return None
    value = el.get(name)
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def text(el: Element | None) -> str | None:
    """The element's text content, whitespace collapsed; None when empty."""
    if el is None:
        return None
    value = " ".join("".join(el.itertext()).split())
    return value or None


def null(el: Element | None) -> bool:
    return el is None or el.get("nullFlavor") is not None


def template_ids(el: Element | None) -> set[str]:
    return {t.get("root", "") for t in children(el, "templateId")}


def xsi_type(el: Element) -> str | None:
    value = el.get(XSI_TYPE)
    if not value:
        return None
    return value.rsplit(":", 1)[-1].strip() or None


def location(el: Element | None) -> str:
    """An XPath-like location of the element, by local names, with positions where the
    parent has more than one child of that name: ``/ClinicalDocument/component/…/entry[2]``."""
    if el is None:
        return "/"
    parts: list[str] = []
    node: Element | None = el
    while node is not None and isinstance(node.tag, str):
        parent = node.getparent()
        name = local(node)
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


def fail(message: str, el: Element | None) -> ConversionError:
    """A ``ConversionError`` located at ``el``."""
    return ConversionError(message, element=location(el), line=el.sourceline if el is not None else None)
