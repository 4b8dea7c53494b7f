"""The Python API's cache: dropped when a terminology change commits in this process, and
noticed within ``check_interval`` when the change was made through another session."""

from __future__ import annotations

import pytest

import terminology.api
from terminology.api import Terminology
from tests.terminology.support import csv_source, load, terminology_service, unit_of_work, write_csv

URL = "urn:test:cs:cache"
SLOW = 3600.0  # a check interval no test outlives: only invalidation can refresh the cache


def _code_system(display: str, version: str = "1") -> dict:
    return {"resourceType": "CodeSystem", "id": "cache", "url": URL, "version": version, "status": "active",
            "content": "complete", "concept": [{"code": "A", "display": display}]}


@pytest.fixture
def configured(sessions, monkeypatch: pytest.MonkeyPatch) -> Terminology:
    """This process's terminology (what terminology_sync invalidates), slow to re-check."""
    instance = Terminology(sessions, check_interval=SLOW)
    monkeypatch.setattr(terminology.api, "_default", instance)
    return instance


def test_cache_is_dropped_when_a_resource_write_commits(sessions, configured: Terminology) -> None:
    with unit_of_work(sessions) as (service, _):
        service.update("CodeSystem", "cache", _code_system("Alpha"))  # update as create: id "cache"
    assert configured.display(URL, "A") == "Alpha"
    with unit_of_work(sessions) as (service, _):
        service.update("CodeSystem", "cache", _code_system("Alpha (revised)"))
        assert configured.display(URL, "A") == "Alpha", "not before the change commits"
    assert configured.display(URL, "A") == "Alpha (revised)"
    with unit_of_work(sessions) as (service, _):
        service.delete("CodeSystem", "cache")
    assert configured.display(URL, "A") is None


def test_a_rolled_back_write_keeps_the_cached_answer(sessions, configured: Terminology) -> None:
    with unit_of_work(sessions) as (service, _):
        service.update("CodeSystem", "cache", _code_system("Alpha"))  # update as create: id "cache"
    assert configured.display(URL, "A") == "Alpha"
    with pytest.raises(RuntimeError), unit_of_work(sessions) as (service, _):
        service.update("CodeSystem", "cache", _code_system("Alpha (revised)"))
        raise RuntimeError("roll back")
    assert configured.display(URL, "A") == "Alpha"
    with terminology_service(sessions) as service:
        assert service.display(URL, "A") == "Alpha"


# Regression, once a bug (fhir_exchange/terminology_sync.py, load_source): load_source saves the content itself and
# then writes the FHIR resource; the sync hook ingests that resource as "unchanged" and so never
# registers the after-commit invalidation. A `baylink terminology load` / seed run in a process
# with a configured Terminology leaves its cache stale until check_interval passes.
def test_cache_is_dropped_when_a_file_load_commits(sessions, configured: Terminology, tmp_path) -> None:
    path = write_csv(tmp_path, "cache.csv", "code,display\nA,Alpha\n")
    load(sessions, csv_source(path, url=URL))
    assert configured.display(URL, "A") == "Alpha"
    write_csv(tmp_path, "cache.csv", "code,display\nA,Alpha (revised)\n")
    load(sessions, csv_source(path, url=URL))
    assert configured.display(URL, "A") == "Alpha (revised)"


def test_a_change_through_another_session_is_noticed_within_check_interval(sessions, tmp_path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminology.api, "_default", None)  # no in-process invalidation: only the check
    eager, slow = Terminology(sessions, check_interval=0), Terminology(sessions, check_interval=SLOW)
    path = write_csv(tmp_path, "cache.csv", "code,display\nA,Alpha\n")
    load(sessions, csv_source(path, url=URL))
    assert eager.display(URL, "A") == slow.display(URL, "A") == "Alpha"
    assert eager.translate(URL, "A") == ()

    write_csv(tmp_path, "cache.csv", "code,display\nA,Alpha (revised)\n")
    load(sessions, csv_source(path, url=URL))
    assert eager.display(URL, "A") == "Alpha (revised)"
    assert slow.display(URL, "A") == "Alpha", "within its check interval the slow one answers from its cache"
    slow.invalidate()
    assert slow.display(URL, "A") == "Alpha (revised)"

    with unit_of_work(sessions) as (service, _):  # a deletion is a change too
        service.delete("CodeSystem", "cache")
    assert eager.display(URL, "A") is None


# Regression, once a bug (terminology/store.py, save_code_system / save_concept_map / save_value_set): re-loading an
# earlier version makes it current again but returns "unchanged" and logs no term_load row, so the
# generation does not grow and no cache (this process's or another's) notices the switch.
def test_making_an_earlier_version_current_again_is_noticed(sessions, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminology.api, "_default", None)
    eager = Terminology(sessions, check_interval=0)
    one = write_csv(tmp_path, "one.csv", "code,display\nA,Alpha one\n")
    two = write_csv(tmp_path, "two.csv", "code,display\nA,Alpha two\n")
    load(sessions, csv_source(one, url=URL, version="1", id="cache"), csv_source(two, url=URL, version="2", id="cache"))
    assert eager.display(URL, "A") == "Alpha two"
    load(sessions, csv_source(one, url=URL, version="1", id="cache"))
    with terminology_service(sessions) as service:
        assert service.display(URL, "A") == "Alpha one"  # the tables say version 1 is current ...
    assert eager.display(URL, "A") == "Alpha one"  # ... and so should the cached API
