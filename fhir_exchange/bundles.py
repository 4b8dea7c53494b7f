"""Transaction and batch bundles (http.html#transaction).

A transaction is all-or-nothing: its entries are processed in the spec's order (DELETE,
POST, PUT/PATCH, GET/HEAD) inside the caller's one database transaction; ``urn:uuid:``
and other fullUrls are rewritten to the ids the server assigns, and conditional references
(``Patient?identifier=…``) are resolved to the one resource they match. Any failure raises,
naming the entry, and the caller rolls everything back.

A batch runs each entry on its own (a savepoint each) and reports each entry's status and
OperationOutcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session

from fhir_exchange.errors import FhirError, InvalidRequest, Issue, MethodNotAllowed, PreconditionFailed
from fhir_exchange.service import FhirService, Outcome
from fhir_exchange.store.repository import fhir_instant
from fhir_exchange.validation import validate_resource

METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 304: "304 Not Modified"}


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    url: str
    path: str  # url without its query
    params: list[tuple[str, str]]
    resource: dict[str, Any] | None
    full_url: str | None
    request: dict[str, Any]


def _etag_version(value: str | None, where: str) -> int | None:
    if not value:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise InvalidRequest(f"{where}: ifMatch '{value}' is not a version ETag such as W/\"3\"")
    return int(text)


class BundleProcessor:
    def __init__(self, service: FhirService, session: Session, prefer_return: str = "representation") -> None:
        self.service = service
        self.session = session
        self.prefer_return = prefer_return
        self._fresh: set[str] = set()  # ids this processor made up for conditional updates that matched nothing
        self._matched: dict[int, list[str]] = {}  # entry index -> its conditional match, looked up ahead

    def process(self, bundle: Any) -> dict[str, Any]:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise InvalidRequest("POST to the base expects a Bundle of type transaction or batch")
        kind = bundle.get("type")
        if kind not in ("transaction", "batch"):
            raise InvalidRequest(f"Bundle.type must be transaction or batch; got '{kind}'", expression=["Bundle.type"])
        raw_entries = bundle.get("entry") or []
        if not isinstance(raw_entries, list):
            raise InvalidRequest("Bundle.entry must be an array", expression=["Bundle.entry"])
        if kind == "transaction":
            return self._transaction(raw_entries)
        return self._batch(raw_entries)

    # --- parsing ---------------------------------------------------------------------------

    def _parse_entry(self, index: int, raw: Any) -> _Entry:
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{where} must be an object", expression=[where])
        request = raw.get("request")
        if not isinstance(request, dict):
            raise InvalidRequest(f"{where}.request is required in a {'transaction or batch'}", expression=[f"{where}.request"])
        method = request.get("method")
        url = request.get("url")
        if method not in METHOD_ORDER:
            raise InvalidRequest(f"{where}.request.method '{method}' is not supported", expression=[f"{where}.request.method"])
        if method == "PATCH":
            raise InvalidRequest(f"{where}: PATCH is not supported by this server", expression=[f"{where}.request.method"])
        if not isinstance(url, str) or not url:
            raise InvalidRequest(f"{where}.request.url is required", expression=[f"{where}.request.url"])
        url = self._relative(url)
        split = urlsplit(url)
        resource = raw.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise InvalidRequest(f"{where}: a {method} entry needs a resource", expression=[f"{where}.resource"])
        return _Entry(index, method, url, split.path.strip("/"), parse_qsl(split.query, keep_blank_values=True),
                      resource, raw.get("fullUrl"), request)

    def _relative(self, url: str) -> str:
        """The request URL relative to the base. An absolute URL elsewhere (a canonical base,
        as in the spec's own examples) is taken by its trailing ``Type/id``."""
        base = self.service.base_url
        if url.startswith(base + "/"):
            return url[len(base) + 1 :]
        if "://" in url:
            split = urlsplit(url)
            segments = [s for s in split.path.split("/") if s]
            for i in range(len(segments) - 1, -1, -1):
                if self.service.parser.known_type(segments[i]):
                    tail = "/".join(segments[i:])
                    return f"{tail}?{split.query}" if split.query else tail
        return url.lstrip("/")

    # --- transaction ---------------------------------------------------------------------

    def _transaction(self, raw_entries: list[Any]) -> dict[str, Any]:
        entries = [self._parse_entry(i, raw) for i, raw in enumerate(raw_entries)]
        self._check_unique_full_urls(entries)
        ids: dict[str, str] = {}  # fullUrl -> Type/id
        planned: dict[int, tuple[str, str | None]] = {}  # entry index -> (type, id assigned or matched)
        self._match_ahead(entries)
        for entry in entries:
            self._plan(entry, ids, planned)
        # the new resources this transaction will write: their pks taken in one go
        self.service.repo.reserve_pks(sum(1 for e in entries if self._creates(e, planned.get(e.index))))
        resolved: dict[str, str] = {}
        for entry in entries:
            if entry.resource is not None:
                entry.resource = self._rewrite(entry.resource, ids, resolved, entry.index)
        results: dict[int, dict[str, Any]] = {}
        for entry in sorted(entries, key=lambda e: METHOD_ORDER[e.method]):
            try:
                outcome = self._execute(entry, planned.get(entry.index))
            except FhirError as error:
                error.issues = [
                    Issue(i.severity, i.code, f"Bundle.entry[{entry.index}] ({entry.method} {entry.url}): {i.diagnostics}",
                          i.expression)
                    for i in error.issues
                ]
                raise
            results[entry.index] = self._response_entry(outcome)
        return {"resourceType": "Bundle", "type": "transaction-response",
                "entry": [results[e.index] for e in entries]}

    @staticmethod
    def _check_unique_full_urls(entries: list[_Entry]) -> None:
        seen: set[str] = set()
        for entry in entries:
            if entry.full_url and entry.method in ("POST", "PUT"):
                if entry.full_url in seen:
                    raise InvalidRequest(
                        f"Bundle.entry[{entry.index}].fullUrl '{entry.full_url}' appears more than once",
                        expression=[f"Bundle.entry[{entry.index}].fullUrl"],
                    )
                seen.add(entry.full_url)

    def _conditional(self, entry: _Entry) -> tuple[str, Any] | None:
        """(type, criteria) of the conditional match an entry's planning looks up, if any."""
        if entry.method == "POST" and entry.request.get("ifNoneExist"):
            return entry.path, entry.request["ifNoneExist"]
        if entry.method == "PUT" and entry.params:
            return entry.path, entry.params
        return None

    def _match_ahead(self, entries: list[_Entry]) -> None:
        """Look up the conditional matches of all the transaction's entries at once (they all
        see the database as it was before the transaction's writes, as each would in
        ``_plan``). An entry whose lookup would fail is left to ``_plan``, which then fails in
        the entries' order with the same error as ever."""
        indexes, queries = [], []
        for entry in entries:
            conditional = self._conditional(entry)
            if conditional is None:
                continue
            resource_type, criteria = conditional
            if "$" in resource_type or not self.service.parser.known_type(resource_type):
                continue
            try:
                query = self.service.parse_conditional(resource_type, criteria)
            except FhirError:
                continue
            indexes.append(entry.index)
            queries.append(query)
        if len(queries) < 2:
            return
        try:
            found = self.service.repo.match_ids_many(queries)
        except FhirError:
            return
        self._matched = dict(zip(indexes, found, strict=True))

    def _match_ids(self, entry: _Entry, resource_type: str, criteria: Any) -> list[str]:
        if entry.index in self._matched:
            return self._matched.pop(entry.index)
        return self.service.repo.match_ids(self.service.parse_conditional(resource_type, criteria))

    def _plan(self, entry: _Entry, ids: dict[str, str], planned: dict[int, tuple[str, str | None]]) -> None:
        """Decide the id each POST/PUT entry will have, before any reference is rewritten."""
        where = f"Bundle.entry[{entry.index}]"
        if entry.method == "POST":
            resource_type = entry.path
            if "$" in resource_type:
                raise MethodNotAllowed(f"{where}: the operation '{resource_type}' is not supported by this server")
            self.service.require_type(resource_type)
            if_none_exist = entry.request.get("ifNoneExist")
            target: str | None = None
            if if_none_exist:
                matches = self._match_ids(entry, resource_type, if_none_exist)
                if len(matches) > 1:
                    raise PreconditionFailed(f"{where}: ifNoneExist '{if_none_exist}' matches more than one {resource_type}")
                target = matches[0] if matches else None
            new_id = target or str(uuid.uuid4())
            planned[entry.index] = (resource_type, new_id if target is None else f"existing:{target}")
            if entry.full_url:
                ids[entry.full_url] = f"{resource_type}/{new_id}"
        elif entry.method == "PUT":
            if entry.params:  # conditional update: Type?criteria
                resource_type = entry.path
                self.service.require_type(resource_type)
                matches = self._match_ids(entry, resource_type, entry.params)
                if len(matches) > 1:
                    raise PreconditionFailed(f"{where}: the conditional update matches more than one {resource_type}")
                body_id = (entry.resource or {}).get("id")
                new_id = matches[0] if matches else body_id
                if new_id is None:
                    new_id = str(uuid.uuid4())
                    self._fresh.add(new_id)
            else:
                parts = entry.path.split("/")
                if len(parts) != 2:
                    raise InvalidRequest(f"{where}.request.url for PUT must be Type/id or Type?criteria")
                resource_type, new_id = parts
            planned[entry.index] = (resource_type, new_id)
            if entry.full_url:
                ids[entry.full_url] = f"{resource_type}/{new_id}"

    def _creates(self, entry: _Entry, plan: tuple[str, str | None] | None) -> bool:
        """Whether the planned entry writes a new resource for sure (a POST that matched
        nothing, a conditional update that matched nothing)."""
        if plan is None or plan[1] is None:
            return False
        if entry.method == "POST":
            return not plan[1].startswith("existing:")
        return entry.method == "PUT" and plan[1] in self._fresh

    def _rewrite(self, value: Any, ids: dict[str, str], resolved: dict[str, str], index: int) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "reference" and isinstance(item, str):
                    out[key] = self._resolve_reference(item, ids, resolved, index)
                else:
                    out[key] = self._rewrite(item, ids, resolved, index)
            return out
        if isinstance(value, list):
            return [self._rewrite(item, ids, resolved, index) for item in value]
        if isinstance(value, str) and value in ids:
            return ids[value]
        return value

    def _resolve_reference(self, reference: str, ids: dict[str, str], resolved: dict[str, str], index: int) -> str:
        if reference in ids:
            return ids[reference]
        if reference.startswith("urn:uuid:") or reference.startswith("urn:oid:"):
            return reference  # not in this bundle: kept as the external identifier it is
        if "?" in reference and "://" not in reference:
            if reference not in resolved:
                resource_type, _, criteria = reference.partition("?")
                self.service.require_type(resource_type)
                matches = self.service.repo.match_ids(self.service.parse_conditional(resource_type, criteria))
                if len(matches) != 1:
                    raise PreconditionFailed(
                        f"Bundle.entry[{index}]: the conditional reference '{reference}' matches "
                        f"{'no' if not matches else 'more than one'} resource"
                    )
                resolved[reference] = f"{resource_type}/{matches[0]}"
            return resolved[reference]
        return reference

    def _execute(self, entry: _Entry, plan: tuple[str, str | None] | None) -> Outcome:
        service = self.service
        where = f"Bundle.entry[{entry.index}]"
        if_match = _etag_version(entry.request.get("ifMatch"), where)
        if entry.method == "POST":
            assert plan is not None
            resource_type, new_id = plan
            if new_id and new_id.startswith("existing:"):
                stored = service.repo.read(resource_type, new_id.removeprefix("existing:"))
                return Outcome(200, stored, stored.content)
            resource = validate_resource(entry.resource, resource_type)
            resource = {k: v for k, v in resource.items() if k != "id"}
            stored = service.repo.create(resource_type, resource, new_id)
            service.after_write(stored)
            return Outcome(201, stored, stored.content, created=True)
        if entry.method == "PUT":
            assert plan is not None
            resource_type, new_id = plan
            assert new_id is not None
            body = dict(entry.resource or {})
            if entry.params:
                body["id"] = new_id
            return service.update(resource_type, new_id, body, if_match=if_match, fresh=new_id in self._fresh)
        if entry.method == "DELETE":
            if entry.params:
                return service.conditional_delete(entry.path, entry.params)
            parts = entry.path.split("/")
            if len(parts) != 2:
                raise InvalidRequest(f"{where}.request.url for DELETE must be Type/id or Type?criteria")
            return service.delete(parts[0], parts[1], if_match=if_match)
        return self._get(entry)

    def _get(self, entry: _Entry) -> Outcome:
        parts = entry.path.split("/") if entry.path else []
        service = self.service
        if len(parts) == 1:
            return service.search(parts[0], entry.params)
        if len(parts) == 2 and parts[1] == "_history":
            return service.history(parts[0], None, entry.params)
        if len(parts) == 2:
            return service.read(parts[0], parts[1])
        if len(parts) == 3 and parts[2] == "_history":
            return service.history(parts[0], parts[1], entry.params)
        if len(parts) == 4 and parts[2] == "_history":
            return service.vread(parts[0], parts[1], parts[3])
        raise InvalidRequest(f"Bundle.entry[{entry.index}].request.url '{entry.url}' is not a supported GET")

    # --- batch ---------------------------------------------------------------------------

    def _batch(self, raw_entries: list[Any]) -> dict[str, Any]:
        results = []
        for index, raw in enumerate(raw_entries):
            savepoint = self.session.begin_nested()
            try:
                entry = self._parse_entry(index, raw)
                plan: dict[int, tuple[str, str | None]] = {}
                self._plan(entry, {}, plan)
                if entry.resource is not None:
                    entry.resource = self._rewrite(entry.resource, {}, {}, index)
                outcome = self._execute(entry, plan.get(index))
                savepoint.commit()
                results.append(self._response_entry(outcome))
            except FhirError as error:
                savepoint.rollback()
                results.append({"response": {"status": f"{error.status}", "outcome": error.outcome()}})
        return {"resourceType": "Bundle", "type": "batch-response", "entry": results}

    def _response_entry(self, outcome: Outcome) -> dict[str, Any]:
        response: dict[str, Any] = {"status": STATUS_TEXT.get(outcome.status, str(outcome.status))}
        entry: dict[str, Any] = {}
        stored = outcome.stored
        if stored is not None:
            response["etag"] = f'W/"{stored.version_id}"'
            response["lastModified"] = fhir_instant(stored.last_updated)
            if outcome.status == 201:
                response["location"] = f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
            entry["fullUrl"] = self.service.full_url(stored)
        elif "ETag" in outcome.headers:
            response["etag"] = outcome.headers["ETag"]
        if outcome.body is not None and self.prefer_return != "minimal":
            if self.prefer_return == "OperationOutcome" and stored is not None:
                response["outcome"] = {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "information", "code": "informational",
                     "diagnostics": f"{stored.resource_type}/{stored.id} version {stored.version_id}"}]}
            else:
                entry["resource"] = outcome.body
        entry["response"] = response
        return entry


ProcessorFactory = Callable[[FhirService, Session], BundleProcessor]
