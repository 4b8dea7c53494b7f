"""FHIR interactions (http.html of R4) over the request-scoped repository.

Each method is one interaction; the caller (REST route, transaction bundle, CLI loader)
owns the database transaction. Results are ``Outcome`` values that the edge renders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fhir_exchange.errors import InvalidRequest, NotFound, PreconditionFailed
from fhir_exchange.search.params import SearchParser, SearchQuery, non_negative_int
from fhir_exchange.search.values import parse_date_range
from fhir_exchange.store.repository import FhirRepository, StoredResource, fhir_instant
from fhir_exchange.summary import shape_resource
from fhir_exchange.validation import check_id, validate_resource


@dataclass(slots=True)
class Outcome:
    """What an interaction produced: the status, the stored version it concerns (for ETag,
    Location, Last-Modified) and the body to send (a resource or a Bundle)."""

    status: int
    stored: StoredResource | None = None
    body: dict[str, Any] | None = None
    created: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    default_count: int = 20
    max_count: int = 1000


class FhirService:
    def __init__(self, repository: FhirRepository, base_url: str, config: ServiceConfig | None = None) -> None:
        self.repo = repository
        self.base_url = base_url.rstrip("/")
        self.config = config or ServiceConfig()
        self.parser = SearchParser(default_count=self.config.default_count, max_count=self.config.max_count)

    # --- helpers -------------------------------------------------------------------------------

    def require_type(self, resource_type: str) -> None:
        if not self.parser.known_type(resource_type):
            raise NotFound(f"resource type '{resource_type}' is not supported by this server")

    def parse_conditional(self, resource_type: str, criteria: str | Iterable[tuple[str, str]]) -> SearchQuery:
        if isinstance(criteria, str):
            # ifNoneExist is "identifier=…", but some senders write "Patient?identifier=…"
            prefix, mark, rest = criteria.partition("?")
            if mark and prefix == resource_type:
                criteria = rest
        items = parse_qsl(criteria, keep_blank_values=True) if isinstance(criteria, str) else list(criteria)
        items = [(k, v) for k, v in items if k not in ("_format", "_pretty")]
        if not items:
            raise InvalidRequest("a conditional interaction needs at least one search parameter")
        query = self.parser.parse(resource_type, items)
        if not query.criteria:
            raise InvalidRequest("a conditional interaction needs at least one search criterion")
        return query

    def full_url(self, stored: StoredResource) -> str:
        return f"{self.base_url}/{stored.resource_type}/{stored.id}"

    # --- instance interactions -------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Outcome:
        self.require_type(resource_type)
        stored = self.repo.read(resource_type, resource_id)
        return Outcome(200, stored, stored.content)

    def vread(self, resource_type: str, resource_id: str, version: str) -> Outcome:
        self.require_type(resource_type)
        if not version.isdigit():
            raise NotFound(f"{resource_type}/{resource_id} has no version '{version}'")
        stored = self.repo.vread(resource_type, resource_id, int(version))
        return Outcome(200, stored, stored.content)

    def create(self, resource_type: str, body: Any, *, if_none_exist: str | None = None) -> Outcome:
        self.require_type(resource_type)
        resource = validate_resource(body, resource_type)
        if if_none_exist:
            existing = self.repo.match_ids(self.parse_conditional(resource_type, if_none_exist))
            if len(existing) > 1:
                raise PreconditionFailed(f"If-None-Exist '{if_none_exist}' matches more than one {resource_type}")
            if existing:
                stored = self.repo.read(resource_type, existing[0])
                return Outcome(200, stored, stored.content)
        resource = {k: v for k, v in resource.items() if k != "id"}  # create ignores a client id (http.html#create)
        stored = self.repo.create(resource_type, resource)
        self.after_write(stored)
        return Outcome(201, stored, stored.content, created=True)

    def update(self, resource_type: str, resource_id: str, body: Any, *, if_match: int | None = None,
               fresh: bool = False) -> Outcome:
        """``fresh``: the caller made the id up just now (a uuid), so nothing is stored under it."""
        self.require_type(resource_type)
        check_id(resource_id)
        resource = validate_resource(body, resource_type)
        if resource.get("id") is None:
            raise InvalidRequest("the resource in an update must carry its id", expression=[f"{resource_type}.id"])
        if resource["id"] != resource_id:
            raise InvalidRequest(
                f"the resource id '{resource['id']}' does not match the id in the URL '{resource_id}'",
                expression=[f"{resource_type}.id"],
            )
        stored, created = self.repo.update(resource_type, resource_id, resource, if_match=if_match, fresh=fresh)
        self.after_write(stored)
        return Outcome(201 if created else 200, stored, stored.content, created=created)

    def put_if_changed(self, resource: dict[str, Any]) -> Outcome | None:
        """Store a resource by its id (or, without one, by ``url`` and ``version``, for
        canonical resources) unless the store already holds exactly it (meta and text
        aside); None when nothing was written. For loaders that must be idempotent."""
        resource_type = resource["resourceType"]
        resource_id = resource.get("id")
        if resource_id is None and resource.get("url"):
            criteria = [("url", resource["url"])] + ([("version", resource["version"])] if resource.get("version") else [])
            matches = self.repo.match_ids(self.parse_conditional(resource_type, criteria))
            resource_id = matches[0] if len(matches) == 1 else None
        if resource_id is None:
            return self.create(resource_type, resource)
        current = self.repo.current_version(resource_type, resource_id)
        if current is not None and not current[1]:
            stored = self.repo.read(resource_type, resource_id).content or {}
            ignore = ("meta", "id", "text")
            if {k: v for k, v in stored.items() if k not in ignore} == {k: v for k, v in resource.items() if k not in ignore}:
                return None
        return self.update(resource_type, resource_id, {**resource, "id": resource_id})

    def conditional_update(self, resource_type: str, criteria: Iterable[tuple[str, str]], body: Any,
                           *, if_match: int | None = None) -> Outcome:
        self.require_type(resource_type)
        query = self.parse_conditional(resource_type, criteria)
        resource = validate_resource(body, resource_type)
        matches = self.repo.match_ids(query)
        if len(matches) > 1:
            raise PreconditionFailed(f"the conditional update matches more than one {resource_type}")
        body_id = resource.get("id")
        if matches:
            if body_id is not None and body_id != matches[0]:
                raise InvalidRequest(
                    f"the resource id '{body_id}' differs from the matching {resource_type}/{matches[0]}",
                    expression=[f"{resource_type}.id"],
                )
            return self.update(resource_type, matches[0], {**resource, "id": matches[0]}, if_match=if_match)
        if body_id is not None:
            if self.repo.current_version(resource_type, body_id) is not None:
                raise PreconditionFailed(
                    f"{resource_type}/{body_id} exists but does not match the conditional update's criteria"
                )
            return self.update(resource_type, body_id, resource)
        stored = self.repo.create(resource_type, resource)
        self.after_write(stored)
        return Outcome(201, stored, stored.content, created=True)

    def after_write(self, stored: StoredResource) -> None:
        """What follows a write in the same transaction: a Patient's records across the
        boundary are linked or queued for review (identity/linkage.py). A new version that
        changed only meta (a resend's message tags) links as its previous version did, and
        other Patients' writes link themselves to it: linkage does not run again."""
        if stored.resource_type == "Patient" and not stored.deleted and not stored.unchanged and not stored.meta_only:
            from fhir_exchange.identity.linkage import Linkage

            Linkage(self).link(stored)

    def delete(self, resource_type: str, resource_id: str, *, if_match: int | None = None) -> Outcome:
        self.require_type(resource_type)
        tombstone = self.repo.delete(resource_type, resource_id, if_match=if_match)
        outcome = Outcome(204)
        if tombstone is not None:
            outcome.headers["ETag"] = f'W/"{tombstone.version_id}"'
        return outcome

    def conditional_delete(self, resource_type: str, criteria: Iterable[tuple[str, str]]) -> Outcome:
        self.require_type(resource_type)
        matches = self.repo.match_ids(self.parse_conditional(resource_type, criteria))
        if len(matches) > 1:
            raise PreconditionFailed(f"the conditional delete matches more than one {resource_type}")
        if not matches:
            return Outcome(204)
        return self.delete(resource_type, matches[0])

    # --- search ------------------------------------------------------------------------------------

    def search(self, resource_type: str, items: list[tuple[str, str]], *, lenient: bool = False) -> Outcome:
        self.require_type(resource_type)
        include_iterate = [(k, v) for k, v in items if k.startswith(("_include:", "_revinclude:"))]
        plain = [(k, v) for k, v in items if not k.startswith(("_include:", "_revinclude:"))]
        query = self.parser.parse(resource_type, plain, lenient=lenient)
        for key, raw in include_iterate:
            if not self.parser.parse_include_key(query, key, raw):
                if not lenient:
                    raise InvalidRequest(f"'{key}': unknown modifier (use :iterate)")
                query.ignored.append(key)
        if query.summary == "count":
            total = len(self.repo.releasable_matches(query)) if self.repo.gated else self.repo.count(query)
            return Outcome(200, body=self._searchset([], [], total, query, None, 0))
        pks = self.repo.releasable_matches(query)
        snapshot_id = None
        if len(pks) > query.count + query.offset or query.offset:
            snapshot_id = self.repo.save_snapshot(resource_type, urlencode(query.used), pks)
        return Outcome(200, body=self._page(query, pks, snapshot_id, query.offset))

    def page(self, snapshot_id: str, offset: int, count: int | None) -> Outcome:
        snapshot = self.repo.snapshot(snapshot_id)
        query = self.parser.parse(snapshot.res_type, parse_qsl(snapshot.query, keep_blank_values=True))
        for key, raw in parse_qsl(snapshot.query):
            self.parser.parse_include_key(query, key, raw)
        if count is not None:
            query.count = min(count, self.config.max_count)
        return Outcome(200, body=self._page(query, snapshot.pks, snapshot_id, offset))

    def _page(self, query: SearchQuery, pks: list[int], snapshot_id: str | None, offset: int) -> dict[str, Any]:
        page_pks = pks[offset : offset + query.count]
        matches = self.repo.load(page_pks)
        included = self.repo.includes(matches, query.includes, query.revincludes) if matches else []
        total = len(pks) if query.total != "none" else None
        return self._searchset(matches, included, total, query, snapshot_id, offset, len(pks))

    def _searchset(
        self,
        matches: list[StoredResource],
        included: list[StoredResource],
        total: int | None,
        query: SearchQuery,
        snapshot_id: str | None,
        offset: int,
        available: int | None = None,
    ) -> dict[str, Any]:
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if total is not None:
            bundle["total"] = total
        links = [{"relation": "self", "url": self._self_link(query, offset)}]
        if snapshot_id is not None and available is not None:
            count = query.count
            if offset + count < available:
                links.append({"relation": "next", "url": self._page_link(snapshot_id, offset + count, count)})
            if offset > 0:
                links.append({"relation": "previous", "url": self._page_link(snapshot_id, max(0, offset - count), count)})
            links.append({"relation": "first", "url": self._page_link(snapshot_id, 0, count)})
            last = ((available - 1) // count) * count if count and available else 0
            links.append({"relation": "last", "url": self._page_link(snapshot_id, last, count)})
        bundle["link"] = links
        entries = [self._entry(m, "match", query) for m in matches]
        entries += [self._entry(i, "include", query) for i in included]
        if entries:
            bundle["entry"] = entries
        return bundle

    def _entry(self, stored: StoredResource, mode: str, query: SearchQuery) -> dict[str, Any]:
        resource = shape_resource(stored.content or {}, query.summary, query.elements if mode == "match" else ())
        return {"fullUrl": self.full_url(stored), "resource": resource, "search": {"mode": mode}}

    def _self_link(self, query: SearchQuery, offset: int) -> str:
        used = list(query.used)
        if offset:
            used.append(("_offset", str(offset)))
        url = f"{self.base_url}/{query.resource_type}"
        return f"{url}?{urlencode(used)}" if used else url

    def _page_link(self, snapshot_id: str, offset: int, count: int) -> str:
        return f"{self.base_url}?{urlencode({'_getpages': snapshot_id, '_offset': offset, '_count': count})}"

    # --- history -------------------------------------------------------------------------------------

    def history(
        self,
        resource_type: str | None,
        resource_id: str | None,
        params: list[tuple[str, str]],
    ) -> Outcome:
        if resource_type is not None:
            self.require_type(resource_type)
        since: datetime | None = None
        count, offset, at_most = self.config.default_count, 0, None
        for key, raw in params:
            if key == "_since":
                try:
                    low, _ = parse_date_range(raw)
                except ValueError as exc:
                    raise InvalidRequest(f"_since: '{raw}' is not a valid instant: {exc}") from None
                since = low.replace(tzinfo=UTC)
            elif key == "_count":
                count = non_negative_int(key, raw, self.config.max_count) or self.config.default_count
            elif key == "_offset":
                offset = non_negative_int(key, raw)
            elif key == "_snapshot":
                at_most = non_negative_int(key, raw)
            elif key in ("_at", "_list"):
                raise InvalidRequest(f"history parameter {key} is not supported by this server")
            elif key not in ("_format", "_pretty"):
                raise InvalidRequest(f"unknown history parameter '{key}'")
        versions, total, at_most = self.repo.history(
            resource_type, resource_id, since=since, at_most_pk=at_most, count=count, offset=offset
        )
        path = "/".join(p for p in (self.base_url, resource_type, resource_id, "_history") if p)
        base_params = [(k, v) for k, v in params if k in ("_since",)]

        def link(at_offset: int) -> str:
            extra = [("_count", str(count)), ("_offset", str(at_offset)), ("_snapshot", str(at_most))]
            return f"{path}?{urlencode(base_params + extra)}"

        links = [{"relation": "self", "url": link(offset)}]
        if offset + count < total:
            links.append({"relation": "next", "url": link(offset + count)})
        if offset > 0:
            links.append({"relation": "previous", "url": link(max(0, offset - count))})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "total": total, "link": links}
        entries = [self._history_entry(v) for v in versions]
        if entries:
            bundle["entry"] = entries
        return Outcome(200, body=bundle)

    def _history_entry(self, version: StoredResource) -> dict[str, Any]:
        url = f"{version.resource_type}/{version.id}"
        entry: dict[str, Any] = {"fullUrl": f"{self.base_url}/{url}"}
        if version.content is not None:
            entry["resource"] = version.content
        status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}[version.method]
        if version.method == "PUT" and version.version_id == 1:
            status = "201 Created"
        entry["request"] = {"method": version.method, "url": url if version.method != "POST" else version.resource_type}
        entry["response"] = {
            "status": status,
            "etag": f'W/"{version.version_id}"',
            "lastModified": fhir_instant(version.last_updated),
        }
        return entry
