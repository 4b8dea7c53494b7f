"""All SQL of the terminology package: saving content (in bulk, in the caller's transaction)
and the queries behind lookup, validation, expansion, translation and subsumption."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, column, delete, func, insert, literal, or_, select, table, text, update
from sqlalchemy.orm import Session

from terminology.content import CodeSystemContent, ConceptMapContent, ValueSetContent
from terminology.errors import Conflict, Problem
from terminology.languages import has_han
from terminology.models import (
    CodeSystemVersion,
    Concept,
    ConceptMapVersion,
    ConceptParent,
    Designation,
    MapElement,
    TerminologyLoad,
    ValueSetVersion,
)

_CONCEPT = Concept.__table__
_DESIGNATION = Designation.__table__
_PARENT = ConceptParent.__table__
_ELEMENT = MapElement.__table__
_BATCH = 5000
_ANALYZE_AFTER = 10_000
_WORD_BREAK = re.compile(r"[^\w]+", re.UNICODE)


def search_text(parts: Iterable[str | None]) -> str:
    """Lower-case words of every name a concept goes by, space-delimited with a leading and a
    trailing space, so ``LIKE '% diab%'`` finds a word that starts with 'diab'."""
    words = " ".join(_WORD_BREAK.sub(" ", p.lower()).strip() for p in parts if p)
    return f" {' '.join(words.split())} "


def filter_needles(text: str) -> list[str]:
    """What a ``$expand`` filter looks for: every word must start a word of the concept's
    names (so the needle is the word with a space before it); Chinese, which has no spaces
    between words, matches anywhere."""
    return [word if has_han(word) else f" {word}" for word in _WORD_BREAK.sub(" ", text.lower()).split()]


def like_pattern(needle: str) -> str:
    """A needle as a LIKE pattern (``\\`` escapes)."""
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# SQLite's FTS5 trigram index (migration 0004) finds needles of three characters or more;
# shorter ones are matched by scanning.
_FTS = table("term_concept_text", column("rowid"), column("term_concept_text"))
_FTS_MIN = 3


def _fts_phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


def load_version() -> str:
    """The version given to a load whose source names none: when it was loaded."""
    return datetime.now(UTC).strftime("%Y%m%d.%H%M%S.%f")


@dataclass(frozen=True, slots=True)
class SaveResult:
    kind: str
    url: str
    version: str
    status: str  # "loaded" | "unchanged" | "current" (an earlier version made current again)
    items: int


@dataclass(frozen=True, slots=True)
class Selection:
    """One ``compose.include`` / ``exclude`` resolved to a stored code system version. The
    conditions combine with AND, as the spec says of an include's concept list and filters."""

    system_pk: int
    codes: tuple[str, ...] | None = None
    is_a: tuple[str, ...] = ()
    descendent_of: tuple[str, ...] = ()
    is_not_a: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConceptRow:
    pk: int
    system_pk: int
    code: str
    display: str | None


class TerminologyStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- writes ----------------------------------------------------------------------------------

    def _log(self, kind: str, url: str, version: str, origin: str | None, content_hash: str, items: int) -> None:
        self.session.execute(insert(TerminologyLoad).values(
            kind=kind, url=url, version=version, origin=origin, content_hash=content_hash, item_count=items,
            loaded_at=datetime.now(UTC),
        ))

    def _resolve_version(self, model: Any, url: str, version: str | None, content_hash: str) -> tuple[str, Any | None]:
        """The version to store under, and the existing row of that version if any."""
        if version is None:
            current = self.session.execute(
                select(model).where(model.url == url, model.current.is_(True))
            ).scalar_one_or_none()
            if current is not None and current.content_hash == content_hash:
                return current.version, current
            version = load_version()
        existing = self.session.execute(
            select(model).where(model.url == url, model.version == version)
        ).scalar_one_or_none()
        return version, existing

    @staticmethod
    def _check_owner(existing: Any, kind: str, resource_id: str | None) -> None:
        """One url|version belongs to one resource: a second resource claiming it is refused."""
        if existing is not None and existing.resource_id and resource_id and existing.resource_id != resource_id:
            raise Conflict(f"{kind} {existing.url}|{existing.version} already belongs to {kind}/{existing.resource_id}; "
                           f"give {kind}/{resource_id} another version or url, or update {kind}/{existing.resource_id}")

    def forget_other_urls(self, resource_type: str, resource_id: str, url: str) -> None:
        """What a resource brought under a url it no longer has (an update changed its url)."""
        model = {"CodeSystem": CodeSystemVersion, "ConceptMap": ConceptMapVersion, "ValueSet": ValueSetVersion}[resource_type]
        stale = self.session.execute(
            select(model.pk).where(model.resource_id == resource_id, model.url != url)
        ).first()
        if stale is not None:
            self.delete_resource(resource_type, resource_id, keep_url=url)

    def _make_current(self, model: Any, url: str, pk: int) -> None:
        self.session.execute(update(model).where(model.url == url, model.pk != pk).values(current=False))
        self.session.execute(update(model).where(model.pk == pk).values(current=True))

    def _same_content(self, model: Any, kind: str, content: Any, content_hash: str, origin: str | None
                      ) -> tuple[str, Any, SaveResult | None]:
        """(version, existing row, result): the result is set when that url|version already
        holds this very content, which then needs no writing (made current again if it was not)."""
        version, existing = self._resolve_version(model, content.url, content.version or ("" if model is ValueSetVersion
                                                                                           else None), content_hash)
        self._check_owner(existing, kind, content.resource_id)
        if existing is None or existing.content_hash != content_hash:
            return version, existing, None
        items = {"CodeSystem": "concept_count", "ConceptMap": "element_count"}.get(kind)
        count = getattr(existing, items) if items else 0
        existing.resource_id = content.resource_id or existing.resource_id
        if existing.current:
            return version, existing, SaveResult(kind, content.url, version, "unchanged", count)
        self._make_current(model, content.url, existing.pk)  # an earlier version loaded again becomes current
        self._log(kind, content.url, version, origin, content_hash, count)
        return version, existing, SaveResult(kind, content.url, version, "current", count)

    def save_code_system(self, content: CodeSystemContent, origin: str | None = None) -> SaveResult:
        content_hash = content.content_hash()
        version, existing, same = self._same_content(CodeSystemVersion, "CodeSystem", content, content_hash, origin)
        if same is not None:
            return same
        if existing is not None:
            self._delete_code_system_rows(existing.pk)
        row = CodeSystemVersion(
            url=content.url, version=version, name=content.name, title=content.title,
            resource_id=content.resource_id, hierarchical=content.hierarchical, content=content.content,
            current=True, concept_count=len(content.concepts), content_hash=content_hash, source=content.source,
            loaded_at=datetime.now(UTC),
        )
        self.session.add(row)
        self.session.flush()
        connection = self.session.connection()
        postgres = connection.dialect.name == "postgresql"
        large = len(content.concepts) > _ANALYZE_AFTER
        if postgres and large:
            # new index entries go to the GIN pending list and are merged once, in bulk, below
            connection.execute(text("SET LOCAL gin_pending_list_limit = '512MB'"))
        concept_rows = []
        for concept in content.concepts:
            if not concept.derived:
                concept.complete_designations()  # only now: an unchanged load never pays for OpenCC
            names = [concept.code, concept.display, *(v for v, _ in concept.all_designations().values())]
            concept_rows.append({"system_pk": row.pk, "code": concept.code, "display": concept.display,
                                 "search_text": search_text(names)})
        for start in range(0, len(concept_rows), _BATCH):
            connection.execute(insert(_CONCEPT), concept_rows[start : start + _BATCH])
        if connection.dialect.name == "sqlite":
            connection.execute(text(
                "INSERT INTO term_concept_text(rowid, search_text) SELECT pk, search_text FROM term_concept "
                "WHERE system_pk = :system_pk"
            ), {"system_pk": row.pk})
        pks = dict(connection.execute(
            select(_CONCEPT.c.code, _CONCEPT.c.pk).where(_CONCEPT.c.system_pk == row.pk)
        ).all())
        designations, edges = [], []
        for concept in content.concepts:
            pk = pks[concept.code]
            for language, (value, derived_by) in concept.all_designations().items():
                designations.append({"concept_pk": pk, "language": language, "value": value, "derived_by": derived_by})
            edges.extend({"system_pk": row.pk, "code": concept.code, "parent_code": p} for p in concept.parents)
        for target, rows in ((_DESIGNATION, designations), (_PARENT, edges)):
            for start in range(0, len(rows), _BATCH):
                connection.execute(insert(target), rows[start : start + _BATCH])
        if postgres and large:
            # Merge the text index's pending entries now (every filter would read them
            # otherwise), and give the planner fresh statistics for the new rows.
            connection.execute(text("SELECT gin_clean_pending_list('ix_term_concept_search_trgm'::regclass)"))
            connection.execute(text("ANALYZE term_concept, term_designation, term_concept_parent"))
        self._make_current(CodeSystemVersion, content.url, row.pk)
        self._log("CodeSystem", content.url, version, origin, content_hash, len(content.concepts))
        return SaveResult("CodeSystem", content.url, version, "loaded", len(content.concepts))

    def _delete_code_system_rows(self, system_pk: int) -> None:
        concepts = select(_CONCEPT.c.pk).where(_CONCEPT.c.system_pk == system_pk).scalar_subquery()
        self.session.execute(delete(_DESIGNATION).where(_DESIGNATION.c.concept_pk.in_(concepts)))
        self.session.execute(delete(_PARENT).where(_PARENT.c.system_pk == system_pk))
        self.session.execute(delete(_CONCEPT).where(_CONCEPT.c.system_pk == system_pk))
        self.session.execute(delete(CodeSystemVersion).where(CodeSystemVersion.pk == system_pk))

    def check_map(self, content: ConceptMapContent) -> list[Problem]:
        """Strict checks a loaded file must pass: each group's systems are known here, and
        every source and target code is one of its group's systems'."""
        problems: list[Problem] = []
        groups: dict[tuple[str, str | None], list[Any]] = {}
        for row in content.rows:
            groups.setdefault((row.source_system, row.target_system), []).append(row)
        for (source_system, target_system), rows in groups.items():
            for role, system, field_name in (("source", source_system, "source_code"), ("target", target_system, "target_code")):
                if system is None:
                    continue
                stored = self.code_system(system)
                if stored is None:
                    problems.append(Problem("", f"the {role} system {system} is not loaded here; load it before the map"))
                    continue
                known = self.existing_codes(stored.pk, {getattr(r, field_name) for r in rows if getattr(r, field_name)})
                for r in rows:
                    code = getattr(r, field_name)
                    if code and code not in known:
                        problems.append(Problem(f"line {r.line}" if r.line else "", f"{role} code '{code}' is not in {system}"))
        return problems

    def existing_codes(self, system_pk: int, codes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        codes = list(codes)
        for start in range(0, len(codes), 900):
            found.update(self.session.execute(
                select(_CONCEPT.c.code).where(_CONCEPT.c.system_pk == system_pk, _CONCEPT.c.code.in_(codes[start : start + 900]))
            ).scalars())
        return found

    def save_concept_map(self, content: ConceptMapContent, origin: str | None = None) -> SaveResult:
        content_hash = content.content_hash()
        version, existing, same = self._same_content(ConceptMapVersion, "ConceptMap", content, content_hash, origin)
        if same is not None:
            return same
        if existing is not None:
            self.session.execute(delete(_ELEMENT).where(_ELEMENT.c.map_pk == existing.pk))
            self.session.execute(delete(ConceptMapVersion).where(ConceptMapVersion.pk == existing.pk))
        row = ConceptMapVersion(
            url=content.url, version=version, name=content.name, title=content.title, resource_id=content.resource_id,
            source_scope=content.source_scope, target_scope=content.target_scope, current=True,
            element_count=len(content.rows), content_hash=content_hash, source=content.source,
            loaded_at=datetime.now(UTC),
        )
        self.session.add(row)
        self.session.flush()
        rows = [
            {"map_pk": row.pk, "source_system": r.source_system, "source_code": r.source_code,
             "target_system": r.target_system, "target_code": r.target_code, "target_display": r.target_display,
             "equivalence": r.equivalence, "comment": r.comment}
            for r in content.rows
        ]
        for start in range(0, len(rows), _BATCH):
            self.session.connection().execute(insert(_ELEMENT), rows[start : start + _BATCH])
        if self.session.connection().dialect.name == "postgresql" and len(rows) > _ANALYZE_AFTER:
            self.session.connection().execute(text("ANALYZE term_map_element"))
        self._make_current(ConceptMapVersion, content.url, row.pk)
        self._log("ConceptMap", content.url, version, origin, content_hash, len(rows))
        return SaveResult("ConceptMap", content.url, version, "loaded", len(rows))

    def save_value_set(self, content: ValueSetContent, origin: str | None = None) -> SaveResult:
        content_hash = content.content_hash()
        version, existing, same = self._same_content(ValueSetVersion, "ValueSet", content, content_hash, origin)
        if same is not None:
            return same
        if existing is not None:
            self.session.execute(delete(ValueSetVersion).where(ValueSetVersion.pk == existing.pk))
        row = ValueSetVersion(url=content.url, version=version, name=content.name, resource_id=content.resource_id,
                              current=True, compose=content.compose, content_hash=content_hash,
                              loaded_at=datetime.now(UTC))
        self.session.add(row)
        self.session.flush()
        self._make_current(ValueSetVersion, content.url, row.pk)
        self._log("ValueSet", content.url, version, origin, content_hash, 0)
        return SaveResult("ValueSet", content.url, version, "loaded", 0)

    def delete_resource(self, resource_type: str, resource_id: str, *, keep_url: str | None = None) -> None:
        """Forget what a deleted CodeSystem / ConceptMap / ValueSet resource brought (all its
        versions, or those not under ``keep_url``); an earlier version of the same url loaded
        from elsewhere becomes current."""
        model = {"CodeSystem": CodeSystemVersion, "ConceptMap": ConceptMapVersion, "ValueSet": ValueSetVersion}[resource_type]
        stmt = select(model.pk, model.url).where(model.resource_id == resource_id)
        if keep_url is not None:
            stmt = stmt.where(model.url != keep_url)
        rows = self.session.execute(stmt).all()
        for pk, url in rows:
            if model is CodeSystemVersion:
                self._delete_code_system_rows(pk)
            else:
                if model is ConceptMapVersion:
                    self.session.execute(delete(_ELEMENT).where(_ELEMENT.c.map_pk == pk))
                self.session.execute(delete(model).where(model.pk == pk))
            latest = self.session.execute(
                select(model.pk).where(model.url == url).order_by(model.loaded_at.desc(), model.pk.desc()).limit(1)
            ).scalar_one_or_none()
            if latest is not None:
                self._make_current(model, url, latest)
            self._log(f"-{resource_type}", url, "", resource_id, "", 0)

    # --- reads ---------------------------------------------------------------------------------

    def generation(self) -> int:
        """Grows whenever terminology changes (any load or delete): for cache invalidation."""
        return self.session.execute(select(func.coalesce(func.max(TerminologyLoad.pk), 0))).scalar_one()

    def code_system(self, url: str, version: str | None = None) -> CodeSystemVersion | None:
        stmt = select(CodeSystemVersion).where(CodeSystemVersion.url == url)
        stmt = stmt.where(CodeSystemVersion.version == version) if version else stmt.where(CodeSystemVersion.current.is_(True))
        return self.session.execute(stmt).scalar_one_or_none()

    def code_system_by_pk(self, pk: int) -> CodeSystemVersion:
        return self.session.get_one(CodeSystemVersion, pk)

    def code_system_for_resource(self, resource_id: str) -> CodeSystemVersion | None:
        return self.session.execute(
            select(CodeSystemVersion).where(CodeSystemVersion.resource_id == resource_id)
            .order_by(CodeSystemVersion.current.desc(), CodeSystemVersion.pk.desc()).limit(1)
        ).scalar_one_or_none()

    def versions(self, url: str) -> list[str]:
        return list(self.session.execute(
            select(CodeSystemVersion.version).where(CodeSystemVersion.url == url).order_by(CodeSystemVersion.pk)
        ).scalars())

    def concept(self, system_pk: int, code: str) -> ConceptRow | None:
        row = self.session.execute(
            select(_CONCEPT.c.pk, _CONCEPT.c.system_pk, _CONCEPT.c.code, _CONCEPT.c.display)
            .where(_CONCEPT.c.system_pk == system_pk, _CONCEPT.c.code == code)
        ).first()
        return ConceptRow(*row) if row else None

    def designations(self, concept_pks: Sequence[int]) -> dict[int, list[tuple[str, str, str | None]]]:
        result: dict[int, list[tuple[str, str, str | None]]] = {pk: [] for pk in concept_pks}
        for start in range(0, len(concept_pks), 900):
            rows = self.session.execute(
                select(_DESIGNATION.c.concept_pk, _DESIGNATION.c.language, _DESIGNATION.c.value, _DESIGNATION.c.derived_by)
                .where(_DESIGNATION.c.concept_pk.in_(list(concept_pks[start : start + 900])))
                .order_by(_DESIGNATION.c.pk)
            ).all()
            for pk, language, value, derived_by in rows:
                result[pk].append((language, value, derived_by))
        return result

    def parents(self, system_pk: int, code: str) -> list[str]:
        return list(self.session.execute(
            select(_PARENT.c.parent_code).where(_PARENT.c.system_pk == system_pk, _PARENT.c.code == code).order_by(_PARENT.c.pk)
        ).scalars())

    def children(self, system_pk: int, code: str) -> list[str]:
        return list(self.session.execute(
            select(_PARENT.c.code).where(_PARENT.c.system_pk == system_pk, _PARENT.c.parent_code == code).order_by(_PARENT.c.pk)
        ).scalars())

    def _descendants(self, system_pk: int, codes: Sequence[str]) -> Any:
        edges = _PARENT
        cte = select(edges.c.code).where(edges.c.system_pk == system_pk, edges.c.parent_code.in_(list(codes)))
        cte = cte.cte("descendants", recursive=True)
        step = select(edges.c.code).where(edges.c.system_pk == system_pk, edges.c.parent_code == cte.c.code)
        return cte.union(step)

    def ancestors(self, system_pk: int, code: str) -> set[str]:
        edges = _PARENT
        cte = select(edges.c.parent_code.label("code")).where(edges.c.system_pk == system_pk, edges.c.code == code)
        cte = cte.cte("ancestors", recursive=True)
        cte = cte.union(select(edges.c.parent_code).where(edges.c.system_pk == system_pk, edges.c.code == cte.c.code))
        return set(self.session.execute(select(cte.c.code)).scalars())

    # --- value sets ------------------------------------------------------------------------------

    def value_set(self, url: str, version: str | None = None) -> ValueSetVersion | None:
        stmt = select(ValueSetVersion).where(ValueSetVersion.url == url)
        stmt = stmt.where(ValueSetVersion.version == version) if version else stmt.where(ValueSetVersion.current.is_(True))
        return self.session.execute(stmt).scalar_one_or_none()

    def value_set_for_resource(self, resource_id: str) -> ValueSetVersion | None:
        return self.session.execute(
            select(ValueSetVersion).where(ValueSetVersion.resource_id == resource_id)
            .order_by(ValueSetVersion.current.desc(), ValueSetVersion.pk.desc()).limit(1)
        ).scalar_one_or_none()

    def _selection_query(self, selection: Selection) -> Select[Any]:
        stmt = select(_CONCEPT.c.pk).where(_CONCEPT.c.system_pk == selection.system_pk)
        if selection.codes is not None:
            stmt = stmt.where(_CONCEPT.c.code.in_(list(selection.codes)))
        for code in selection.is_a:
            below = self._descendants(selection.system_pk, [code])
            stmt = stmt.where(or_(_CONCEPT.c.code == code, _CONCEPT.c.code.in_(select(below.c.code))))
        for code in selection.descendent_of:
            below = self._descendants(selection.system_pk, [code])
            stmt = stmt.where(_CONCEPT.c.code.in_(select(below.c.code)))
        for code in selection.is_not_a:
            below = self._descendants(selection.system_pk, [code])
            stmt = stmt.where(_CONCEPT.c.code != code, _CONCEPT.c.code.not_in(select(below.c.code)))
        return stmt

    def _expansion(self, includes: Sequence[Selection], excludes: Sequence[Selection], text: str | None) -> Select[Any]:
        stmt = select(_CONCEPT.c.pk, _CONCEPT.c.system_pk, _CONCEPT.c.code, _CONCEPT.c.display)
        needles = filter_needles(text or "")
        system_pk: Any = _CONCEPT.c.system_pk
        if self.session.get_bind().dialect.name == "sqlite":
            indexed = [n for n in needles if len(n) >= _FTS_MIN]
            if indexed:
                match = " AND ".join(_fts_phrase(n) for n in indexed)
                stmt = stmt.where(_CONCEPT.c.pk.in_(select(_FTS.c.rowid).where(_FTS.c.term_concept_text.op("MATCH")(match))))
                needles = [n for n in needles if len(n) < _FTS_MIN]
                # "+ 0" keeps SQLite from walking the system's whole index instead of the
                # text index's few matches.
                system_pk = _CONCEPT.c.system_pk + 0
        whole = [s.system_pk for s in includes if s == Selection(s.system_pk)]
        partial = [self._selection_query(s) for s in includes if s != Selection(s.system_pk)]
        conditions = []
        if whole:
            conditions.append(system_pk.in_(whole))
        conditions += [_CONCEPT.c.pk.in_(q) for q in partial]
        stmt = stmt.where(or_(*conditions)) if conditions else stmt.where(literal(False))
        for selection in excludes:
            stmt = stmt.where(_CONCEPT.c.pk.not_in(self._selection_query(selection)))
        postgres = self.session.get_bind().dialect.name == "postgresql"
        for needle in needles:
            if postgres and len(needle) < _FTS_MIN:
                # too short for the trigram index: a plain scan, which a cached generic plan
                # for LIKE would turn into a full read of the index
                stmt = stmt.where(func.strpos(_CONCEPT.c.search_text, needle) > 0)
            else:
                stmt = stmt.where(_CONCEPT.c.search_text.like(like_pattern(needle), escape="\\"))
        return stmt

    def expand(
        self, includes: Sequence[Selection], excludes: Sequence[Selection], text: str | None,
        offset: int, count: int | None, *, with_total: bool = True,
    ) -> tuple[int | None, list[ConceptRow]]:
        stmt = self._expansion(includes, excludes, text)
        total = None
        if with_total:
            total = self.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
        page = stmt.order_by(_CONCEPT.c.pk).offset(offset)
        if count is not None:
            page = page.limit(count)
        return total, [ConceptRow(*r) for r in self.session.execute(page).all()]

    def contains(self, includes: Sequence[Selection], excludes: Sequence[Selection], system_pk: int, code: str) -> bool:
        stmt = self._expansion(includes, excludes, None).where(_CONCEPT.c.system_pk == system_pk, _CONCEPT.c.code == code)
        return self.session.execute(stmt.limit(1)).first() is not None

    # --- maps ------------------------------------------------------------------------------------

    def map_rows(
        self, system: str, code: str, *, target_system: str | None = None, map_url: str | None = None,
        map_version: str | None = None, map_resource_id: str | None = None, reverse: bool = False,
    ) -> list[tuple[MapElement, str]]:
        """Map elements from the current version of every map (or the one named) whose source
        (target, when ``reverse``) is this code; each with its map's url."""
        e = MapElement
        stmt = select(e, ConceptMapVersion.url).join(ConceptMapVersion, ConceptMapVersion.pk == e.map_pk)
        if reverse:
            stmt = stmt.where(e.target_system == system, e.target_code == code)
            if target_system:
                stmt = stmt.where(e.source_system == target_system)
        else:
            stmt = stmt.where(e.source_system == system, e.source_code == code)
            if target_system:
                stmt = stmt.where(e.target_system == target_system)
        if map_resource_id:
            stmt = stmt.where(ConceptMapVersion.resource_id == map_resource_id)
        if map_url:
            stmt = stmt.where(ConceptMapVersion.url == map_url)
        if map_version:
            stmt = stmt.where(ConceptMapVersion.version == map_version)
        else:
            stmt = stmt.where(ConceptMapVersion.current.is_(True))
        return [(row[0], row[1]) for row in self.session.execute(stmt.order_by(e.pk)).all()]

    def concept_map(self, url: str | None = None, resource_id: str | None = None) -> ConceptMapVersion | None:
        stmt = select(ConceptMapVersion)
        stmt = stmt.where(ConceptMapVersion.url == url) if url else stmt.where(ConceptMapVersion.resource_id == resource_id)
        return self.session.execute(stmt.order_by(ConceptMapVersion.current.desc(), ConceptMapVersion.pk.desc()).limit(1)
                                    ).scalar_one_or_none()

    def displays(self, system: str, codes: Iterable[str]) -> dict[str, ConceptRow]:
        stored = self.code_system(system)
        if stored is None:
            return {}
        codes = list(codes)
        rows = self.session.execute(
            select(_CONCEPT.c.pk, _CONCEPT.c.system_pk, _CONCEPT.c.code, _CONCEPT.c.display)
            .where(_CONCEPT.c.system_pk == stored.pk, _CONCEPT.c.code.in_(codes))
        ).all()
        return {r.code: ConceptRow(*r) for r in rows}
