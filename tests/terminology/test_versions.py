"""Reloads: unchanged content changes nothing; a table without a version gets one per load;
a changed table becomes the current version while earlier versions stay answerable."""

from __future__ import annotations

import re

from tests.terminology.support import (
    HK_LAB,
    LOINC,
    counts,
    csv_source,
    load,
    load_starter,
    resource_rows,
    starter,
    stored_resource,
    term_loads,
    terminology_service,
    write_csv,
)

URL = "urn:test:cs:versions"
LOAD_VERSION = re.compile(r"^\d{8}\.\d{6}\.\d{6}$")


def test_reloading_the_same_files_changes_nothing(sessions) -> None:
    names = ("loinc-common.csv", "hk-example-lab.csv", "hk-example-lab-to-loinc.csv", "administrative-gender.json")
    first = load_starter(sessions, *names)
    assert [(r.kind, r.status) for r in first] == [
        ("CodeSystem", "loaded"), ("CodeSystem", "loaded"), ("ConceptMap", "loaded"), ("CodeSystem", "loaded"),
    ]
    before, loads = counts(sessions), term_loads(sessions)
    assert len(loads) == 4  # one per load: writing the matching FHIR resource does not log a second
    assert before["resource"] == 4 and before["resource_version"] == 4

    second = load_starter(sessions, *names)
    assert [(r.kind, r.url, r.version, r.status) for r in second] == [
        (r.kind, r.url, r.version, "unchanged") for r in first
    ]
    assert counts(sessions) == before
    assert term_loads(sessions) == loads
    assert all(version == 1 for _, version, _ in resource_rows(sessions, "CodeSystem") + resource_rows(sessions, "ConceptMap"))


def test_a_table_without_a_version_gets_one_per_load(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "vs.csv", "code,display\nA,Alpha\nB,Beta\n")
    [first] = load(sessions, csv_source(path, url=URL))
    assert first.status == "loaded" and LOAD_VERSION.match(first.version)

    [again] = load(sessions, csv_source(path, url=URL))
    assert (again.status, again.version) == ("unchanged", first.version)
    assert len(term_loads(sessions)) == 1
    assert resource_rows(sessions, "CodeSystem") == [("vs", 1, False)]

    write_csv(tmp_path, "vs.csv", "code,display\nA,Alpha (revised)\nB,Beta\nC,Gamma\n")
    [second] = load(sessions, csv_source(path, url=URL))
    assert second.status == "loaded" and LOAD_VERSION.match(second.version) and second.version != first.version
    assert [v for _, _, v in term_loads(sessions)] == [first.version, second.version]

    with terminology_service(sessions) as service:
        assert service.code_system(URL).version == second.version  # the new version is current
        assert service.lookup(URL, "A").display == "Alpha (revised)"
        assert service.lookup(URL, "C").version == second.version
        old = service.lookup(URL, "A", version=first.version)  # the old one is still answerable
        assert (old.display, old.version) == ("Alpha", first.version)
        assert service.validate_code_in_system(URL, "C", version=first.version).result is False
        assert service.validate_code_in_system(URL, "C").result is True

    # the FHIR resource is updated in place: a new version of the same resource
    assert resource_rows(sessions, "CodeSystem") == [("vs", 2, False)]
    resource = stored_resource(sessions, "CodeSystem", "vs")
    assert resource["version"] == second.version and resource["count"] == 3


def test_a_changed_table_under_the_same_version_replaces_it(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "vs.csv", "code,display\nA,Alpha\nB,Beta\n")
    load(sessions, csv_source(path, url=URL, version="7"))
    write_csv(tmp_path, "vs.csv", "code,display\nA,Alpha (revised)\n")
    [result] = load(sessions, csv_source(path, url=URL, version="7"))
    assert (result.status, result.version, result.items) == ("loaded", "7", 1)
    assert counts(sessions, ["term_code_system", "term_concept"]) == {"term_code_system": 1, "term_concept": 1}
    with terminology_service(sessions) as service:
        assert service.lookup(URL, "A").display == "Alpha (revised)"
        assert service.validate_code_in_system(URL, "B").result is False


def test_named_versions_stay_answerable_and_a_reload_makes_one_current_again(sessions, tmp_path) -> None:
    one = write_csv(tmp_path, "one.csv", "code,display\nA,Alpha one\n")
    two = write_csv(tmp_path, "two.csv", "code,display\nA,Alpha two\n")
    load(sessions, csv_source(one, url=URL, version="1", id="versions"), csv_source(two, url=URL, version="2", id="versions"))
    with terminology_service(sessions) as service:
        assert service.lookup(URL, "A").display == "Alpha two"
        assert service.lookup(URL, "A", version="1").display == "Alpha one"
        assert service.store.versions(URL) == ["1", "2"]
    load(sessions, csv_source(one, url=URL, version="1", id="versions"))
    with terminology_service(sessions) as service:
        assert service.code_system(URL).version == "1"
        assert service.lookup(URL, "A").display == "Alpha one"
        assert service.lookup(URL, "A", version="2").display == "Alpha two"
    assert stored_resource(sessions, "CodeSystem", "versions")["version"] == "1"


def test_a_changed_map_without_a_version_keeps_the_old_one_answerable(sessions, tmp_path) -> None:
    load_starter(sessions, "loinc-common.csv", "hk-example-lab.csv")
    meta = {k: v for k, v in starter("hk-example-lab-to-loinc.csv").meta.items()
            if k not in ("version", "kind", "file")}
    path = write_csv(tmp_path, "lab-map.csv", "source_code,target_code,equivalence\nHB,718-7,equivalent\n")
    [first] = load(sessions, csv_source(path, "ConceptMap", **meta))
    write_csv(tmp_path, "lab-map.csv", "source_code,target_code,equivalence\nHB,718-7,wider\n")
    [second] = load(sessions, csv_source(path, "ConceptMap", **meta))
    assert first.version != second.version and second.status == "loaded"
    with terminology_service(sessions) as service:
        assert [m.equivalence for m in service.translate(HK_LAB, "HB", target_system=LOINC).matches] == ["wider"]
        old = service.translate(HK_LAB, "HB", map_url=meta["url"], map_version=first.version)
        assert [(m.code, m.equivalence) for m in old.matches] == [("718-7", "equivalent")]
