"""What a release decision about a resource can depend on, read from the resource once, when it
is written, and kept beside its current version (``resource.release_facts``).

A release gate decides on who asks and on a few facts of the resource: the patients it is
about, the institution that holds it, its security labels, the codes that may make it
sensitive, and its clinical date. All of them are read from the version's content alone, which
never changes once written, so the store keeps them with the version and a gate that offers
``decide_facts`` (ports.py) can decide a search's every match without loading and opening its
content. That is what lets a search total count only what the caller may see at the cost of
reading one short column per match (docs/performance.md, "The consent gate").

The facts are not a policy: nothing here says what is released. They carry no identifier
value (identity documents stay sealed in the content) and nothing a search index does not
already hold, except the codes, which are a resource's clinical codes.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

import orjson

from fhir_exchange.audit.trail import patients_of

CUSTODIAN_SYSTEM = "http://baylink.example.org/fhir/CodeSystem/custodian"
# the fields whose codes can put a resource in a sensitive category (a diagnosis, a result's
# coded value, a reason): what a sensitivity labeller looks at
CODED_FIELDS = ("code", "conclusionCode", "reasonCode", "valueCodeableConcept")
# the clinically relevant date of a resource (for a Consent's dataPeriod, "recent results"):
# the first of these present
DATE_FIELDS = ("effectiveDateTime", "issued", "recordedDate", "onsetDateTime", "authoredOn", "date",
               "occurrenceDateTime", "performedDateTime", "whenHandedOver")
# bumped whenever what is read changes: facts of another version are not trusted (the store
# decides from content instead) until rewritten
FACTS_VERSION = 1
_KEPT_PREFIX = f"[{FACTS_VERSION},"


class ReleaseFacts(NamedTuple):
    """What a release decision can depend on (a tuple: many are made per search)."""

    resource_type: str
    patients: tuple[str, ...]  # sorted; empty: not a patient's data
    custodian: str | None
    security: frozenset[str]  # meta.security codes
    codings: tuple[tuple[str, str], ...]  # (system, code) of CODED_FIELDS, sorted, each once
    clinical_date: date | None
    # set by a FactsReader: the type and the kept text but for the date, the same string for
    # every version whose facts differ from these by the date alone (a decider's memo key)
    head: str | None = None


def custodian_of(resource: dict[str, Any] | None) -> str | None:
    """The institution that holds the record: the one whose system first wrote it (the tag the
    store stamps on every version)."""
    for tag in ((resource or {}).get("meta") or {}).get("tag") or []:
        if tag.get("system") == CUSTODIAN_SYSTEM:
            return tag.get("code")
    return None


def security_codes(resource: dict[str, Any]) -> frozenset[str]:
    return frozenset(s["code"] for s in (resource.get("meta") or {}).get("security") or []
                     if isinstance(s, dict) and s.get("code"))


def codings_of(resource: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    found: set[tuple[str, str]] = set()
    for name in CODED_FIELDS:
        value = resource.get(name)
        for concept in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
            if not isinstance(concept, dict):
                continue
            for coding in concept.get("coding") or []:
                system, code = (coding.get("system"), coding.get("code")) if isinstance(coding, dict) else (None, None)
                if system and code:
                    found.add((system, code))
    return tuple(sorted(found))


def clinical_date(resource: dict[str, Any]) -> date | None:
    for name in DATE_FIELDS:
        value = resource.get(name)
        if isinstance(value, str) and len(value) >= 10:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                return None
    period = resource.get("effectivePeriod") or resource.get("period") or {}
    start = period.get("start") if isinstance(period, dict) else None
    try:
        return date.fromisoformat(start[:10]) if isinstance(start, str) and len(start) >= 10 else None
    except ValueError:
        return None


def facts_of(resource_type: str, resource_id: str, content: dict[str, Any]) -> ReleaseFacts:
    return ReleaseFacts(resource_type, tuple(sorted(patients_of(resource_type, resource_id, content))),
                        custodian_of(content), security_codes(content), codings_of(content), clinical_date(content))


def decided_alone(resource_type: str, content: dict[str, Any]) -> bool:
    """Whether a decision about this resource depends on it alone. Not so for a Binary whose
    securityContext names another resource (an MHD document's DocumentReference): access to
    it is access to that resource, as it is at the time (R4 Binary.securityContext)."""
    if resource_type != "Binary":
        return True
    reference = ((content.get("securityContext") or {}).get("reference") or "")
    other, _, other_id = reference.partition("/")
    return not other_id or other in ("Patient", "Binary") or "/" in other_id


def stored_facts(resource_type: str, resource_id: str, content: dict[str, Any]) -> str | None:
    """The facts as the store keeps them (compact JSON), or None where they cannot be told from
    the resource alone. Identity numbers may be sealed in ``content``: no fact reads them."""
    if not decided_alone(resource_type, content):
        return None
    facts = facts_of(resource_type, resource_id, content)
    return orjson.dumps([FACTS_VERSION, facts.patients, facts.custodian, sorted(facts.security),
                         facts.codings, facts.clinical_date.isoformat() if facts.clinical_date else None]).decode()


def load_facts(resource_type: str, text: str | None) -> ReleaseFacts | None:
    """The facts kept for a version, or None if there are none (or of another FACTS_VERSION)."""
    if not text:
        return None
    kept = orjson.loads(text)
    if not isinstance(kept, list) or not kept or kept[0] != FACTS_VERSION:
        return None
    _, patients, custodian, security, codings, when = kept
    return ReleaseFacts(resource_type, tuple(patients), custodian, frozenset(security),
                        tuple((system, code) for system, code in codings), date.fromisoformat(when) if when else None)


class FactsReader:
    """``load_facts`` for the many matches of one search: the facts that differ only by their
    clinical date (one patient's results of one test, say) are parsed once, and share a
    ``head``. Kept for one search, not longer."""

    __slots__ = ("_heads",)

    def __init__(self) -> None:
        self._heads: dict[str, dict[str, ReleaseFacts | None]] = {}  # per type, by kept text but the date

    def shared(self, resource_type: str, text: str | None) -> ReleaseFacts | None:
        """The facts of ``text`` but for the date (clinical_date None), with their head: the same
        object for every text that differs only by the date; None where the text is not kept in
        this FACTS_VERSION's form (read it whole: ``reader(resource_type, text)``)."""
        if not text:
            return None
        return self.undated(resource_type, text.rpartition(",")[0])

    def undated(self, resource_type: str, head: str) -> ReleaseFacts | None:
        """``shared`` of any text whose part before its last comma (the date) is ``head``: a
        search groups its matches by that part and reads each group's facts once."""
        if not head.startswith(_KEPT_PREFIX):
            return None
        return self._head(resource_type, head)

    def _head(self, resource_type: str, head: str) -> ReleaseFacts | None:
        heads = self._heads.get(resource_type)
        if heads is None:
            heads = self._heads[resource_type] = {}
        shared = heads.get(head, _UNREAD)
        if shared is _UNREAD:
            shared = load_facts(resource_type, head + ",null]")
            if shared is not None:
                shared = shared._replace(head=f"{resource_type}|{head}")
            heads[head] = shared
        return shared  # type: ignore[no-any-return]

    def __call__(self, resource_type: str, text: str | None) -> ReleaseFacts | None:
        if not text:
            return None
        # the kept list ends with the date, a JSON string without a comma, or null
        head, comma, last = text.rpartition(",")
        if not comma or not head.startswith(_KEPT_PREFIX):  # another FACTS_VERSION: as load_facts says
            return load_facts(resource_type, text)
        shared = self._head(resource_type, head)
        if shared is None:
            return None
        if last == "null]":
            return shared  # type: ignore[return-value]
        if len(last) != 13 or last[0] != '"' or last[-2:] != '"]':
            return load_facts(resource_type, text)
        try:
            when = date.fromisoformat(last[1:11])
        except ValueError:
            return load_facts(resource_type, text)
        # a tuple: made as one, the shared head's fields with this date
        return _new_tuple(ReleaseFacts, (shared[0], shared[1], shared[2], shared[3], shared[4], when, shared[6]))  # type: ignore[index]


_UNREAD: Any = object()
_new_tuple = tuple.__new__
