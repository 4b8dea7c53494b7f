"""The shipped FHIR TestScripts, run against the live server (SQLite and PostgreSQL).

``test_testscript`` runs each script as shipped. Fixtures are the scripts' own files; the R4
spec's scripts reference theirs as ``Patient/example`` etc., the R4 examples shipped with them,
read from ``fhir-r4-examples/<Type>-<id>.json``. A script is skipped only when it cannot run
on any server: it references fixtures that are not in the corpus, it is a multi-system script
(origin/destination: a client under test), or every action needs XML, which BayLink refuses
with 415. Anything else that fails is a failure.

``test_testscript_as_json`` runs the scripts whose only obstacle is XML once more, asking for
JSON instead (``accept``/``contentType`` and the content-type asserts), so the read, update and
search scripts still exercise the server.

A few shipped scripts contradict the FHIR R4 specification; ``ERRATA`` corrects exactly those
points before running (each checks the original value first, so a changed corpus is noticed).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.testscript_runner import TestScriptResult, run_testscript, static_problems

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "testscripts"
CRUCIBLE = CORPUS / "crucible-testscript-engine" / "TestScripts"
SPEC = CORPUS / "fhir-r4-spec-examples"
# The spec's TestScripts name their fixtures by literal reference (Patient/example, Patient/pat1):
# the R4 examples from the same npm package (hl7.fhir.r4.examples), stored as <Type>-<id>.json.
EXAMPLES = CORPUS.parent / "fhir-r4-examples"

# Variables the scripts leave to the tester (they carry only a ``hint``): the search script's
# test 01 creates its Peter Chalmers fixture, and test 02 searches for a known patient.
INPUTS = {"PatientSearchFamilyName": "Chalmers", "PatientSearchGivenName": "Peter"}
# The read scripts read "a known Patient" (variable KnownPatientResourceId = "example"); the
# database is emptied before each test, so that patient is put there first.
NEEDS_KNOWN_PATIENT = {"read_testscript.json", "TestScript-testscript-example-readtest.json"}


def _script_files() -> list[Path]:
    return sorted(CRUCIBLE.glob("*.json")) + sorted(SPEC.glob("TestScript-*.json"))


def _id(path: Path) -> str:
    return f"{'spec' if path.parent == SPEC else 'crucible'}/{path.stem}"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _uses_xml(script: dict) -> bool:
    return "xml" in json.dumps([script.get(k) for k in ("setup", "test", "teardown")])


SCRIPTS = [pytest.param(p, id=_id(p)) for p in _script_files()] or [pytest.param(None, id="corpus-absent")]
XML_SCRIPTS = [pytest.param(p, id=_id(p)) for p in _script_files()
               if _uses_xml(_load(p)) and not static_problems(_load(p), p.parent, EXAMPLES)]


# ---------------------------------------------------------------- errata


def _actions(script: dict, section: str) -> list[dict]:
    if section in ("setup", "teardown"):
        return script[section]["action"]
    return next(t for t in script["test"] if t.get("id") == section)["action"]


def _replace(section: str, index: int, kind: str, key: str, old: object, new: object) -> Callable[[dict], None]:
    def patch(script: dict) -> None:
        element = _actions(script, section)[index - 1][kind]
        assert element.get(key) == old, f"erratum no longer applies: {section} #{index} {key}={element.get(key)!r}"
        element[key] = new
    return patch


def _corrected_fixture(fixture_id: str, fix: Callable[[dict], None]) -> Callable[[dict], None]:
    """Use a corrected copy of a fixture file, carried as a contained resource of the script."""
    def patch(script: dict) -> None:
        fixture = next(f for f in script["fixture"] if f["id"] == fixture_id)
        resource = _load(CRUCIBLE / fixture["resource"]["reference"])
        fix(resource)
        resource["id"] = f"{fixture_id}-corrected"
        script.setdefault("contained", []).append(resource)
        fixture["resource"]["reference"] = f"#{resource['id']}"
    return patch


def _two_digit_birth_date(patient: dict) -> None:
    assert patient["birthDate"] == "1978-3-1", "erratum no longer applies: birthDate changed"
    patient["birthDate"] = "1978-03-01"
    patient["_birthDate"]["extension"][0]["valueDateTime"] = "1978-03-01T14:35:45-05:00"


@dataclass(frozen=True)
class Erratum:
    script: str
    reason: str
    patch: Callable[[dict], None]


INVALID_DATE = (
    "fixtures/Patient/example2.json has birthDate '1978-3-1' and a birthTime '1978-3-1T14:35:45-05:00': neither "
    "matches the R4 date/dateTime regex (month and day need two digits), so a validating server rightly rejects "
    "it with 400/422; corrected to 1978-03-01"
)
ERRATA = [
    Erratum("general_testscript.json",
            "setup #4 asserts responseCode 200 after a PUT that creates Patient/example (it was deleted just "
            "before and the database is empty); its own label says 201 and R4 http.html#update requires "
            "201 Created when an update creates the resource (the R4 example of the same script asserts 201)",
            _replace("setup", 4, "assert", "responseCode", "200", "201")),
    Erratum("history_testscript.json", INVALID_DATE,
            _corrected_fixture("fixture-patient-update", _two_digit_birth_date)),
    Erratum("update_testscript.json", INVALID_DATE,
            _corrected_fixture("fixture-patient-update", _two_digit_birth_date)),
    *[Erratum(name,
              "test R004 expects 400 for the id 'ID-may-not-contain-CAPITALS', but R4 ids are "
              "[A-Za-z0-9\\-\\.]{1,64} (capitals allowed): reading a well-formed id that does not exist is a "
              "404 Not Found",
              _replace("R004", 2, "assert", "response", "bad", "notFound"))
      for name in ("read_testscript.json", "TestScript-testscript-example-readtest.json")],
]


def _prepared(path: Path) -> tuple[dict, list[str]]:
    script = copy.deepcopy(_load(path))
    applied = []
    for erratum in ERRATA:
        if erratum.script == path.name:
            erratum.patch(script)
            applied.append(erratum.reason)
    return script, applied


def _as_json(script: dict) -> dict:
    """XML requests become JSON ones, and content-type asserts expect JSON."""
    script = copy.deepcopy(script)
    for actions in [(script.get(s) or {}).get("action", []) for s in ("setup", "teardown")] + [
            t.get("action", []) for t in script.get("test", [])]:
        for action in actions:
            for key in ("accept", "contentType"):
                if "xml" in action.get("operation", {}).get(key, ""):
                    action["operation"][key] = "json"
            if "xml" in action.get("assert", {}).get("contentType", ""):
                action["assert"]["contentType"] = "application/fhir+json"
    return script


# ---------------------------------------------------------------- tests


def _script_or_skip(path: Path | None) -> tuple[dict, list[str]]:
    if path is None or not CORPUS.is_dir():
        pytest.skip(f"the TestScript corpus is not present at {CORPUS}")
    script, errata = _prepared(path)
    problems = static_problems(script, path.parent, EXAMPLES)
    if problems:
        pytest.skip(f"{path.name} cannot run on any server: " + "; ".join(problems))
    return script, errata


def _run(script: dict, path: Path, base_url: str, errata: list[str], token: str) -> TestScriptResult:
    auth = {"Authorization": f"Bearer {token}"}
    if path.name in NEEDS_KNOWN_PATIENT:
        known = _load(CRUCIBLE / "fixtures" / "Patient" / "example.json")
        response = httpx.put(f"{base_url}/Patient/example", json=known,
                             headers={"Content-Type": "application/fhir+json", **auth})
        assert response.status_code in (200, 201), f"could not put the known Patient/example: {response.text}"
    result = run_testscript(script, base_url, path.parent, examples_dir=EXAMPLES, variables=INPUTS, headers=auth)
    report = result.report() + "".join(f"\nerratum applied: {reason}" for reason in errata)
    print(report)
    assert result.passed, report
    return result


@pytest.mark.parametrize("path", SCRIPTS)
def test_testscript(live_server: str, live_token: str, path: Path | None) -> None:
    script, errata = _script_or_skip(path)
    assert path is not None
    result = _run(script, path, live_server, errata, live_token)
    if all(a.status == "skip" for a in result.actions):
        operations = [a for a in result.actions if a.kind == "operation"]
        assert operations and all("XML not supported" in a.message for a in operations), result.report()
        pytest.skip(f"{path.name} needs XML: each of its {len(operations)} operations asks for "
                    "application/fhir+xml, which BayLink refuses with 415 (see test_testscript_as_json)")


@pytest.mark.parametrize("path", XML_SCRIPTS or [pytest.param(None, id="none")])
def test_testscript_as_json(live_server: str, live_token: str, path: Path | None) -> None:
    script, errata = _script_or_skip(path)
    assert path is not None
    result = _run(_as_json(script), path, live_server, errata, live_token)
    skipped = [a for a in result.actions if a.status == "skip"]
    assert not any("XML" in a.message for a in skipped), result.report()
    assert len(skipped) < len(result.actions), result.report()
