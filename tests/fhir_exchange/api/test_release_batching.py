"""The repository's read side asks the gate in batches and does not decide a search's page twice:
``releasable`` keeps what it released for the ``load`` that follows, until anything is written
through the session; a gate declaring ``releases_own_records`` is not asked about the caller's
own records when counting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from fhir_exchange.ports import AllowAllGate, Release, ReleaseDecision, RequestContext
from fhir_exchange.search.params import SearchParser
from fhir_exchange.store.repository import FhirRepository

SECRET = {"system": "urn:test", "code": "secret"}


class CountingGate:
    """Denies resources tagged secret; records the batches it is asked."""

    def __init__(self, *, own_records: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.releases_own_records = own_records

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        return self.decide_many(context, [resource])[0]

    def decide_many(self, context: RequestContext, resources: Sequence[dict[str, Any]]) -> list[ReleaseDecision]:
        self.batches.append([r["id"] for r in resources])
        return [ReleaseDecision(Release.DENY, None, "secret") if SECRET in (r.get("meta") or {}).get("tag", [])
                else ReleaseDecision(Release.PERMIT, r, "fine") for r in resources]


def context(institution: str | None = "clinic-a") -> RequestContext:
    return RequestContext(request_id=str(uuid.uuid4()), client_id="test", institution=institution,
                          scopes=("system/*.cruds",))


@pytest.fixture
def observations(app) -> list[str]:  # type: ignore[no-untyped-def]
    """12 Observations of one patient, held by clinic A (every third tagged secret), and 3 held
    by clinic B."""
    ids = []
    for institution, count in (("clinic-a", 12), ("clinic-b", 3)):
        with app.state.fhir.sessions() as session, session.begin():
            repository = FhirRepository(session, context(institution), AllowAllGate())
            for i in range(count):
                rid = f"{institution}-{i}"
                meta = {"tag": [SECRET]} if institution == "clinic-a" and i % 3 == 0 else {}
                repository.create("Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                                  "subject": {"reference": "Patient/p"}, "meta": meta}, rid)
                ids.append(rid)
    return ids


@pytest.fixture
def repository(app) -> Iterator[tuple[FhirRepository, CountingGate]]:  # type: ignore[no-untyped-def]
    gate = CountingGate()
    with app.state.fhir.sessions() as session, session.begin():
        yield FhirRepository(session, context(), gate), gate


def _matches(repository: FhirRepository) -> list[int]:
    return repository.search_pks(SearchParser().parse("Observation", [("patient", "Patient/p"), ("_sort", "_id")]))


def test_the_page_is_not_decided_twice(repository, observations) -> None:  # type: ignore[no-untyped-def]
    repo, gate = repository
    released = repo.releasable(_matches(repo))
    assert len(released) == 11 and [sorted(b) for b in gate.batches] == [sorted(observations)]  # one batch, every match
    page = repo.load(released[:5])
    assert [s.id for s in page] == ["clinic-a-1", "clinic-a-10", "clinic-a-11", "clinic-a-2", "clinic-a-4"]
    assert len(gate.batches) == 1  # the page came from what releasable decided
    assert all(s.content and s.content["id"] == s.id and s.version_id == 1 for s in page)


def test_a_write_in_between_is_seen(repository, observations) -> None:  # type: ignore[no-untyped-def]
    repo, gate = repository
    released = repo.releasable(_matches(repo))
    repo.update("Observation", "clinic-a-1", {"resourceType": "Observation", "id": "clinic-a-1", "status": "amended",
                                              "code": {"text": "x"}, "subject": {"reference": "Patient/p"},
                                              "meta": {"tag": [SECRET]}})
    page = repo.load(released[:3])
    assert [s.id for s in page] == ["clinic-a-10", "clinic-a-11"]  # the new version is secret: decided afresh
    assert gate.batches[-1] == ["clinic-a-1", "clinic-a-10", "clinic-a-11"]


def test_duplicates_and_strangers_in_a_load(repository, observations) -> None:  # type: ignore[no-untyped-def]
    repo, _ = repository
    released = repo.releasable(_matches(repo)[:4])
    assert [s.id for s in repo.load([released[0], released[0], 999_999])] == ["clinic-a-1", "clinic-a-1"]


@pytest.mark.parametrize("own_records", [True, False])
def test_own_records_counted_without_asking(app, observations, own_records: bool) -> None:  # type: ignore[no-untyped-def]
    gate = CountingGate(own_records=own_records)
    with app.state.fhir.sessions() as session:
        repo = FhirRepository(session, context("clinic-b"), gate)
        released = repo.releasable(_matches(repo))
    # clinic B is asked about nothing of its own when the gate releases its own records whole
    assert len(released) == 11
    asked = [i for i in observations if not own_records or not i.startswith("clinic-b")]
    assert [sorted(b) for b in gate.batches] == [sorted(asked)]
