"""CSV faults are reported line by line, every fault at once, and a file with any fault
leaves nothing behind: not in the term_* tables, not in the FHIR store."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminology.content import EQUIVALENCES
from terminology.errors import InvalidContent
from terminology.loader import Source, read_manifest
from tests.terminology.support import (
    TERM_TABLES,
    counts,
    csv_source,
    load,
    resource_rows,
    term_loads,
    terminology_service,
    write_csv,
)

SRC, TGT = "urn:test:cs:source", "urn:test:cs:target"
MAP_URL = "urn:test:map:source-to-target"
ALL_EQUIVALENCES = ", ".join(EQUIVALENCES)


def _problems(exc: pytest.ExceptionInfo[InvalidContent]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def _map_source(path: Path, target_system: str = TGT) -> Source:
    return csv_source(path, "ConceptMap", url=MAP_URL, version="1", sourceSystem=SRC, targetSystem=target_system)


@pytest.fixture
def systems(sessions, tmp_path):  # type: ignore[no-untyped-def]
    """Two small code systems for maps to run between."""
    source = write_csv(tmp_path, "source.csv", "code,display\nA,Alpha\nB,Beta\nC,Gamma\n")
    target = write_csv(tmp_path, "target.csv", "code,display\nX,Ex\nY,Why\n")
    load(sessions, csv_source(source, url=SRC, version="1"), csv_source(target, url=TGT, version="1"))
    return sessions


# --- code system tables --------------------------------------------------------------------------

CODE_SYSTEM_FAULTS = {
    "missing column": (
        "code,en\nA,Alpha\n",
        ["line 1: missing column(s) display; the header needs code,display and may add parent and language columns"],
    ),
    "unknown column": (
        "code,display,synonym\nA,Alpha,Alfa\n",
        ["line 1: column 'synonym' is neither code, display, parent nor a language tag"],
    ),
    "column twice": (
        "code,display,en,en\nA,Alpha,Alpha,Alpha\n",
        ["line 1: a column name appears twice"],
    ),
    "duplicate code": (
        "code,display\nA,Alpha\nB,Beta\nA,Alpha again\n",
        ["line 4: duplicate code 'A' (first on line 2)"],
    ),
    "empty code": (
        "code,display\nA,Alpha\n  ,Nothing\n",
        ["line 3: the code is empty"],
    ),
    "wrong field count": (
        "code,display\nA,Alpha\nB\nC,Gamma,extra\n",
        ["line 3: 1 fields where the header has 2", "line 4: 3 fields where the header has 2"],
    ),
    "unknown parent": (
        "code,display,parent\nA,Alpha,\nB,Beta,A|Z\n",
        ["line 3: parent 'Z' of 'B' is not a code in this file"],
    ),
    "own parent": (
        "code,display,parent\nA,Alpha,A\n",
        ["line 2: 'A' names itself as its parent"],
    ),
    "no concepts": (
        "code,display\n",
        ["bad.csv: the table has no concepts"],
    ),
    "every row fault at once, by line": (
        "code,display,parent\nA,Alpha,\n,Empty,\nA,Again,\nB,Beta,Q\nC\n",
        [
            "line 3: the code is empty",
            "line 4: duplicate code 'A' (first on line 2)",
            "line 6: 1 fields where the header has 3",
            "line 5: parent 'Q' of 'B' is not a code in this file",
        ],
    ),
}


@pytest.mark.parametrize("case", list(CODE_SYSTEM_FAULTS))
def test_code_system_faults_are_reported_by_line_and_nothing_is_stored(sessions, tmp_path, case: str) -> None:
    body, expected = CODE_SYSTEM_FAULTS[case]
    path = write_csv(tmp_path, "bad.csv", body)
    with pytest.raises(InvalidContent) as exc:
        load(sessions, csv_source(path, url="urn:test:cs:bad", version="1"))
    assert _problems(exc) == expected
    assert "bad.csv" in exc.value.message
    assert set(counts(sessions).values()) == {0}, "a file with faults must leave no rows behind"


def test_blank_lines_keep_line_numbers(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "bad.csv", "code,display\n\nA,Alpha\n\n,Empty\n")
    with pytest.raises(InvalidContent) as exc:
        load(sessions, csv_source(path, url="urn:test:cs:bad"))
    assert _problems(exc) == ["line 5: the code is empty"]


def test_a_bad_file_leaves_the_loaded_version_of_its_system_alone(sessions, tmp_path) -> None:
    good = write_csv(tmp_path, "cs.csv", "code,display\nA,Alpha\nB,Beta\n")
    load(sessions, csv_source(good, url="urn:test:cs:one", version="1"))
    before = counts(sessions)
    bad = write_csv(tmp_path, "cs.csv", "code,display\nA,Alpha changed\nA,Alpha twice\nC,Gamma\n")
    for version in ("1", "2"):  # neither replacing version 1 nor adding version 2
        with pytest.raises(InvalidContent):
            load(sessions, csv_source(bad, url="urn:test:cs:one", version=version))
        assert counts(sessions) == before
    with terminology_service(sessions) as service:
        assert service.lookup("urn:test:cs:one", "A").display == "Alpha"
        assert service.lookup("urn:test:cs:one", "A").version == "1"
    assert [v for _, _, v in term_loads(sessions)] == ["1"]


# --- concept map tables --------------------------------------------------------------------------

MAP_FAULTS = {
    "missing column": (
        "source_code,target_code\nA,X\n",
        ["line 1: missing column(s) equivalence; the header needs source_code,target_code,equivalence "
         "and may add comment,target_display"],
    ),
    "unknown column": (
        "source_code,target_code,equivalence,notes\nA,X,equivalent,\n",
        ["line 1: unknown column(s) notes"],
    ),
    "bad equivalence": (
        "source_code,target_code,equivalence\nA,X,equivalent\nB,Y,same\n",
        [f"line 3: equivalence 'same' is not one of {ALL_EQUIVALENCES}"],
    ),
    "duplicate rows": (
        "source_code,target_code,equivalence\nA,X,equivalent\nB,Y,wider\nA,X,narrower\n",
        ["line 4: duplicate map A -> X (first on line 2)"],
    ),
    "empty source code": (
        "source_code,target_code,equivalence\n,X,equivalent\n",
        ["line 2: the source code is empty"],
    ),
    "empty target for a match": (
        "source_code,target_code,equivalence\nA,,equivalent\n",
        ["line 2: the target code is empty but the equivalence is 'equivalent'"],
    ),
    "wrong field count": (
        "source_code,target_code,equivalence\nA,X\n",
        ["line 2: 2 fields where the header has 3"],
    ),
    "unknown target codes": (
        "source_code,target_code,equivalence\nA,X,equivalent\nB,NOPE,wider\nC,ALSO-NOPE,narrower\n",
        [f"line 3: target code 'NOPE' is not in {TGT}", f"line 4: target code 'ALSO-NOPE' is not in {TGT}"],
    ),
    "unknown source code": (
        "source_code,target_code,equivalence\nA,X,equivalent\nZZ,Y,equivalent\n",
        [f"line 3: source code 'ZZ' is not in {SRC}"],
    ),
}


@pytest.mark.parametrize("case", list(MAP_FAULTS))
def test_map_faults_are_reported_by_line_and_nothing_is_stored(systems, tmp_path, case: str) -> None:
    sessions = systems
    body, expected = MAP_FAULTS[case]
    before = counts(sessions)
    path = write_csv(tmp_path, "map.csv", body)
    with pytest.raises(InvalidContent) as exc:
        load(sessions, _map_source(path))
    assert _problems(exc) == expected
    assert counts(sessions) == before
    assert counts(sessions, ["term_concept_map", "term_map_element"]) == {"term_concept_map": 0, "term_map_element": 0}
    assert resource_rows(sessions, "ConceptMap") == []
    assert all(kind != "ConceptMap" for kind, _, _ in term_loads(sessions))


def test_a_map_to_a_system_not_loaded_here_is_refused(systems, tmp_path) -> None:
    sessions = systems
    before = counts(sessions)
    path = write_csv(tmp_path, "map.csv", "source_code,target_code,equivalence\nA,X,equivalent\n")
    with pytest.raises(InvalidContent) as exc:
        load(sessions, _map_source(path, target_system="urn:test:cs:nowhere"))
    assert _problems(exc) == ["the target system urn:test:cs:nowhere is not loaded here; load it before the map"]
    assert counts(sessions) == before
    assert resource_rows(sessions, "ConceptMap") == []


def test_the_same_map_without_faults_loads(systems, tmp_path) -> None:
    """The control for the cases above: the systems they map between are loaded."""
    sessions = systems
    path = write_csv(tmp_path, "map.csv", "source_code,target_code,equivalence,comment\nA,X,equivalent,\nA,Y,narrower,two\n"
                                          "B,,unmatched,no target\n")
    [result] = load(sessions, _map_source(path))
    assert (result.kind, result.status, result.items) == ("ConceptMap", "loaded", 3)
    assert counts(sessions, ["term_concept_map", "term_map_element"]) == {"term_concept_map": 1, "term_map_element": 3}
    assert resource_rows(sessions, "ConceptMap") == [("map", 1, False)]
    with terminology_service(sessions) as service:
        translation = service.translate(SRC, "A")
        assert [(m.code, m.equivalence) for m in translation.matches] == [("X", "equivalent"), ("Y", "narrower")]
        unmatched = service.translate(SRC, "B")
        assert unmatched.result is False and [m.equivalence for m in unmatched.matches] == ["unmatched"]


# Regression, once a bug (terminology/loader.py, _rows): line numbers are CSV record numbers, not file lines.
# A quoted field that spans lines (a multi-line comment) shifts every later "line N".
def test_line_numbers_count_file_lines_after_a_multi_line_field(systems, tmp_path) -> None:
    path = write_csv(tmp_path, "map.csv", 'source_code,target_code,equivalence,comment\nA,X,equivalent,"first line\n'
                                          'second line"\nB,Y,same,\n')
    with pytest.raises(InvalidContent) as exc:
        load(systems, _map_source(path))
    assert _problems(exc) == [f"line 4: equivalence 'same' is not one of {ALL_EQUIVALENCES}"]


# --- manifests ---------------------------------------------------------------------------------


def test_manifest_faults_name_each_entry(tmp_path) -> None:
    write_csv(tmp_path, "cs.csv", "code,display\nA,Alpha\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        '[{"file": "cs.csv", "kind": "CodeSystem", "url": "urn:test:cs"},'
        ' {"file": "cs.csv", "kind": "CodeSystem"},'
        ' {"file": "missing.csv", "kind": "CodeSystem", "url": "urn:test:missing"},'
        ' {"file": "cs.csv", "kind": "Table", "url": "urn:test:cs"},'
        ' {"file": "cs.csv", "kind": "ConceptMap", "url": "urn:test:map"}]',
        encoding="utf-8",
    )
    with pytest.raises(InvalidContent) as exc:
        read_manifest(manifest)
    assert _problems(exc) == [
        "entry 2: missing url",
        "entry 3: file 'missing.csv' not found beside the manifest",
        "entry 4: kind must be CodeSystem, ConceptMap or fhir",
        "entry 5: missing sourceSystem, targetSystem",
    ]


def test_no_term_table_is_left_out_of_the_counts() -> None:
    assert {"term_code_system", "term_concept", "term_designation", "term_concept_parent", "term_concept_map",
            "term_map_element", "term_value_set", "term_load"} <= set(TERM_TABLES)
