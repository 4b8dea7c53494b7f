"""``Patient/[id]/$everything`` (R4 patient-operation-everything): the Patient and what is in
its compartment, as a paged ``searchset`` Bundle.

What it returns
- The Patient, and every resource that one of the R4 Patient CompartmentDefinition's search
  parameters points at the patient with (``compartmentdefinition-patient.json`` beside this
  module, R4 4.0.1, the types that can be in the compartment), for the types BayLink indexes.
  That includes the Patient records linked to this one (``Patient?link=``), but not the
  records of those linked patients: ask each of them for its own $everything.
- Not AuditEvent, although the compartment lists it: the audit trail is read with
  ``AuditEvent?patient=`` and its own scope (history leaves it out too), and every
  $everything would otherwise return a trail that its own call lengthens.
- The Medication, Organization, Location, Practitioner and PractitionerRole resources that
  a page's entries refer to, as that page's ``search.mode = include`` entries: as ``_include``
  gives them, they are not counted in ``total`` and may come again on another page.

Who sees what (the same rules as search)
- The caller needs ``Patient.r``. Resource types it may neither read nor search are left out
  without a word, as ``_include`` leaves them out.
- Every resource passes the release gate: the matches are narrowed to what the gate releases
  before they are counted and paged, so ``total`` reveals nothing withheld, and each page is
  loaded through the gate again (which also puts what is released in the request's audit).
- A Patient the gate withholds, or that does not exist, is a 404 here. The REST route reads
  the instance before any instance operation runs, so over HTTP the answer is exactly read's:
  404 unknown, 410 deleted, and a withheld Patient as read answers it.

Parameters
- ``_since``: only resources last updated at or after that instant (the Patient too).
- ``_type``: comma-separated and repeatable: only those types, out of Patient, the
  compartment's types and the referenced types above; any other type is a 400.
- ``_count``: page size, with the default and maximum of search. ``_count=0`` gives the total only.
- ``start`` and ``end`` (care dates) are accepted and ignored: every resource in the
  compartment is returned, whatever its clinical date.

Paging: the released matches, in order (the Patient first, then the rest as they were
stored), are saved as a search snapshot, as search saves them. The ``next`` links return to
this operation with ``_getpages`` and ``_offset``. Each page checks the Patient, the scopes and
the gate again, and is served only to the caller that made the snapshot (same client, scopes,
purpose and user), because its ``total`` counts what the gate released to that caller. The
snapshot's saved query starts with ``$everything=<id>``, which search paging
(``[base]?_getpages=``) refuses as an unknown parameter. Search paging checks one type's
scope, and this snapshot mixes types. Paging needs ``Patient.s`` as well, as search paging does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fhir_exchange.auth.scopes import Scopes
from fhir_exchange.errors import InvalidRequest, NotFound
from fhir_exchange.operations.common import OperationCall
from fhir_exchange.operations.parameters import Spec
from fhir_exchange.ports import RequestContext
from fhir_exchange.search.params import Include
from fhir_exchange.search.registry import registry
from fhir_exchange.search.values import parse_date_range
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import FhirRepository, StoredResource

SPEC = Spec("everything", {
    "_since": "instant", "_type": "string", "_count": "integer", "start": "dateTime", "end": "dateTime",
    "_getpages": "string", "_offset": "integer",
}, repeats=frozenset({"_type"}))
COMPARTMENT_FILE = "compartmentdefinition-patient.json"
REFERENCED_TYPES = ("Medication", "Organization", "Location", "Practitioner", "PractitionerRole")
LEFT_OUT = {"AuditEvent": "read the audit trail with AuditEvent?patient=Patient/[id]"}
SNAPSHOT_MARK = "$everything"  # first key of the snapshot's query: search paging refuses it


@cache
def compartment() -> dict[str, tuple[str, ...]]:
    """Resource type -> the reference search parameters that put a resource of that type in a
    patient's compartment, for the types BayLink indexes (less ``LEFT_OUT``)."""
    definition = json.loads(resources.files(__package__).joinpath(COMPARTMENT_FILE).read_text(encoding="utf-8"))
    table = registry()
    found: dict[str, tuple[str, ...]] = {}
    for entry in definition["resource"]:
        resource_type = entry["code"]
        params = tuple(p for p in entry.get("param") or () if (d := table.get(resource_type, p)) and d.type == "reference")
        if params and resource_type not in LEFT_OUT:
            found[resource_type] = params
    return found


def run(call: OperationCall) -> dict[str, Any]:
    if call.resource_id is None:
        raise NotFound("$everything is served for one patient at a time: GET [base]/Patient/[id]/$everything "
                       "(the type-level form, for every patient, is not supported)")
    everything = _Everything(call, call.service, call.resource_id)
    everything.check_patient()
    if call.input.has("_getpages"):
        return everything.continued()
    return everything.first()


@dataclass
class _Everything:
    call: OperationCall
    service: FhirService
    patient_id: str

    @property
    def repo(self) -> FhirRepository:
        return self.service.repo

    def may_see(self, resource_type: str) -> bool:
        scopes = Scopes(self.repo.context.scopes)
        return scopes.allows(resource_type, "r") or scopes.allows(resource_type, "s")

    def check_patient(self) -> None:
        self.repo.require("Patient", "r")
        pks = self.repo.search_pks_internal(self.service.parser.parse("Patient", [("_id", self.patient_id)]))
        if not self.repo.releasable(pks):
            raise NotFound(f"Patient/{self.patient_id} is not known")

    # --- the first page: find, gate, count, save -------------------------------------------------

    def first(self) -> dict[str, Any]:
        wanted = _wanted_types(self.call.input.all("_type"))
        since = self.call.input.get("_since")
        if since is not None:
            try:
                parse_date_range(since)
            except ValueError as exc:
                raise InvalidRequest(f"$everything: _since '{since}' is not an instant: {exc}") from None
        pks = self.repo.releasable(self._matches(wanted, since))
        applied = ([("_since", since)] if since is not None else []) + ([("_type", ",".join(sorted(wanted)))] if wanted else [])
        count = self._count()
        offset = self.call.input.get("_offset") or 0
        snapshot_id = None
        if count and (len(pks) > offset + count or offset):
            query = urlencode([(SNAPSHOT_MARK, self.patient_id), ("caller", _caller(self.repo.context)), *applied])
            snapshot_id = self.repo.save_snapshot("Patient", query, pks)
        given_count = [("_count", str(count))] if self.call.input.has("_count") else []
        self_link = self._url([*applied, *given_count, *([("_offset", str(offset))] if offset else [])])
        return self._bundle(pks, wanted, offset, count, snapshot_id, self_link)

    def _matches(self, wanted: frozenset[str] | None, since: str | None) -> list[int]:
        """The pks of the Patient and its compartment (ungated: ids only), the Patient first."""
        parser, reference = self.service.parser, f"Patient/{self.patient_id}"
        after = [("_lastUpdated", f"ge{since}")] if since is not None else []
        first: list[int] = []
        if wanted is None or "Patient" in wanted:
            first = self.repo.search_pks_internal(parser.parse("Patient", [("_id", self.patient_id), *after]))
        rest: set[int] = set()
        for resource_type, params in compartment().items():
            if (wanted is not None and resource_type not in wanted) or not self.may_see(resource_type):
                continue
            for param in params:
                rest.update(self.repo.search_pks_internal(parser.parse(resource_type, [(param, reference), *after])))
        return list(dict.fromkeys([*first, *sorted(rest)]))

    # --- later pages ---------------------------------------------------------------------------

    def continued(self) -> dict[str, Any]:
        given = [name for name in ("_since", "_type", "start", "end") if self.call.input.has(name)]
        if given:
            raise InvalidRequest(f"$everything: _getpages continues an earlier result; it takes _offset and _count, "
                                 f"not {', '.join(given)}")
        snapshot_id = self.call.input.get("_getpages")
        snapshot = self.repo.snapshot(snapshot_id)  # 410 once expired
        saved = parse_qsl(snapshot.query)
        mark = dict(saved)
        if (snapshot.res_type != "Patient" or not saved or saved[0] != (SNAPSHOT_MARK, self.patient_id)
                or mark.get("caller") != _caller(self.repo.context)):
            raise NotFound(f"'{snapshot_id}' is not a $everything result of Patient/{self.patient_id} made by this caller")
        wanted = _wanted_types([mark["_type"]]) if "_type" in mark else None
        count = self._count()
        offset = self.call.input.get("_offset") or 0
        self_link = self._url([("_getpages", snapshot_id), ("_offset", str(offset)), ("_count", str(count))])
        return self._bundle(snapshot.pks, wanted, offset, count, snapshot_id, self_link)

    # --- the Bundle ----------------------------------------------------------------------------

    def _count(self) -> int:
        config = self.service.config
        given = self.call.input.get("_count")
        return config.default_count if given is None else min(given, config.max_count)

    def _url(self, items: list[tuple[str, str]]) -> str:
        url = f"{self.service.base_url}/Patient/{self.patient_id}/$everything"
        return f"{url}?{urlencode(items)}" if items else url

    def _bundle(self, pks: list[int], wanted: frozenset[str] | None, offset: int, count: int,
                snapshot_id: str | None, self_link: str) -> dict[str, Any]:
        matches = [m for m in self.repo.load(pks[offset : offset + count]) if self.may_see(m.resource_type)]
        referenced = [t for t in REFERENCED_TYPES if wanted is None or t in wanted]
        includes = [Include(source, None, target, False, f"{source}:*:{target}")
                    for source in sorted({m.resource_type for m in matches}) for target in referenced]
        included = self.repo.includes(matches, includes, []) if matches and includes else []
        links = [{"relation": "self", "url": self_link}]
        if snapshot_id is not None and count:
            def page(at: int) -> str:
                return self._url([("_getpages", snapshot_id), ("_offset", str(at)), ("_count", str(count))])

            if offset + count < len(pks):
                links.append({"relation": "next", "url": page(offset + count)})
            if offset > 0:
                links.append({"relation": "previous", "url": page(max(0, offset - count))})
            links.append({"relation": "first", "url": page(0)})
            links.append({"relation": "last", "url": page((max(len(pks) - 1, 0) // count) * count)})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(pks), "link": links}
        entries = [self._entry(m, "match") for m in matches] + [self._entry(i, "include") for i in included]
        if entries:
            bundle["entry"] = entries
        return bundle

    def _entry(self, stored: StoredResource, mode: str) -> dict[str, Any]:
        return {"fullUrl": self.service.full_url(stored), "resource": stored.content, "search": {"mode": mode}}


def _wanted_types(given: Iterable[str]) -> frozenset[str] | None:
    """The types ``_type`` names (None: every type), each one that $everything can return."""
    names = frozenset(n.strip() for item in given for n in str(item).split(",") if n.strip())
    if not names:
        return None
    for name in sorted(names):
        if name in LEFT_OUT:
            raise InvalidRequest(f"$everything does not return {name}: {LEFT_OUT[name]}", expression=["_type"])
    unknown = sorted(names - {"Patient", *compartment(), *REFERENCED_TYPES})
    if unknown:
        raise InvalidRequest(f"$everything: _type {', '.join(unknown)}: it returns Patient, the types of the Patient "
                             f"compartment and the {', '.join(REFERENCED_TYPES)} they refer to", expression=["_type"])
    return names


def _caller(context: RequestContext) -> str:
    """Who a saved result belongs to: what the gate and the scopes decide by, hashed."""
    facts = (context.client_id, context.institution, context.user, " ".join(context.roles), context.purpose_of_use,
             context.reason, " ".join(sorted(context.scopes)))
    return hashlib.sha256("\x1f".join(f or "" for f in facts).encode()).hexdigest()[:32]
