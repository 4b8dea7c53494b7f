"""The request-scoped repository: all access to stored resources goes through it.

It cannot be built without the caller's ``RequestContext`` and a ``ReleaseGate``, and every
method that returns resource content (read, vread, search matches and includes, history,
write representations) passes each resource through the gate first. Conditional matching
(``If-None-Exist``, conditional update/delete, conditional references in transactions)
sees ids only, never content.

SQL lives here and in ``search_sql``; services above it speak in resources.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    Row,
    TypeDecorator,
    bindparam,
    delete,
    event,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fhir_exchange import crypto, terminology_sync
from fhir_exchange.audit.trail import AuditRecorder
from fhir_exchange.auth.scopes import LETTERS, Scopes
from fhir_exchange.errors import Forbidden, Gone, InvalidRequest, MethodNotAllowed, NotFound, PreconditionFailed
from fhir_exchange.identity.documents import document_for
from fhir_exchange.ports import (
    Release,
    ReleaseGate,
    RequestContext,
    WriteRule,
    decide_facts,
    decide_many,
    decide_undated,
    releases_everything,
    releases_own_records,
)
from fhir_exchange.release_facts import CUSTODIAN_SYSTEM, FactsReader, ReleaseFacts, custodian_of, stored_facts
from fhir_exchange.search import index as ix
from fhir_exchange.search.extract import extract
from fhir_exchange.search.params import Include, SearchQuery
from fhir_exchange.search.registry import registry
from fhir_exchange.store.models import (
    INDEX_TABLES,
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    ResourceRow,
    ResourceVersion,
    SearchSnapshot,
    StringIndex,
    TokenIndex,
    UriIndex,
)
from fhir_exchange.store.search_sql import SearchSQL, token_matches_statement, token_shape, token_values
from fhir_exchange.validation import SEALED_TYPES

_RESOURCE = ResourceRow.__table__
_VERSION = ResourceVersion.__table__
_INSERT_RESOURCE = insert(_RESOURCE).returning(_RESOURCE.c.pk)
_INSERT_RESERVED = insert(_RESOURCE)  # resource rows whose pk was reserved ahead: deferred like the rest
_MATCH_CHUNK = 50  # a gated conditional match reads its candidates this many at a time
_RESERVE_PKS = text("SELECT nextval(pg_get_serial_sequence('resource', 'pk')) FROM generate_series(1, :n)")
_INSERT_VERSION = insert(_VERSION)
_INDEX_INSERTS = {table: insert(table.__table__) for table in INDEX_TABLES}
MAX_INCLUDE_ITERATIONS = 4
SNAPSHOT_LIFETIME = timedelta(hours=1)
_ENTRY_TABLES: dict[type, Any] = {
    ix.StringEntry: StringIndex,
    ix.TokenEntry: TokenIndex,
    ix.DateEntry: DateIndex,
    ix.ReferenceEntry: ReferenceIndex,
    ix.QuantityEntry: QuantityIndex,
    ix.NumberEntry: NumberIndex,
    ix.UriEntry: UriIndex,
}
_TRUNCATE = {"value": 255, "system": 255, "code": 255, "text": 255, "type_system": 255, "type_code": 100, "unit": 100}


class _DeferredRows:
    """The version and index rows written through one connection and not yet inserted: they
    go in together, one statement per table, just before the connection runs any other
    statement (so every read, delete or update sees them), sets or releases a savepoint, or
    commits; a rollback drops them (rows pending at a savepoint were inserted before it).
    A transaction's writes then cost one INSERT per index table, not one per resource."""

    __slots__ = ("flushing", "rows")

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        self.flushing = False

    @classmethod
    def of(cls, connection: Connection) -> _DeferredRows:
        deferred = _DEFERRED.get(connection)
        if deferred is None:
            deferred = _DEFERRED[connection] = cls()
            event.listen(connection, "before_execute", deferred._before_execute)
            for name in ("commit", "savepoint", "release_savepoint"):
                event.listen(connection, name, deferred.flush)
            for name in ("rollback", "rollback_savepoint"):
                event.listen(connection, name, deferred._drop)
        return deferred

    def add(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        self.rows.setdefault(statement, []).extend(rows)

    def flush(self, connection: Connection, *_: Any) -> None:
        if not self.rows or self.flushing:
            return
        pending, self.rows = self.rows, {}
        self.flushing = True
        try:
            # resource rows first: the version and index rows refer to them
            for statement in sorted(pending, key=lambda s: s is not _INSERT_RESERVED):
                rows = pending[statement]
                table = _COPY_TABLES.get(statement)
                if table is not None and connection.dialect.name == "postgresql":
                    _copy(connection, table, rows)
                else:
                    connection.execute(statement, rows)
        finally:
            self.flushing = False

    def _before_execute(self, connection: Connection, clauseelement: Any, *_: Any) -> None:
        if self.rows and clauseelement is not _INSERT_RESOURCE:
            self.flush(connection)

    def _drop(self, *_: Any) -> None:
        self.rows = {}


_DEFERRED: WeakKeyDictionary[Connection, _DeferredRows] = WeakKeyDictionary()

# On PostgreSQL the deferred rows (resource rows whose pk was reserved, versions, index rows:
# plain INSERTs, no ON CONFLICT, nothing returned) go in by COPY, a statement per table, which
# costs about a third of an INSERT per row (a message's ~330 rows).
_COPY_TABLES = {statement: statement.table for statement in (_INSERT_RESERVED, _INSERT_VERSION, *_INDEX_INSERTS.values())}


def _copy(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """``rows`` into ``table`` by COPY on the connection's own transaction (psycopg), each
    value bound as its SQLAlchemy type binds it (a UTC timestamp made aware UTC; JSON by
    orjson, None as JSON null since none_as_null is off); a database error comes out as
    SQLAlchemy's, as an INSERT's would."""
    import psycopg

    columns = _copy_columns(table, tuple(rows[0]), connection.dialect)
    sql = f"COPY {table.name} ({', '.join(name for name, _ in columns)}) FROM STDIN"
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([convert(row.get(name)) if convert else row.get(name) for name, convert in columns])
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, None, error, psycopg.Error, dialect=connection.dialect) from error


_COPY_COLUMNS: dict[tuple[str, tuple[str, ...], str], list[tuple[str, Callable[[Any], Any] | None]]] = {}


def _copy_columns(table: Any, keys: tuple[str, ...], dialect: Any) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """The columns the rows give values for, each with its conversion (worked out once)."""
    cache_key = (table.name, keys, dialect.name)
    columns = _COPY_COLUMNS.get(cache_key)
    if columns is None:
        columns = _COPY_COLUMNS[cache_key] = [(c.name, _copy_value(c, dialect)) for c in table.columns if c.name in keys]
    return columns


def _copy_value(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    if isinstance(column.type.dialect_impl(dialect), JSON):
        return lambda value: orjson.dumps(value).decode()
    if isinstance(column.type, TypeDecorator):
        return lambda value: column.type.process_bind_param(value, dialect)
    return None


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of one resource as stored. ``content`` is None for a delete tombstone."""

    pk: int
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    method: str
    content: dict[str, Any] | None
    unchanged: bool = False  # an update that changed nothing: no new version was written
    meta_only: bool = False  # an update that changed meta only (a new version, the same record otherwise)


# meta a client does not own, or that the server sets on every write: left out when telling
# whether an update changes anything
_SERVER_META = ("versionId", "lastUpdated")


def _same_content(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    def comparable(document: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (document.get("meta") or {}).items() if k not in _SERVER_META}
        tags = [t for t in meta.get("tag") or [] if t.get("system") != CUSTODIAN_SYSTEM]
        meta = {k: v for k, v in meta.items() if k != "tag"} | ({"tag": tags} if tags else {})
        return {**{k: v for k, v in document.items() if k != "meta"}, **({"meta": meta} if meta else {})}

    return comparable(stored) == comparable(new)


def _without_meta(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "meta"}


def fhir_instant(moment: datetime) -> str:
    """An R4 ``instant`` in UTC with millisecond precision: 2026-11-24T08:00:00.123Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class SnapshotView:
    """A saved search as paging reads it (its query is sealed at rest: it may name a person)."""

    res_type: str
    query: str
    pks: list[int]


class FhirRepository:
    def __init__(
        self,
        session: Session,
        context: RequestContext,
        gate: ReleaseGate,
        *,
        base_urls: tuple[str, ...] = (),
        max_search_results: int = 1_000_000,
        write_rules: Sequence[WriteRule] = (),
    ) -> None:
        self.session = session
        self._write_rules = tuple(write_rules)
        self.context = context
        self._scopes = Scopes(context.scopes)
        self._gate = gate
        # set by the unit of work of an API request: sees everything released or written
        self.audit: AuditRecorder | None = None
        self._sql = SearchSQL(base_urls)
        self._max_search_results = max_search_results
        self._reserved: list[int] = []  # resource pks taken from the sequence ahead (PostgreSQL)

    # --- scopes: what the caller's access token lets it do (SMART v2 c r u d s) ----------------

    def require(self, resource_type: str, letter: str) -> None:
        if not self._scopes.allows(resource_type, letter):
            raise Forbidden(
                f"the access token does not allow {LETTERS[letter]} on {resource_type} "
                f"(it needs the scope system/{resource_type}.{letter} or wider)"
            )

    def _may_see(self, resource_type: str) -> bool:
        return self._scopes.allows(resource_type, "r") or self._scopes.allows(resource_type, "s")

    # --- the gate ----------------------------------------------------------------------------

    def _release(self, stored: StoredResource) -> StoredResource | None:
        """The version as the caller may see it, or None if the gate denies it."""
        released = self._release_all([stored])
        return released[0] if released else None

    def releasable_matches(self, query: SearchQuery) -> list[int]:
        """``releasable(search_pks(query))`` with one statement fewer: the matches are read with
        their release facts."""
        if not self.gated:
            return self.search_pks(query)
        self.require(query.resource_type, "s")
        resource = _RESOURCE.c
        stmt = self._sql.matching(query.resource_type, query.criteria).with_only_columns(
            resource.pk, resource.res_type, resource.release_facts, resource.version_id)
        stmt = stmt.order_by(*self._sql.order_by(query.resource_type, query.sort)).limit(self._max_search_results + 1)
        rows = self.session.execute(stmt).all()
        if len(rows) > self._max_search_results:
            raise InvalidRequest(
                f"the search matches more than {self._max_search_results} resources; narrow it with more parameters"
            )
        page = [] if query.summary == "count" else [row.pk for row in rows[query.offset : query.offset + query.count]]
        return self._releasable(rows, page=page)  # type: ignore[arg-type]  # a Row is the tuple it holds

    def releasable(self, pks: list[int], batch: int = 500) -> list[int]:
        """The pks (in order) of the resources the gate would release to this caller: search
        totals and pages count only those, so a total reveals nothing withheld."""
        if releases_everything(self._gate) or not pks:
            return pks
        resource = _RESOURCE.c
        found: dict[int, tuple[int, str, str | None, int]] = {}
        for start in range(0, len(pks), batch):
            found.update((row.pk, tuple(row)) for row in self.session.execute(  # type: ignore[misc]
                select(resource.pk, resource.res_type, resource.release_facts, resource.version_id).where(
                    resource.pk.in_(pks[start : start + batch]), resource.deleted == false())))
        return self._releasable([found[pk] for pk in pks if pk in found], batch)

    def _releasable(self, rows: Sequence[tuple[int, str, str | None, int]], batch: int = 500, *,
                    page: Sequence[int] = ()) -> list[int]:
        """Of the live resources ``rows`` (pk, type, release facts, version), in order, the pks of those
        the gate releases. Each is decided from the release facts kept with its version
        (``release_facts.py``) when the gate decides on facts (``decide_facts``), without
        reading its content; records the caller's institution holds count at once when the gate
        releases those whole (``releases_own_records``). The rest are loaded and decided
        together, and the first batch of those is kept, as released, for the ``load`` of the
        page that follows (until anything is written through this session); of those released
        whole on facts, the version is kept, so that ``load`` does not decide that version again.

        ``page``, the matches the caller will load next, rides along with a lookup the gate
        makes through this session while it decides (``lookup``): read in that statement, they
        cost ``load`` none of its own."""
        allowed, self._kept, self._whole, self._ridden = self._decide_rows(rows, batch, page=page)
        self._kept_at = self.session.info.setdefault(_WRITES, 0)
        return [pk for pk, _, _, _ in rows if pk in allowed]

    def _decide_rows(self, rows: Sequence[tuple[int, str, str | None, int]], batch: int = 500, *,
                     page: Sequence[int] = ()) -> tuple[set[int], dict[int, tuple[Row[Any], dict[str, Any]]],
                                                        dict[int, int], dict[int, Row[Any]]]:
        """``_releasable``'s decisions, without keeping them for ``load``: the pks released, the
        rows loaded and released (with the content as released), the versions released whole on
        their facts, and the rows read beside the gate's lookup."""
        institution = self.context.institution if releases_own_records(self._gate) else None
        allowed: set[int] = set()
        kept: dict[int, tuple[Row[Any], dict[str, Any]]] = {}
        ridden: dict[int, Row[Any]] = {}
        whole: dict[int, int] = {}  # pk -> the version released whole
        resource = _RESOURCE.c
        reader = FactsReader()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            undecided: list[int] = []
            by_facts: dict[int, ReleaseFacts] = {}
            versions: dict[int, int] = {}
            # matches whose facts differ only by the date (the kept text before its last comma),
            # together: each group's facts are read and its custodian checked once, and a group
            # the gate decides is decided once where the date cannot change the outcome
            # (``decide_undated``), else each on its own date
            by_text: dict[tuple[str, str], list[tuple[int, str, str | None, int]]] = {}
            for row in chunk:
                kept_facts = row[2]
                if not kept_facts:  # no facts: read whole
                    undecided.append(row[0])
                    continue
                key = (row[1], kept_facts.rpartition(",")[0])
                group = by_text.get(key)
                if group is None:
                    by_text[key] = [row]
                else:
                    group.append(row)
            groups: list[list[tuple[int, str, str | None, int]]] = []
            heads: list[ReleaseFacts] = []
            for (resource_type, head), group in by_text.items():
                shared = reader.undated(resource_type, head)
                if shared is None:  # not in this FACTS_VERSION's form: each as its text says
                    for pk, _, kept_facts, version in group:
                        facts = reader(resource_type, kept_facts)
                        if facts is None:
                            undecided.append(pk)
                        elif institution is not None and facts.custodian == institution:
                            allowed.add(pk)
                            whole[pk] = version
                        else:
                            by_facts[pk] = facts
                            versions[pk] = version
                elif institution is not None and shared.custodian == institution:
                    for pk, _, _, version in group:
                        allowed.add(pk)
                        whole[pk] = version
                else:
                    groups.append(group)
                    heads.append(shared)
            if heads:
                for group, outcome in zip(groups, self._ask(decide_undated, heads, page, ridden), strict=True):
                    if outcome is None:
                        for pk, resource_type, kept_facts, version in group:
                            facts = reader(resource_type, kept_facts)
                            if facts is None:
                                undecided.append(pk)
                            else:
                                by_facts[pk] = facts
                                versions[pk] = version
                    elif outcome is not Release.DENY:
                        for pk, _, _, version in group:
                            allowed.add(pk)
                            if outcome is Release.PERMIT:
                                whole[pk] = version
            if by_facts:
                outcomes = self._ask(decide_facts, list(by_facts.values()), page, ridden)
                for pk, outcome in zip(by_facts, outcomes, strict=True):
                    if outcome is None:
                        undecided.append(pk)
                    elif outcome is not Release.DENY:
                        allowed.add(pk)
                        if outcome is Release.PERMIT:
                            whole[pk] = versions[pk]
            if not undecided:
                continue
            loaded = [row for row in self.session.execute(select(_RESOURCE).where(resource.pk.in_(undecided)))
                      if not row.deleted and row.content is not None]
            opened = [crypto.vault().reveal(row.content) if row.res_type in SEALED_TYPES else row.content for row in loaded]
            decisions = decide_many(self._gate, self.context, [self._gated_as(content) for content in opened],
                                    session=self.session)
            for row, content, decision in zip(loaded, opened, decisions, strict=True):
                if decision.outcome is Release.DENY:
                    continue
                allowed.add(row.pk)
                if len(kept) < batch:
                    kept[row.pk] = (row, decision.resource if decision.outcome is Release.PERMIT_WITH_MASKING else content)
        return allowed, kept, whole, ridden

    def _ask(self, ask: Callable[..., list[Release | None]], facts: list[ReleaseFacts], page: Sequence[int],
             ridden: dict[int, Row[Any]]) -> list[Release | None]:
        """``ask`` (``decide_undated`` or ``decide_facts``) the gate about ``facts`` through this
        session, with ``page`` riding along on any lookup it makes (``lookup``) until one has."""
        if page and not ridden:
            self.session.info[_RIDE_ALONG] = list(page)
        try:
            return ask(self._gate, self.context, facts, session=self.session)
        finally:
            self.session.info.pop(_RIDE_ALONG, None)
            ridden.update(self.session.info.pop(_RIDDEN, None) or {})

    @property
    def gated(self) -> bool:
        return not releases_everything(self._gate)

    def _release_all(self, items: Iterable[StoredResource], *, touch: bool = True) -> list[StoredResource]:
        """Those of ``items`` the gate releases, in order, as the caller may see them (the
        masked copy where it masks); the gate decides them together. With ``touch`` the
        audit records each released one (else the caller does)."""
        opened = [replace(s, content=crypto.vault().reveal(s.content))
                  if s.content is not None and s.resource_type in SEALED_TYPES else s for s in items]
        decisions = iter(decide_many(self._gate, self.context,
                                     [self._gated_as(s.content) for s in opened if s.content is not None],
                                     session=self.session))
        released = []
        for stored in opened:
            if stored.content is not None:  # a tombstone carries no clinical content
                decision = next(decisions)
                if decision.outcome is Release.DENY:
                    if self.audit is not None:
                        self.audit.refused(stored)
                    continue
                if decision.outcome is Release.PERMIT_WITH_MASKING:
                    stored = replace(stored, content=decision.resource)
            if touch and self.audit is not None:
                self.audit.touched(stored)
            released.append(stored)
        return released

    def _gated_as(self, content: dict[str, Any]) -> dict[str, Any]:
        """What the gate decides on for ``content``: itself, except a Binary whose
        securityContext names another resource (an MHD document's DocumentReference): access
        to it is access to that resource (R4 Binary.securityContext)."""
        if content.get("resourceType") != "Binary":
            return content
        reference = ((content.get("securityContext") or {}).get("reference") or "")
        resource_type, _, resource_id = reference.partition("/")
        if not resource_id or resource_type in ("Patient", "Binary") or "/" in resource_id:
            return content
        row = self._row(resource_type, resource_id)
        if row is None or row.deleted or row.content is None:
            return content
        return crypto.vault().reveal(row.content) if resource_type in SEALED_TYPES else row.content

    def _release_written(self, stored: StoredResource) -> StoredResource:
        """A write succeeds even if its writer may not see the result; then no content is returned."""
        released = self._release(stored)
        return released if released is not None else replace(stored, content=None)

    def _release_or_refuse(self, stored: StoredResource, unknown: str | None = None) -> StoredResource:
        """The released version; a denied one answers exactly as one that does not exist
        (404 with the same words), so that nothing leaks by status or message."""
        released = self._release(stored)
        if released is None:
            raise NotFound(unknown or f"{stored.resource_type}/{stored.id} is not known")
        return released

    # --- reads -------------------------------------------------------------------------------

    def _row(self, resource_type: str, resource_id: str, *, for_update: bool = False) -> Row[Any] | None:
        stmt = select(_RESOURCE).where(_RESOURCE.c.res_type == resource_type, _RESOURCE.c.res_id == resource_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.execute(stmt).first()

    def current_version(self, resource_type: str, resource_id: str) -> tuple[int, bool] | None:
        """(version, deleted) of the current version, without content; None if never written."""
        row = self.session.execute(
            select(ResourceRow.version_id, ResourceRow.deleted).where(
                ResourceRow.res_type == resource_type, ResourceRow.res_id == resource_id
            )
        ).first()
        return (row[0], row[1]) if row else None

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        self.require(resource_type, "r")
        row = self._row(resource_type, resource_id)
        if row is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        if row.deleted:
            if not self._tombstone_released(row.pk, row.version_id):
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            raise Gone(
                f"{resource_type}/{resource_id} was deleted (version {row.version_id})",
                headers={"ETag": f'W/"{row.version_id}"'},
            )
        return self._release_or_refuse(_from_row(row))

    def _tombstone_released(self, pk: int, version_id: int) -> bool:
        """Whether the gate lets the caller know of a deletion: as it would let them see the
        version deleted (a deletion tells that the record existed, so it is the record's to
        release; one the caller may not see answers as one that never existed)."""
        if releases_everything(self._gate):
            return True
        content = self._deleted_version(pk, version_id)
        if content is None:
            return False
        document = crypto.vault().reveal(content) if content.get("resourceType") in SEALED_TYPES else content
        return decide_many(self._gate, self.context, [self._gated_as(document)],
                           session=self.session)[0].outcome is not Release.DENY

    def _deleted_version(self, pk: int, version_id: int) -> dict[str, Any] | None:
        """The stored content of the last version before ``version_id`` that had any."""
        v = ResourceVersion
        return self.session.execute(
            select(v.content).where(v.resource_pk == pk, v.version_id < version_id, v.content.is_not(None))
            .order_by(v.version_id.desc()).limit(1)).scalar_one_or_none()

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        self.require(resource_type, "r")
        version = self.session.execute(
            select(ResourceVersion).where(
                ResourceVersion.res_type == resource_type,
                ResourceVersion.res_id == resource_id,
                ResourceVersion.version_id == version_id,
            )
        ).scalar_one_or_none()
        if version is None:
            raise NotFound(f"{resource_type}/{resource_id} has no version {version_id}")
        if version.deleted:
            if not self._tombstone_released(version.resource_pk, version.version_id):
                raise NotFound(f"{resource_type}/{resource_id} has no version {version_id}")
            raise Gone(f"{resource_type}/{resource_id} version {version_id} is a deletion")
        return self._release_or_refuse(_from_version(version), f"{resource_type}/{resource_id} has no version {version_id}")

    def load(self, pks: Sequence[int]) -> list[StoredResource]:
        """The current versions of ``pks``, in that order, released through the gate (those
        that ``releasable`` has just decided are not decided again)."""
        if not pks:
            return []
        if getattr(self, "_kept_at", None) != self.session.info.get(_WRITES, 0):
            # written through this session since ``releasable`` decided: nothing it read is used
            self._kept, self._whole, self._ridden = {}, {}, {}
        kept = getattr(self, "_kept", None) or {}
        whole = getattr(self, "_whole", None) or {}
        ridden = getattr(self, "_ridden", None) or {}
        rest = [pk for pk in dict.fromkeys(pks) if pk not in kept]
        fresh: dict[int, StoredResource] = {}
        if rest:
            # the rows read beside the gate's lookup (``_releasable``) are not read again
            unread = [pk for pk in rest if pk not in ridden]
            rows = [ridden[pk] for pk in rest if pk in ridden]
            if unread:
                rows += self.session.execute(select(_RESOURCE).where(_RESOURCE.c.pk.in_(unread))).all()
            by_pk = {row.pk: row for row in rows if not row.deleted}
            loaded = [_from_row(by_pk[pk]) for pk in rest if pk in by_pk]
            # a version ``releasable`` has just released whole is not decided again
            decided = [s for s in loaded if whole.get(s.pk) == s.version_id and s.content is not None]
            fresh = {s.pk: s for s in self._release_all([s for s in loaded if whole.get(s.pk) != s.version_id
                                                         or s.content is None], touch=False)}
            fresh |= {s.pk: replace(s, content=crypto.vault().reveal(s.content)) if s.resource_type in SEALED_TYPES else s
                      for s in decided}
        released = []
        for pk in pks:
            if pk in kept:
                row, content = kept[pk]
                stored = replace(_from_row(row), content=content)
            elif pk in fresh:
                stored = fresh[pk]
            else:
                continue
            if self.audit is not None:
                self.audit.touched(stored)
            released.append(stored)
        return released

    # --- writes ------------------------------------------------------------------------------

    def _refuse_audit_writes(self, resource_type: str) -> None:
        if resource_type == "AuditEvent":
            raise MethodNotAllowed("AuditEvents are append-only: BayLink writes them, and none is updated or deleted")

    def _check_write(self, resource_type: str, resource_id: str, previous: dict[str, Any] | None,
                     new: dict[str, Any] | None) -> dict[str, Any] | None:
        """An institution changes only its own records: a stored resource whose custodian is
        another institution is refused (403), except a Task updated by the institution that owns
        it (it reports progress on work asked of it); then every ``WriteRule`` checks, and may
        amend, the version to be written. Returns that version."""
        custodian = custodian_of(previous)
        institution = self.context.institution
        if previous is not None and custodian is not None and institution is not None and custodian != institution:
            owner = ((previous.get("owner") or {}).get("reference") if resource_type == "Task" else None)
            if new is None or owner != f"Organization/{institution}":
                raise Forbidden(f"{resource_type}/{resource_id} is held by institution {custodian}; "
                                f"only its custodian may change it")
        for rule in self._write_rules:
            amended = rule.check(self.session, self.context, resource_type, previous, new)
            if amended is not None and new is not None:
                new = amended
        return new

    def create(self, resource_type: str, content: dict[str, Any], resource_id: str | None = None) -> StoredResource:
        self.require(resource_type, "c")
        self._refuse_audit_writes(resource_type)
        new_id = resource_id or str(uuid.uuid4())
        content = self._check_write(resource_type, new_id, None, {**content, "id": new_id}) or content
        stored = self._write(resource_type, new_id, content, "POST", None)
        return self._release_written(stored)

    def update(
        self, resource_type: str, resource_id: str, content: dict[str, Any], *, if_match: int | None = None,
        fresh: bool = False,
    ) -> tuple[StoredResource, bool]:
        """Update, or create with the client's id (update-as-create). Returns (version, created).
        ``fresh``: the id was just made up (a uuid), so there is no stored row to look for."""
        self.require(resource_type, "u")
        self._refuse_audit_writes(resource_type)
        row = None if fresh else self._row(resource_type, resource_id, for_update=True)
        if if_match is not None:
            current = row.version_id if row is not None and not row.deleted else None
            if current != if_match:
                raise PreconditionFailed(
                    f"If-Match W/\"{if_match}\" does not match the current version of "
                    f"{resource_type}/{resource_id} ({'none' if current is None else current})"
                )
        created = row is None or row.deleted
        content = self._check_write(resource_type, resource_id, None if created else row.content,
                                    {**content, "id": resource_id}) or content
        meta_only = False
        if not created and row.content is not None:
            current = crypto.vault().reveal(row.content) if resource_type in SEALED_TYPES else row.content
            if _same_content(current, {"resourceType": resource_type, **content, "id": resource_id}):
                # nothing changes: no new version (as HAPI's no-op update detection); the
                # current version is answered, and the audit records the request as usual
                return replace(self._release_written(_from_row(row)), unchanged=True), False
            meta_only = _without_meta(current) == _without_meta({"resourceType": resource_type, **content, "id": resource_id})
        stored = self._write(resource_type, resource_id, content, "PUT", row)
        return replace(self._release_written(stored), meta_only=meta_only), created

    def delete(self, resource_type: str, resource_id: str, *, if_match: int | None = None) -> StoredResource | None:
        """Write a tombstone. None if there was nothing to delete: already deleted, or never
        written (R4 http.html#delete answers both as success)."""
        self.require(resource_type, "d")
        self._refuse_audit_writes(resource_type)
        row = self._row(resource_type, resource_id, for_update=True)
        if row is None:
            if if_match is not None:
                raise PreconditionFailed(f"If-Match given, but {resource_type}/{resource_id} does not exist")
            return None
        if if_match is not None and (row.deleted or row.version_id != if_match):
            raise PreconditionFailed(
                f"If-Match W/\"{if_match}\" does not match the current version of {resource_type}/{resource_id}"
            )
        if row.deleted:
            return None
        self._check_write(resource_type, resource_id, row.content, None)
        moment = max(_now(), row.last_updated + timedelta(milliseconds=1))
        version_id = row.version_id + 1
        self.session.execute(
            update(_RESOURCE).where(_RESOURCE.c.pk == row.pk)
            .values(version_id=version_id, last_updated=moment, deleted=True, content=None, release_facts=None)
        )
        self._clear_index(row.pk)
        self.session.execute(_INSERT_VERSION, {
            "resource_pk": row.pk, "res_type": resource_type, "res_id": resource_id, "version_id": version_id,
            "last_updated": moment, "method": "DELETE", "deleted": True, "content": None,
        })
        if resource_type in terminology_sync.TERMINOLOGY_TYPES:
            terminology_sync.deleted(self.session, resource_type, resource_id)
        if self.audit is not None:
            self.audit.deleted(resource_type, resource_id, row.content)
        return StoredResource(row.pk, resource_type, resource_id, version_id, moment, True, "DELETE", None)

    def reserve_pks(self, count: int) -> None:
        """Take ``count`` resource pks from the sequence in one statement (PostgreSQL), for the
        creates the caller is about to make (a transaction's new resources): their resource
        rows then go in with the other deferred rows, not by one INSERT … RETURNING each. The
        pks come in sequence order and are used in the order of the writes; any left unused
        are gaps, as a rolled back insert leaves. SQLite inserts one by one as ever."""
        if count < 2 or self.session.connection().dialect.name != "postgresql":
            return
        self._reserved.extend(self.session.execute(_RESERVE_PKS, {"n": count}).scalars())

    def _write(
        self, resource_type: str, resource_id: str, content: dict[str, Any], method: str, row: Row[Any] | None
    ) -> StoredResource:
        moment = _now() if row is None else max(_now(), row.last_updated + timedelta(milliseconds=1))
        version_id = 1 if row is None else row.version_id + 1
        document = dict(content)
        document["id"] = resource_id
        meta = dict(document.get("meta") or {})
        meta = stamp_custodian(meta, self.context.institution, row.content if row is not None else None)
        meta["versionId"] = str(version_id)
        meta["lastUpdated"] = fhir_instant(moment)
        document["meta"] = meta
        # key order: resourceType, id, meta first, as servers conventionally return them
        document = {"resourceType": resource_type, "id": resource_id, "meta": meta, **document}
        stored_document = crypto.vault().protect(document) if resource_type in SEALED_TYPES else document
        facts = stored_facts(resource_type, resource_id, document)
        if row is None and self._reserved:
            pk = self._reserved.pop(0)
            if _WRITES in self.session.info:  # as executing the INSERT below would tell ``load``
                _wrote(self.session)
            self._deferred().add(_INSERT_RESERVED, [{
                "pk": pk, "res_type": resource_type, "res_id": resource_id, "version_id": version_id,
                "last_updated": moment, "deleted": False, "content": stored_document, "release_facts": facts,
            }])
        elif row is None:
            pk = self.session.execute(_INSERT_RESOURCE, {
                "res_type": resource_type, "res_id": resource_id, "version_id": version_id,
                "last_updated": moment, "deleted": False, "content": stored_document, "release_facts": facts,
            }).scalar_one()
        else:
            pk = row.pk
            self.session.execute(
                update(_RESOURCE).where(_RESOURCE.c.pk == pk)
                .values(version_id=version_id, last_updated=moment, deleted=False, content=stored_document,
                        release_facts=facts)
            )
            self._clear_index(pk)
        self._deferred().add(_INSERT_VERSION, [{
            "resource_pk": pk, "res_type": resource_type, "res_id": resource_id, "version_id": version_id,
            "last_updated": moment, "method": method, "deleted": False, "content": stored_document,
        }])
        self._write_index(pk, resource_type, document)
        if resource_type in terminology_sync.TERMINOLOGY_TYPES:
            terminology_sync.written(self.session, document)
        stored = StoredResource(pk, resource_type, resource_id, version_id, moment, False, method, document)
        if self.audit is not None:
            self.audit.touched(stored)
        return stored

    def write_internal(self, resource_type: str, resource_id: str, content: dict[str, Any], *,
                       fresh: bool = False) -> StoredResource:
        """A resource BayLink itself writes (the audit trail, record links, review tasks):
        no scope check. Creates, or updates the current version. ``fresh``: the caller made
        the id up just now (a uuid), so there is no stored row to look for."""
        row = None if fresh else self._row(resource_type, resource_id, for_update=True)
        return self._write(resource_type, resource_id, content, "POST" if row is None else "PUT", row)

    def load_internal(self, pks: Sequence[int]) -> list[StoredResource]:
        """Current versions for BayLink's own use (record linkage): opened, not released to
        anyone, so not gated."""
        if not pks:
            return []
        rows = self.session.execute(select(_RESOURCE).where(_RESOURCE.c.pk.in_(list(pks)))).all()
        result = []
        for row in rows:
            if row.deleted:
                continue
            stored = _from_row(row)
            if stored.resource_type in SEALED_TYPES and stored.content is not None:
                stored = replace(stored, content=crypto.vault().reveal(stored.content))
            result.append(stored)
        return result

    def search_pks_internal(self, query: SearchQuery) -> list[int]:
        stmt = self._sql.matching(query.resource_type, query.criteria).order_by(ResourceRow.pk).limit(self._max_search_results)
        return list(self.session.execute(stmt).scalars())

    def _clear_index(self, pk: int) -> None:
        for table in INDEX_TABLES:
            self.session.execute(delete(table.__table__).where(table.__table__.c.resource_pk == pk))

    def _write_index(self, pk: int, resource_type: str, document: dict[str, Any]) -> None:
        rows: dict[Any, list[dict[str, Any]]] = {}
        for entry in extract(document):
            table = _ENTRY_TABLES[type(entry)]
            values = {name: getattr(entry, name) for name in entry.__slots__}
            for name, limit in _TRUNCATE.items():
                if isinstance(values.get(name), str) and len(values[name]) > limit:
                    values[name] = values[name][:limit]
            values["resource_pk"] = pk
            values["res_type"] = resource_type
            if table is TokenIndex and resource_type in SEALED_TYPES and document_for(values.get("system")) is not None:
                # a blind index, never the identity document number itself
                values["code"] = crypto.vault().blind(values["system"], values["code"] or "")
            rows.setdefault(table, []).append(values)
        deferred = self._deferred()
        for table, batch in rows.items():
            deferred.add(_INDEX_INSERTS[table], batch)

    def _deferred(self) -> _DeferredRows:
        return _DeferredRows.of(self.session.connection())

    # --- search ------------------------------------------------------------------------------

    def search_pks(self, query: SearchQuery) -> list[int]:
        """The pks of every match, in the requested order (ungated: ids only)."""
        self.require(query.resource_type, "s")
        stmt = self._sql.matching(query.resource_type, query.criteria)
        stmt = stmt.order_by(*self._sql.order_by(query.resource_type, query.sort))
        stmt = stmt.limit(self._max_search_results + 1)
        pks = list(self.session.execute(stmt).scalars())
        if len(pks) > self._max_search_results:
            raise InvalidRequest(
                f"the search matches more than {self._max_search_results} resources; narrow it with more parameters"
            )
        return pks

    def count(self, query: SearchQuery) -> int:
        self.require(query.resource_type, "s")
        subquery = self._sql.matching(query.resource_type, query.criteria).subquery()
        return self.session.execute(select(func.count()).select_from(subquery)).scalar_one()

    def match_ids(self, query: SearchQuery, limit: int = 2) -> list[str]:
        """Ids of up to ``limit`` matches, by pk, for conditional interactions (create with
        If-None-Exist, conditional update and delete, conditional references in a transaction).

        Only what the gate releases to the caller matches: a record it may not see is, to a
        conditional interaction, one that does not exist, as it is to a read. Otherwise the
        status would tell of it: 200 against 201 for If-None-Exist, 412 for two matches where
        the caller sees one, 403 for a conditional update that found another institution's
        record (issue 6: a denied record answers as if it did not exist). The matches are
        read with their release facts a chunk at a time until ``limit`` are released."""
        self.require(query.resource_type, "s")
        matching = self._sql.matching(query.resource_type, query.criteria)
        if not self.gated:
            stmt = matching.with_only_columns(ResourceRow.res_id)
            return list(self.session.execute(stmt.order_by(ResourceRow.pk).limit(limit)).scalars())
        resource = _RESOURCE.c
        stmt = matching.with_only_columns(resource.pk, resource.res_type, resource.release_facts, resource.version_id,
                                          resource.res_id).order_by(resource.pk)
        found: list[str] = []
        after: int | None = None
        while len(found) < limit:
            chunk = self.session.execute(
                (stmt if after is None else stmt.where(resource.pk > after)).limit(_MATCH_CHUNK)).all()
            found += self._released_ids(chunk)
            if len(chunk) < _MATCH_CHUNK:
                break
            after = chunk[-1].pk
        return found[:limit]

    def _released_ids(self, rows: Sequence[Row[Any]]) -> list[str]:
        """The res_ids, in order, of the matches ``rows`` (pk, type, release facts, version,
        res_id) the gate releases to the caller."""
        if not rows:
            return []
        allowed = self._decide_rows([(row.pk, row.res_type, row.release_facts, row.version_id) for row in rows])[0]
        return [row.res_id for row in rows if row.pk in allowed]

    def match_ids_many(self, queries: Sequence[SearchQuery], limit: int = 2) -> list[list[str]]:
        """``match_ids`` of each query, in order (gated as it is). The queries whose criteria are all plain
        ``system|code`` tokens (a transaction's conditional updates on identifier and
        custodian tag) are answered together by one statement, each by a branch that is the
        statement ``match_ids`` runs for it, built once per sequence of shapes with the
        values bound; any other query runs on its own."""
        for query in queries:
            self.require(query.resource_type, "s")
        results: list[list[str]] = [[] for _ in queries]
        together: list[int] = []  # positions of the queries answered together
        shapes = []
        params: dict[str, str] = {}
        for position, query in enumerate(queries):
            shape = token_shape(query.resource_type, query.criteria)
            if shape is None:
                results[position] = self.match_ids(query, limit)
                continue
            q = len(together)
            together.append(position)
            shapes.append(shape)
            for i, (system, code) in enumerate(token_values(query.criteria)):
                params[f"s{q}_{i}"], params[f"c{q}_{i}"] = system, code
        if together:
            rows: list[list[Row[Any]]] = [[] for _ in together]
            for row in self.session.execute(token_matches_statement(tuple(shapes), limit), params):
                rows[row.q].append(row)
            for q, found in enumerate(rows):
                position = together[q]
                if not self.gated:
                    results[position] = [row.res_id for row in found]
                    continue
                released = self._released_ids(found)
                # a branch stops at ``limit``: if the gate withheld any of those, more may follow
                results[position] = (self.match_ids(queries[position], limit)
                                     if len(released) < len(found) == limit else released)
        return results

    def includes(
        self, matches: Sequence[StoredResource], includes: list[Include], revincludes: list[Include]
    ) -> list[StoredResource]:
        """Resources named by ``_include`` / ``_revinclude`` for ``matches``, released through the gate."""
        seen = {m.pk for m in matches}
        result: list[StoredResource] = []
        frontier = list(matches)
        for iteration in range(MAX_INCLUDE_ITERATIONS):
            wanted_inc = [i for i in includes if iteration == 0 or i.iterate]
            wanted_rev = [i for i in revincludes if iteration == 0 or i.iterate]
            if not frontier or not (wanted_inc or wanted_rev):
                break
            pks: list[int] = []
            for include in wanted_inc:
                pks += self._include_pks(frontier, include)
            for include in wanted_rev:
                pks += self._revinclude_pks(frontier, include)
            new = [pk for pk in dict.fromkeys(pks) if pk not in seen]
            seen.update(new)
            loaded = self.load(new)
            result += [r for r in loaded if self._may_see(r.resource_type)]  # scopes limit includes too
            frontier = loaded
        return result

    def _include_pks(self, frontier: Sequence[StoredResource], include: Include) -> list[int]:
        sources = [m.pk for m in frontier if m.resource_type == include.source_type]
        if not sources:
            return []
        ref = ReferenceIndex
        conditions = [ref.resource_pk.in_(sources), ref.target_id.is_not(None)]
        if include.param is not None:
            conditions.append(ref.param == include.param.code)
        if include.target_type:
            conditions.append(ref.target_type == include.target_type)
        targets = select(ref.target_type, ref.target_id).where(*conditions).distinct().subquery()
        stmt = select(ResourceRow.pk).join(
            targets,
            (ResourceRow.res_type == targets.c.target_type) & (ResourceRow.res_id == targets.c.target_id),
        ).where(ResourceRow.deleted == false())
        return list(self.session.execute(stmt).scalars())

    def _revinclude_pks(self, frontier: Sequence[StoredResource], include: Include) -> list[int]:
        keys = [(m.resource_type, m.id) for m in frontier]
        if include.target_type:
            keys = [k for k in keys if k[0] == include.target_type]
        if not keys:
            return []
        ref = ReferenceIndex
        conditions = [ref.res_type == include.source_type, tuple_(ref.target_type, ref.target_id).in_(keys)]
        if include.param is not None:
            conditions.append(ref.param == include.param.code)
        stmt = (
            select(ResourceRow.pk)
            .join(ref, ref.resource_pk == ResourceRow.pk)
            .where(*conditions, ResourceRow.deleted == false())
            .distinct()
        )
        return list(self.session.execute(stmt).scalars())

    # --- search snapshots (stable paging) ----------------------------------------------------

    def save_snapshot(self, resource_type: str, query_string: str, pks: list[int]) -> str:
        snapshot_id = str(uuid.uuid4())
        now = _now()
        self.session.add(
            SearchSnapshot(id=snapshot_id, created=now, res_type=resource_type, query=crypto.vault().seal_text(query_string),
                           total=len(pks), pks=pks, owner=self._caller())
        )
        self.session.flush()
        return snapshot_id

    def _caller(self) -> str:
        context = self.context
        who = "|".join([context.client_id or "", context.institution or "", context.user or "", context.purpose_of_use,
                        " ".join(sorted(context.scopes)), " ".join(sorted(context.roles))])
        return hashlib.sha256(who.encode()).hexdigest()

    def snapshot(self, snapshot_id: str) -> SnapshotView:
        snapshot = self.session.get(SearchSnapshot, snapshot_id)
        if snapshot is None or snapshot.created < _now() - SNAPSHOT_LIFETIME or snapshot.owner != self._caller():
            raise Gone(f"the search result set '{snapshot_id}' has expired or never existed; search again")
        self.require(snapshot.res_type, "s")
        return SnapshotView(snapshot.res_type, crypto.vault().open_text(snapshot.query), list(snapshot.pks))

    # --- history -----------------------------------------------------------------------------

    def history(
        self,
        resource_type: str | None,
        resource_id: str | None,
        *,
        since: datetime | None,
        at_most_pk: int | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int, int]:
        """Versions, newest first, released through the gate. Returns (page, total, max_pk):
        ``max_pk`` bounds later pages so that versions written meanwhile do not shift them."""
        v = ResourceVersion
        conditions = []
        if resource_id is not None:
            self.require(resource_type or "", "r")
        elif resource_type is not None:
            self.require(resource_type, "s")
        if resource_type is None:
            conditions.append(v.res_type != "AuditEvent")  # the audit trail is read as AuditEvent, not history
        if resource_type is not None:
            conditions.append(v.res_type == resource_type)
            if resource_type not in registry().resource_types():
                raise NotFound(f"resource type {resource_type} is not supported")
        if resource_id is not None:
            conditions.append(v.res_id == resource_id)
            if self.current_version(resource_type or "", resource_id) is None:
                raise NotFound(f"{resource_type}/{resource_id} is not known")
        if since is not None:
            conditions.append(v.last_updated >= since)
        if at_most_pk is None:
            at_most_pk = self.session.execute(select(func.max(v.pk)).where(*conditions)).scalar_one() or 0
        conditions.append(v.pk <= at_most_pk)
        if self.gated:
            # behind a release gate, count and page only the versions it releases (a total
            # over everything would reveal what is withheld)
            released = self._releasable_versions(conditions)
            if resource_id is not None and since is None and not released:
                # a record none of whose versions the caller may see answers as one never written
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            page_pks = released[offset : offset + count]
            versions = self.session.execute(select(v).where(v.pk.in_(page_pks)).order_by(v.pk.desc())).scalars().all()
            return self._release_all(_from_version(x) for x in versions), len(released), at_most_pk
        total = self.session.execute(select(func.count()).select_from(v).where(*conditions)).scalar_one()
        stmt = select(v).where(*conditions).order_by(v.pk.desc()).offset(offset).limit(count)
        versions = self.session.execute(stmt).scalars().all()
        visible = (_from_version(x) for x in versions if self._may_see(x.res_type))
        return self._release_all(visible), total, at_most_pk

    def _releasable_versions(self, conditions: list[Any]) -> list[int]:
        v = ResourceVersion
        rows = self.session.execute(
            select(v.pk, v.res_type, v.content, v.resource_pk, v.version_id).where(*conditions).order_by(v.pk.desc())
            .limit(self._max_search_results)
        ).all()
        rows = [row for row in rows if self._may_see(row.res_type)]
        if releases_everything(self._gate):
            return [row.pk for row in rows]
        # each version decided as itself, a deletion as the version it deleted; all in one batch
        documents: list[dict[str, Any] | None] = []
        for row in rows:
            content = row.content if row.content is not None else self._deleted_version(row.resource_pk, row.version_id)
            if content is not None and content.get("resourceType") in SEALED_TYPES:
                content = crypto.vault().reveal(content)
            documents.append(None if content is None else self._gated_as(content))
        decisions = iter(decide_many(self._gate, self.context, [d for d in documents if d is not None],
                                     session=self.session))
        return [row.pk for row, document in zip(rows, documents, strict=True)
                if document is not None and next(decisions).outcome is not Release.DENY]

    # --- bulk helpers ------------------------------------------------------------------------

    def ids_exist(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        keys = list(keys)
        if not keys:
            return set()
        stmt = select(ResourceRow.res_type, ResourceRow.res_id).where(
            or_(*[(ResourceRow.res_type == t) & (ResourceRow.res_id == i) for t, i in keys]),
            ResourceRow.deleted == false(),
        )
        return {(t, i) for t, i in self.session.execute(stmt)}

    def lookup(self, keys: Sequence[tuple[str, str]], referring: tuple[str, str, Sequence[str]] | None = None
               ) -> list[StoredResource]:
        """In one statement, released through the gate: the current versions of the resources
        named by ``keys`` (type, id), and, with ``referring`` (type, reference parameter,
        targets such as ``Patient/p1``), those of that type whose parameter refers to any of
        the targets (as ``type?param=target,…`` finds them)."""
        wanted: dict[str, list[str]] = {}
        for resource_type, resource_id in keys:
            wanted.setdefault(resource_type, []).append(resource_id)
        targets: dict[str, list[str]] = {}
        if referring is not None:
            for target in referring[2]:
                target_type, _, target_id = target.partition("/")
                targets.setdefault(target_type, []).append(target_id)
        for resource_type in wanted:
            self.require(resource_type, "r")
        if referring is not None and targets:
            self.require(referring[0], "s")
        if not wanted and not targets:
            return []
        # the page a search of this session is about to load (``_releasable``) is read in the
        # same statement, marked apart; it is not released here: the search's ``load`` does that
        ride = self.session.info.pop(_RIDE_ALONG, None)
        shape = (tuple(wanted), (referring[0], referring[1], tuple(targets)) if targets and referring else None, bool(ride))
        stmt = _LOOKUPS.get(shape)
        if stmt is None:
            stmt = _LOOKUPS[shape] = _lookup_statement(*shape)
        parameters = {f"ids_{n}": ids for n, ids in enumerate(wanted.values())}
        parameters |= {f"targets_{n}": ids for n, ids in enumerate(targets.values())}
        if ride:
            parameters["ride"] = ride
        found, ridden = [], {}
        for row in self.session.execute(stmt, parameters).all():  # fetched at once, not row by row
            if ride and row.ride:
                ridden[row.pk] = row
            else:
                found.append(_from_row(row))
        if ride:
            self.session.info[_RIDDEN] = ridden
        if releases_everything(self._gate) and self.audit is None:  # the gate's own reads: opened, nothing to decide
            return [replace(s, content=crypto.vault().reveal(s.content))
                    if s.content is not None and s.resource_type in SEALED_TYPES else s for s in found]
        return self._release_all(found)


_WRITES = "fhir_exchange.writes"  # session.info: writes through the session so far (what ``load`` checks)


def _wrote(session: Session) -> None:
    session.info[_WRITES] = session.info.get(_WRITES, 0) + 1


@event.listens_for(Session, "do_orm_execute")
def _count_statement(state: Any) -> None:
    if not state.is_select and _WRITES in state.session.info:
        _wrote(state.session)


@event.listens_for(Session, "after_flush")
def _count_flush(session: Session, _: Any) -> None:
    # only sessions in which a search has decided anything (``_releasable``) are counted: the
    # write paths of every other session pay nothing for this
    if _WRITES in session.info and any(isinstance(o, (ResourceRow, ResourceVersion))
                                       for o in (*session.new, *session.dirty, *session.deleted)):
        _wrote(session)


_LOOKUPS: dict[Any, Any] = {}  # lookup statements by shape, built once (a bound statement is reused as it is)
# session.info keys: the pks a search asks the next lookup to read along (``_releasable``), and
# the rows that lookup read for it
_RIDE_ALONG = "fhir_exchange.lookup.ride_along"
_RIDDEN = "fhir_exchange.lookup.ridden"


def _lookup_statement(types: tuple[str, ...], referring: tuple[str, str, tuple[str, ...]] | None, ride: bool = False
                      ) -> Any:
    resource = _RESOURCE.c
    # the shape's constants are written into the statement, not bound: PostgreSQL then keeps one
    # generic plan for it (bound, it plans every execution afresh, which costs more than the query)
    def constant(value: str) -> Any:
        return literal(value, literal_execute=True)

    parts: list[Any] = [select(resource.pk).where(resource.res_type == constant(resource_type),
                                                  resource.res_id.in_(bindparam(f"ids_{n}", expanding=True)))
                        for n, resource_type in enumerate(types)]
    if referring is not None:
        ref = ReferenceIndex.__table__.c
        referrer, param, target_types = referring
        parts += [select(ref.resource_pk).where(ref.res_type == constant(referrer), ref.param == constant(param),
                                                ref.target_type == constant(target_type),
                                                ref.target_id.in_(bindparam(f"targets_{n}", expanding=True)))
                  for n, target_type in enumerate(target_types)]
    # each part by its own index, the parts together (an OR of them would scan the table)
    wanted = parts[0] if len(parts) == 1 else union_all(*parts)
    if not ride:
        return select(_RESOURCE).where(resource.pk.in_(wanted), resource.deleted == false())
    return union_all(
        select(_RESOURCE, literal(False, literal_execute=True).label("ride")).where(
            resource.pk.in_(wanted), resource.deleted == false()),
        select(_RESOURCE, literal(True, literal_execute=True).label("ride")).where(
            resource.pk.in_(bindparam("ride", expanding=True)), resource.deleted == false()))


def stamp_custodian(meta: dict[str, Any], institution: str | None, previous: dict[str, Any] | None) -> dict[str, Any]:
    """meta with the custodian tag the server sets: kept from the stored version, else the
    writer's institution; a custodian tag sent by a client is never taken as it is."""
    custodian = custodian_of(previous) or institution
    tags = [t for t in meta.get("tag") or [] if t.get("system") != CUSTODIAN_SYSTEM]
    if custodian:
        tags.append({"system": CUSTODIAN_SYSTEM, "code": custodian})
    meta = {k: v for k, v in meta.items() if k != "tag"}
    if tags:
        meta["tag"] = tags
    return meta


def _from_row(row: Row[Any]) -> StoredResource:
    method = "PUT" if row.version_id > 1 else "POST"
    return StoredResource(row.pk, row.res_type, row.res_id, row.version_id, row.last_updated, row.deleted,
                          "DELETE" if row.deleted else method, row.content)


def _from_version(version: ResourceVersion) -> StoredResource:
    return StoredResource(version.resource_pk, version.res_type, version.res_id, version.version_id,
                          version.last_updated, version.deleted, version.method, version.content)


def purge_expired_snapshots(session: Session, now: datetime | None = None) -> int:
    """Delete search snapshots past their lifetime; returns how many. Run periodically."""
    cutoff = (now or _now()) - SNAPSHOT_LIFETIME
    result = session.execute(delete(SearchSnapshot).where(SearchSnapshot.created < cutoff))
    return result.rowcount or 0


def reseal_identifiers(session: Session, vault: Any, after_pk: int, batch: int = 500) -> tuple[int, int, int | None]:
    """Re-seal, under the current key, the identity numbers of one batch of stored person
    resources (current and historical versions) and the saved searches; returns (rows seen,
    rows changed, the last resource pk seen or None when done)."""
    seen = changed = 0
    pks = list(session.execute(
        select(ResourceRow.pk).where(ResourceRow.pk > after_pk, ResourceRow.res_type.in_(sorted(SEALED_TYPES)))
        .order_by(ResourceRow.pk).limit(batch)
    ).scalars())
    if not pks:
        for snapshot in session.execute(select(SearchSnapshot)).scalars():
            if vault.is_sealed(snapshot.query) and vault.key_id(snapshot.query) != vault.current:
                snapshot.query = vault.seal_text(vault.open_text(snapshot.query))
        return 0, 0, None
    for table in (_RESOURCE, ResourceVersion.__table__):
        key = table.c.pk if table is _RESOURCE else table.c.resource_pk
        for row in session.execute(select(table.c.pk, table.c.content).where(key.in_(pks))).all():
            seen += 1
            if row.content is None:
                continue
            resealed = vault.reseal(row.content)
            if resealed is not row.content:
                session.execute(update(table).where(table.c.pk == row.pk).values(content=resealed))
                changed += 1
    return seen, changed, pks[-1]
