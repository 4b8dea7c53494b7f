"""``baylink terminology load``: exit codes, line-numbered faults, one transaction per file."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from baylink import cli
from baylink.settings import get_settings
from tests.terminology.support import (
    HK_LAB,
    LOINC,
    MANIFEST,
    STARTER,
    counts,
    resource_rows,
    starter,
    stored_resource,
    term_loads,
    terminology_service,
    write_csv,
)

URL = "urn:test:cs:cli"
RESULT_LINE = re.compile(r"^(\S+): (CodeSystem|ConceptMap|ValueSet) (\S+) (loaded|unchanged) \(\d+ items\)$")
Invoke = Callable[..., Result]


def said(result: Result) -> str:
    """Everything the command printed, with rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture
def invoke(sessions, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """Runs ``baylink terminology load …`` against this test's database."""
    monkeypatch.setenv("BAYLINK_DATABASE_URL", database_url)
    engines: dict = {}
    monkeypatch.setattr(cli, "_engine_cache", engines)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: object) -> Result:
        return runner.invoke(cli.app, ["terminology", "load", *map(str, args)])

    yield run
    for engine in engines.values():
        engine.dispose()
    get_settings.cache_clear()


def reported(result: Result) -> list[tuple[str, str, str, str]]:
    """(file, kind, url|version, status) of every result line the command printed."""
    return [(m[1], m[2], m[3], m[4]) for m in map(RESULT_LINE.match, result.output.splitlines()) if m]


def test_the_shipped_manifest_loads_and_a_second_run_changes_nothing(invoke: Invoke, sessions) -> None:
    first = invoke(MANIFEST)
    assert first.exit_code == 0, first.output
    lines = reported(first)
    assert {file for file, _, _, _ in lines} == set(STARTER)
    assert {status for _, _, _, status in lines} == {"loaded"}
    for name, source in STARTER.items():
        if source.kind != "fhir":
            assert (name, source.kind, f"{source.meta['url']}|{source.meta['version']}", "loaded") in lines
    kinds = [kind for _, kind, _, _ in lines]
    loaded = counts(sessions)
    assert (loaded["term_code_system"], loaded["term_concept_map"], loaded["term_value_set"]) == (
        kinds.count("CodeSystem"), kinds.count("ConceptMap"), kinds.count("ValueSet"),
    )
    assert loaded["resource"] == len(lines) and loaded["term_load"] == len(lines)
    with terminology_service(sessions) as service:
        [match] = service.translate(HK_LAB, "HB", target_system=LOINC, language="zh-Hans").matches
        assert (match.code, match.display) == ("718-7", "血红蛋白（血液，质量浓度）")

    second = invoke(MANIFEST)
    assert second.exit_code == 0, second.output
    assert reported(second) == [(file, kind, what, "unchanged") for file, kind, what, _ in lines]
    assert counts(sessions) == loaded


def test_a_bad_table_exits_1_with_its_faults_by_line_and_loads_nothing(invoke: Invoke, sessions, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "bad.csv", "code,display,parent\nA,Alpha,\n,Empty,\nA,Again,\nB,Beta,Q\n")
    result = invoke(path, "--url", URL, "--version", "1")
    assert result.exit_code == 1
    output = said(result)
    assert "bad.csv: not loaded" in output
    for fault in ("line 3: the code is empty", "line 4: duplicate code 'A' (first on line 2)",
                  "line 5: parent 'Q' of 'B' is not a code in this file"):
        assert fault in output
    assert "1 file(s) not loaded" in output
    assert set(counts(sessions).values()) == {0}


def test_a_table_without_url_is_refused(invoke: Invoke, sessions, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "nourl.csv", "code,display\nA,Alpha\n")
    result = invoke(path)
    assert result.exit_code == 1
    assert "nourl.csv: give --url" in said(result)
    assert set(counts(sessions).values()) == {0}


def test_a_missing_file_exits_2(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke(tmp_path / "nowhere.csv")
    assert result.exit_code == 2
    assert "no such file" in said(result)


def test_a_table_with_options_loads_under_them(invoke: Invoke, sessions, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "local codes.csv", "code,display,zh-Hans\nWBC,White cell count,白细胞计数\n")
    result = invoke(path, "--url", URL, "--version", "3", "--name", "LocalCodes", "--title", "Local codes", "--id", "local")
    assert result.exit_code == 0, result.output
    assert f"CodeSystem {URL}|3 loaded (1 items)" in said(result)
    resource = stored_resource(sessions, "CodeSystem", "local")
    assert (resource["url"], resource["version"], resource["name"], resource["title"]) == (URL, "3", "LocalCodes", "Local codes")
    with terminology_service(sessions) as service:
        assert service.lookup(URL, "WBC", language="zh-Hant").display == "白細胞計數"
    again = invoke(path, "--url", URL, "--version", "3", "--name", "LocalCodes", "--title", "Local codes", "--id", "local")
    assert again.exit_code == 0 and f"CodeSystem {URL}|3 unchanged" in said(again)


def test_a_map_table_is_checked_against_the_loaded_systems(invoke: Invoke, sessions, tmp_path: Path) -> None:
    for name in ("loinc-common.csv", "hk-example-lab.csv"):
        assert invoke(one_entry_manifest(tmp_path, name)).exit_code == 0
    path = write_csv(tmp_path, "map.csv", "source_code,target_code,equivalence\nHB,718-7,equivalent\nWBC,0000-0,equivalent\n")
    options = ("--url", "urn:test:map:cli", "--version", "1", "--source-system", HK_LAB, "--target-system", LOINC)
    refused = invoke(path, *options)
    assert refused.exit_code == 1
    assert f"line 3: target code '0000-0' is not in {LOINC}" in said(refused)
    assert resource_rows(sessions, "ConceptMap") == [] and counts(sessions)["term_concept_map"] == 0

    write_csv(tmp_path, "map.csv", "source_code,target_code,equivalence\nHB,718-7,equivalent\n")
    elsewhere = invoke(path, *options[:-1], "urn:test:cs:nowhere")
    assert elsewhere.exit_code == 1
    assert "the target system urn:test:cs:nowhere is not loaded here; load it before the map" in said(elsewhere)
    assert counts(sessions)["term_concept_map"] == 0

    accepted = invoke(path, *options)
    assert accepted.exit_code == 0, accepted.output
    with terminology_service(sessions) as service:
        assert [m.code for m in service.translate(HK_LAB, "HB").matches] == ["718-7"]


def test_each_file_is_its_own_transaction(invoke: Invoke, sessions, tmp_path: Path) -> None:
    good = write_csv(tmp_path, "good.csv", "code,display\nA,Alpha\n")
    bad = write_csv(tmp_path, "bad.csv", "code,display\nA,Alpha\nA,Again\n")
    result = invoke(good, bad, "--url", URL)
    assert result.exit_code == 1
    assert "line 3: duplicate code 'A' (first on line 2)" in said(result)
    assert "1 file(s) not loaded" in said(result)
    assert [url for _, url, _ in term_loads(sessions)] == [URL]  # the good one, once
    assert resource_rows(sessions, "CodeSystem") == [("good", 1, False)]


# Regression, once a bug (baylink/cli.py, _load_terminology): only "url" is checked before loading, so a map table
# given --url but not --source-system / --target-system reaches read_concept_map_csv, which does
# meta["sourceSystem"] and raises KeyError: a traceback instead of the "give --url (and for a map
# --source-system and --target-system)" message.
def test_a_map_table_without_its_systems_is_refused_clearly(invoke: Invoke, sessions, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "map.csv", "source_code,target_code,equivalence\nHB,718-7,equivalent\n")
    result = invoke(path, "--url", "urn:test:map:cli")
    assert not isinstance(result.exception, KeyError), result.exception
    assert result.exit_code == 1
    assert "--source-system" in said(result)


def one_entry_manifest(directory: Path, name: str) -> Path:
    """A manifest of one starter file (its entry, with the file named by its absolute path)."""
    path = directory / f"manifest-{name}.json"
    path.write_bytes(orjson.dumps([{**starter(name).meta, "file": str(STARTER[name].path)}]))
    return path
