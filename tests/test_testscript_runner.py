"""Unit tests of the TestScript runner's own logic, against fake HTTP peers (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.testscript_runner import (
    TestScriptResult,
    compare,
    contains_subset,
    fixture_candidates,
    load_fixtures,
    mime,
    path_to_fhirpath,
    run_testscript,
    static_problems,
)

BASE = "http://fhir.test/fhir"
PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"},
           "name": [{"family": "Chan", "given": ["Tai", "Man"]}, {"family": "Wong"}]}


def op(code: str, **fields: object) -> dict:
    return {"operation": {"type": {"code": code}, **fields}}


def check(**fields: object) -> dict:
    return {"assert": fields}


def script(*tests: list[dict], setup: list[dict] | None = None, teardown: list[dict] | None = None,
           **extra: object) -> dict:
    body: dict = {"resourceType": "TestScript", "name": "unit", **extra,
                  "test": [{"id": f"t{i}", "action": actions} for i, actions in enumerate(tests, 1)]}
    if setup is not None:
        body["setup"] = {"action": setup}
    if teardown is not None:
        body["teardown"] = {"action": teardown}
    return body


class Peer:
    """A fake server: records requests; ``handler`` answers them."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def run(self, testscript: dict, fixture_dir: Path | None = None, **kwargs: object) -> TestScriptResult:
        return run_testscript(testscript, BASE, fixture_dir, transport=httpx.MockTransport(self), **kwargs)


def fhir(status: int, body: dict | None = None, **headers: str) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(status, content=content,
                          headers={"Content-Type": "application/fhir+json; charset=utf-8", **headers})


def statuses(result: TestScriptResult) -> list[str]:
    return [a.status for a in result.actions]


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    (tmp_path / "Patient").mkdir()
    (tmp_path / "Patient" / "p.json").write_text(json.dumps(PATIENT))
    (tmp_path / "Patient" / "min.json").write_text(json.dumps({"resourceType": "Patient",
                                                                 "name": [{"family": "Wong"}]}))
    return tmp_path


FIXTURES = [{"id": "pat", "resource": {"reference": "Patient/p.json"}},
            {"id": "min", "resource": {"reference": "Patient/min.json"}}]


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(("path", "fhirpath"), [
    ("fhir:Bundle/fhir:type/@value", "Bundle.type"),
    ("fhir:Patient/fhir:name/fhir:family/@value", "Patient.name.family"),
    ("Patient/id", "Patient.id"),
    ("/Patient/name", "Patient.name"),
    ("Patient.name.family", "Patient.name.family"),
    ("fhir:Patient/fhir:name[1]/fhir:family/@value", None),
    ("//fhir:family", None),
    ("$.name[0].family", None),
    ("Patient.name.where(use='official')", None),
])
def test_path_translation(path: str, fhirpath: str | None) -> None:
    assert path_to_fhirpath(path) == fhirpath


@pytest.mark.parametrize(("received", "operator", "expected", "outcome"), [
    ("a", None, "a", True), ("a", "equals", "b", False),
    ("a", "notEquals", "b", True), ("a", "notEquals", "a", False),
    ("204", "in", "200, 204", True), ("404", "in", "200,204", False),
    ("404", "notIn", "200,204", True), ("200", "notIn", "200,204", False),
    ("10", "greaterThan", "9", True), ("9", "greaterThan", "10", False),
    ("9", "lessThan", "10", True), ("b", "lessThan", "a", False),
    (None, "empty", None, True), ("", "empty", None, True), ("x", "empty", None, False),
    ("x", "notEmpty", None, True), (None, "notEmpty", None, False),
    ("application/fhir+json", "contains", "json", True), ("abc", "contains", "z", False),
    ("abc", "notContains", "z", True), ("abc", "notContains", "b", False),
    (None, "equals", "a", False), (None, "notContains", "a", True),
])
def test_compare_operators(received: str | None, operator: str | None, expected: str | None,
                           outcome: bool) -> None:
    assert compare(received, operator, expected) is outcome


def test_mime_short_forms() -> None:
    assert mime("xml") == "application/fhir+xml"
    assert mime("json") == mime(None) == "application/fhir+json"
    assert mime("application/json") == "application/json"


def test_contains_subset() -> None:
    assert contains_subset({"name": [{"family": "Wong"}]}, PATIENT)
    assert contains_subset({"name": [{"given": ["Man"]}]}, PATIENT)
    assert not contains_subset({"name": [{"family": "Lee"}]}, PATIENT)
    assert not contains_subset({"gender": "male"}, PATIENT)


# ---------------------------------------------------------------- response codes


@pytest.mark.parametrize(("status", "name"), [
    (200, "okay"), (201, "created"), (204, "noContent"), (304, "notModified"), (400, "bad"), (403, "forbidden"),
    (404, "notFound"), (405, "methodNotAllowed"), (409, "conflict"), (410, "gone"),
    (412, "preconditionFailed"), (422, "unprocessable"),
])
def test_response_code_mapping(status: int, name: str) -> None:
    peer = Peer(lambda request: fhir(status, {"resourceType": "OperationOutcome"} if status >= 400 else None))
    result = peer.run(script([op("read", resource="Patient", params="/x"), check(response=name),
                              check(responseCode=str(status)), check(response="okay", operator="notEquals")]
                             if name != "okay" else
                             [op("read", resource="Patient", params="/x"), check(response=name),
                              check(responseCode=str(status))]))
    assert result.passed, result.report()


def test_wrong_response_fails_with_the_exchange_in_the_message() -> None:
    result = Peer(lambda request: fhir(500)).run(script([op("read", resource="Patient", params="/x"),
                                                         check(response="okay")]))
    assert statuses(result) == ["pass", "fail"]
    assert "GET http://fhir.test/fhir/Patient/x -> 500" in result.failures[0].message
    assert "received '500'" in result.failures[0].message


def test_response_code_in_list() -> None:
    result = Peer(lambda request: fhir(204)).run(script([op("delete", resource="Patient", params="/x"),
                                                         check(responseCode="200,204", operator="in")]))
    assert result.passed and statuses(result) == ["pass", "pass"]


# ---------------------------------------------------------------- variables


def test_default_value_and_override_substitution() -> None:
    peer = Peer(lambda request: fhir(404))
    testscript = script([op("read", resource="Patient", params="/${Known}"),
                         op("search", resource="Patient", params="?family=${Family}&given=${Given}")],
                        variable=[{"name": "Known", "defaultValue": "example"},
                                  {"name": "Family", "hint": "[Family name]"}, {"name": "Given", "defaultValue": "x"}])
    result = peer.run(testscript)
    assert [str(r.url) for r in peer.requests] == [f"{BASE}/Patient/example"]
    assert result.actions[1].status == "skip" and "${Family} has no value (needs input: [Family name])" in \
        result.actions[1].message
    peer.requests.clear()
    peer.run(testscript, variables={"Family": "Chan", "Known": "other"})
    assert [str(r.url) for r in peer.requests] == [f"{BASE}/Patient/other", f"{BASE}/Patient?family=Chan&given=x"]


def test_header_field_variable_from_response_id(fixture_dir: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return fhir(201, {**PATIENT, "id": "123"}, Location=f"{BASE}/Patient/123/_history/1")
        return fhir(200, {**PATIENT, "id": "123"})

    peer = Peer(handler)
    result = peer.run(script([op("create", resource="Patient", sourceId="pat", responseId="created"),
                              op("read", url="${Loc}"), check(resource="Patient")],
                             fixture=FIXTURES, variable=[{"name": "Loc", "headerField": "Location",
                                                          "sourceId": "created"}]), fixture_dir)
    assert result.passed, result.report()
    assert str(peer.requests[1].url) == f"{BASE}/Patient/123/_history/1"


def test_path_and_expression_variables_from_fixture(fixture_dir: Path) -> None:
    peer = Peer(lambda request: fhir(200, PATIENT))
    result = peer.run(script([op("read", resource="Patient", params="/${Id}?x=${Family}")], fixture=FIXTURES,
                             variable=[{"name": "Id", "path": "Patient/id", "sourceId": "pat"},
                                       {"name": "Family", "expression": "name.first().family", "sourceId": "pat"}]),
                      fixture_dir)
    assert result.passed
    assert str(peer.requests[0].url) == f"{BASE}/Patient/p1?x=Chan"


def test_expression_variable_reads_last_response_without_source() -> None:
    peer = Peer(lambda request: fhir(200, {"resourceType": "Bundle", "type": "searchset", "total": 7}))
    peer.run(script([op("search", resource="Patient"), op("read", resource="Patient", params="/${Total}")],
                    variable=[{"name": "Total", "expression": "Bundle.total"}]))
    assert str(peer.requests[1].url) == f"{BASE}/Patient/7"


# ---------------------------------------------------------------- operations


def test_update_sends_fixture_with_the_url_id_and_headers(fixture_dir: Path) -> None:
    peer = Peer(lambda request: fhir(200, json.loads(request.content)))
    result = peer.run(script([op("update", resource="Patient", params="/other", sourceId="pat",
                                 requestHeader=[{"field": "If-Match", "value": 'W/"${V}"'}])],
                             fixture=FIXTURES, variable=[{"name": "V", "defaultValue": "3"}]), fixture_dir)
    assert result.passed
    request = peer.requests[0]
    assert request.method == "PUT" and str(request.url) == f"{BASE}/Patient/other"
    assert json.loads(request.content)["id"] == "other"
    assert request.headers["Content-Type"] == request.headers["Accept"] == "application/fhir+json"
    assert request.headers["If-Match"] == 'W/"3"'


def test_target_id_uses_the_id_and_version_the_server_assigned(fixture_dir: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return fhir(201, None, Location=f"{BASE}/Patient/abc/_history/1")
        if request.method == "DELETE":
            return fhir(204)
        return fhir(200, {"resourceType": "Bundle", "type": "history"})

    peer = Peer(handler)
    result = peer.run(script([op("create", resource="Patient", sourceId="pat"),
                              op("read", targetId="pat"), op("vread", targetId="pat"),
                              op("history", targetId="pat"), op("delete", targetId="pat")], fixture=FIXTURES),
                      fixture_dir)
    assert result.passed, result.report()
    assert [f"{r.method} {r.url}" for r in peer.requests] == [
        f"POST {BASE}/Patient", f"GET {BASE}/Patient/abc", f"GET {BASE}/Patient/abc/_history/1",
        f"GET {BASE}/Patient/abc/_history", f"DELETE {BASE}/Patient/abc"]


def test_system_level_operations(fixture_dir: Path) -> None:
    peer = Peer(lambda request: fhir(200, {"resourceType": "Bundle", "type": "transaction-response"}))
    (fixture_dir / "tx.json").write_text(json.dumps({"resourceType": "Bundle", "type": "transaction"}))
    peer.run(script([op("transaction", sourceId="tx"), op("batch", sourceId="tx"), op("history"),
                     op("history", resource="Patient"), op("search", resource="Patient"), op("capabilities")],
                    fixture=[{"id": "tx", "resource": {"reference": "tx.json"}}]), fixture_dir)
    assert [f"{r.method} {r.url}" for r in peer.requests] == [
        f"POST {BASE}", f"POST {BASE}", f"GET {BASE}/_history", f"GET {BASE}/Patient/_history",
        f"GET {BASE}/Patient", f"GET {BASE}/metadata"]


def test_xml_refused_with_415_is_skipped_with_its_asserts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "xml" in request.headers["Accept"]:
            return fhir(415, {"resourceType": "OperationOutcome"})
        return fhir(200, PATIENT)

    result = Peer(handler).run(script(
        [op("read", resource="Patient", params="/p1", accept="xml"), check(response="okay"),
         check(contentType="xml"), check(resource="Patient")],
        [op("read", resource="Patient", params="/p1"), check(response="okay"), check(contentType="json")]))
    assert statuses(result) == ["skip"] * 4 + ["pass"] * 3
    assert all(a.message.startswith("XML not supported") for a in result.actions[:4])
    assert result.passed


def test_xml_answered_with_json_is_not_skipped() -> None:
    result = Peer(lambda request: fhir(200, PATIENT)).run(
        script([op("read", resource="Patient", params="/p1", accept="xml"), check(contentType="xml")]))
    assert statuses(result) == ["pass", "fail"]
    assert "'application/fhir+xml', received 'application/fhir+json'" in result.failures[0].message


def test_transport_error_fails_the_operation() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = Peer(handler).run(script([op("read", resource="Patient", params="/1"), check(response="okay")]))
    assert statuses(result) == ["fail", "skip"]
    assert "ConnectError" in result.failures[0].message


# ---------------------------------------------------------------- asserts on content


def test_content_asserts(fixture_dir: Path) -> None:
    peer = Peer(lambda request: fhir(200, PATIENT, **{"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}))
    result = peer.run(script([
        op("read", resource="Patient", params="/p1", responseId="read"),
        check(resource="Patient"),
        check(contentType="application/fhir+json"),
        check(headerField="Last-Modified", operator="notEmpty"),
        check(headerField="ETag", operator="empty"),
        check(headerField="Accept", direction="request", operator="contains", value="json"),
        check(requestMethod="get"),
        check(requestURL="Patient/p1", operator="contains"),
        check(path="fhir:Patient/fhir:name/fhir:family/@value", value="Chan"),  # first value, like XPath
        check(path="fhir:Patient/fhir:name/fhir:given/@value", sourceId="read", value="Tai"),
        check(expression="Patient.name.count()", value="2"),
        check(expression="Patient.name.count()", operator="greaterThan", value="1"),
        check(expression="Patient.name.count() = 2"),
        check(expression="Patient.name.exists()", operator="eval"),
        check(compareToSourceId="pat", compareToSourceExpression="Patient.name.first().family",
              expression="Patient.name.first().family", operator="equals"),
        check(compareToSourceId="pat", compareToSourcePath="fhir:Patient/fhir:name/fhir:given/@value",
              path="fhir:Patient/fhir:name/fhir:given/@value"),
        check(compareToSourceId="pat", compareToSourceExpression="Patient.id"),  # same expression both sides
        check(minimumId="min"),
    ], fixture=FIXTURES), fixture_dir)
    assert result.passed and statuses(result) == ["pass"] * 18, result.report()


@pytest.mark.parametrize(("assertion", "message"), [
    (check(expression="Patient.name.family"), "returned 2 values"),
    (check(expression="Patient.name.count() = 3"), "expected true"),
    (check(expression="Patient.gender", value="male"), "received None"),
    (check(path="Patient.name.family", value="Wong"), "received 'Chan'"),
    (check(resource="Bundle"), "received 'Patient'"),
    (check(minimumId="pat2"), "lacks elements"),
    (check(compareToSourceId="pat2", compareToSourceExpression="Patient.id",
           expression="Patient.id"), "'other', received 'p1'"),
])
def test_failing_content_asserts_explain_themselves(tmp_path: Path, assertion: dict, message: str) -> None:
    (tmp_path / "p2.json").write_text(json.dumps({**PATIENT, "id": "other", "gender": "female"}))
    result = Peer(lambda request: fhir(200, PATIENT)).run(
        script([op("read", resource="Patient", params="/p1"), assertion],
               fixture=[{"id": "pat2", "resource": {"reference": "p2.json"}}]), tmp_path)
    assert statuses(result) == ["pass", "fail"]
    assert message in result.failures[0].message, result.report()


def test_multi_valued_expression_with_empty_operators(fixture_dir: Path) -> None:
    result = Peer(lambda request: fhir(201, {**PATIENT, "id": "new"})).run(script([
        op("create", resource="Patient", sourceId="pat"),
        check(expression="Patient.name.family", operator="notEmpty"),
        check(expression="Patient.telecom", operator="empty"),
        check(expression="Patient.id", value="new"),
        check(direction="request", expression="Patient.id", value="p1"),  # the body the runner sent
        check(direction="request", resource="Patient"),
    ], fixture=FIXTURES), fixture_dir)
    assert result.passed and statuses(result) == ["pass"] * 6, result.report()


def test_unsupported_asserts_are_skipped() -> None:
    result = Peer(lambda request: fhir(200, PATIENT)).run(script([
        op("read", resource="Patient", params="/p1"),
        check(validateProfileId="patient-profile"),
        check(path="fhir:Patient/fhir:name[1]/fhir:family/@value", value="Chan"),
        check(expression="Patient.id", operator="wobble", value="x"),
    ]))
    assert statuses(result) == ["pass", "skip", "skip", "skip"]
    assert "profile validation is not supported" in result.actions[1].message
    assert "not a simple path" in result.actions[2].message


def test_navigation_links() -> None:
    bundles = iter([{"resourceType": "Bundle", "link": [{"relation": "self", "url": f"{BASE}/Patient"}]},
                    {"resourceType": "Bundle", "link": []}])
    result = Peer(lambda request: fhir(200, next(bundles))).run(script(
        [op("search", resource="Patient"), check(navigationLinks=True)],
        [op("search", resource="Patient"), check(navigationLinks=True)]))
    assert statuses(result) == ["pass", "pass", "pass", "fail"]


# ---------------------------------------------------------------- control flow


def test_warning_only_failure_is_a_warning() -> None:
    result = Peer(lambda request: fhir(200, PATIENT)).run(script([
        op("read", resource="Patient", params="/p1"),
        check(headerField="Last-Modified", operator="notEmpty", warningOnly=True), check(response="okay")]))
    assert statuses(result) == ["pass", "warning", "pass"] and result.passed


def test_setup_failure_skips_tests_but_runs_teardown() -> None:
    peer = Peer(lambda request: fhir(404))
    result = peer.run(script([op("read", resource="Patient", params="/t")],
                             setup=[op("read", resource="Patient", params="/s"), check(response="okay"),
                                    op("read", resource="Patient", params="/s2")],
                             teardown=[op("delete", resource="Patient", params="/d")]))
    assert [(a.section, a.status) for a in result.actions] == [
        ("setup", "pass"), ("setup", "fail"), ("setup", "skip"), ("test t1", "skip"), ("teardown", "pass")]
    assert [r.url.path for r in peer.requests] == ["/fhir/Patient/s", "/fhir/Patient/d"]
    assert "setup failed" in result.actions[3].message


def test_test_failure_skips_rest_of_that_test_only() -> None:
    peer = Peer(lambda request: fhir(200, PATIENT))
    result = peer.run(script([op("read", resource="Patient", params="/a"), check(resource="Bundle"),
                              op("read", resource="Patient", params="/b")],
                             [op("read", resource="Patient", params="/c"), check(resource="Patient")]))
    assert statuses(result) == ["pass", "fail", "skip", "pass", "pass"]
    assert "after the failure of test t1 action #2" in result.actions[2].message


def test_autocreate_and_autodelete(fixture_dir: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return fhir(201, {**PATIENT, "id": "new1", "meta": {"versionId": "1"}})
        return fhir(204) if request.method == "DELETE" else fhir(200, {**PATIENT, "id": "new1"})

    peer = Peer(handler)
    fixtures = [{**FIXTURES[0], "autocreate": True, "autodelete": True}]
    result = peer.run(script([op("read", targetId="pat"), check(response="okay")], fixture=fixtures), fixture_dir)
    assert result.passed, result.report()
    assert [f"{r.method} {r.url.path}" for r in peer.requests] == [
        "POST /fhir/Patient", "GET /fhir/Patient/new1", "DELETE /fhir/Patient/new1"]


def test_failed_autocreate_skips_setup_and_tests(fixture_dir: Path) -> None:
    peer = Peer(lambda request: fhir(400, {"resourceType": "OperationOutcome"}))
    fixtures = [{**FIXTURES[0], "autocreate": True}]
    result = peer.run(script([op("read", targetId="pat")], setup=[op("read", resource="Patient", params="/x")],
                             fixture=fixtures), fixture_dir)
    assert statuses(result) == ["pass", "fail", "skip", "skip"]
    assert len(peer.requests) == 1


def test_missing_fixture_skips_actions_that_need_it_and_is_reported() -> None:
    testscript = script([op("update", resource="Patient", params="/${Id}", sourceId="pat")], fixture=[
        {"id": "pat", "resource": {"reference": "Patient/example"}}],
        variable=[{"name": "Id", "path": "Patient/id", "sourceId": "pat"}])
    peer = Peer(lambda request: fhir(200))
    result = peer.run(testscript)
    assert statuses(result) == ["skip"] and not peer.requests
    assert "'Patient/example', which is not a local file" in result.actions[0].message
    assert static_problems(testscript, None) == [
        "fixture 'pat' references 'Patient/example', which is not a local file (no fixture directory)"]
    assert "origin/destination" in static_problems({"origin": [{"index": 1}]}, None)[0]


# ---------------------------------------------------------------- fixture resolution


def test_literal_reference_resolves_beside_the_script_then_in_the_examples(tmp_path: Path) -> None:
    scripts, examples = tmp_path / "scripts", tmp_path / "examples"
    scripts.mkdir()
    examples.mkdir()
    (examples / "Patient-example.json").write_text(json.dumps({**PATIENT, "id": "example"}))
    (examples / "Patient-pat1.json").write_text(json.dumps({**PATIENT, "id": "pat1", "gender": "male"}))
    (scripts / "Patient-pat1.json").write_text(json.dumps({**PATIENT, "id": "pat1", "gender": "female"}))
    assert fixture_candidates("Patient/example", scripts, examples) == [
        scripts / "Patient" / "example", scripts / "Patient-example.json", examples / "Patient-example.json"]
    assert fixture_candidates("Patient/p.json", scripts, examples) == [scripts / "Patient" / "p.json"]
    assert fixture_candidates("#contained", scripts, examples) == []
    assert fixture_candidates("http://example.org/fhir/Patient/example", scripts, examples) == []

    testscript = script([], fixture=[{"id": "create", "resource": {"reference": "Patient/example"}},
                                     {"id": "update", "resource": {"reference": "Patient/pat1"}}])
    fixtures, missing = load_fixtures(testscript, scripts, examples)
    assert not missing
    assert fixtures["create"]["id"] == "example"  # only in the examples
    assert fixtures["update"]["gender"] == "female"  # the script's own folder comes first
    assert static_problems(testscript, scripts, examples) == []
    # without the examples folder, Patient/example stays missing and says where it was looked for
    assert static_problems(testscript, scripts) == [
        f"fixture 'create' references 'Patient/example', which is not a local file "
        f"(tried {scripts / 'Patient' / 'example'}, {scripts / 'Patient-example.json'})"]


def test_example_file_must_hold_the_referenced_resource(tmp_path: Path) -> None:
    (tmp_path / "Patient-example.json").write_text(json.dumps({**PATIENT, "id": "other"}))
    (tmp_path / "Observation-example.json").write_text(json.dumps({"resourceType": "Patient", "id": "example"}))
    testscript = script([], fixture=[{"id": "a", "resource": {"reference": "Patient/example"}},
                                     {"id": "b", "resource": {"reference": "Observation/example"}}])
    fixtures, missing = load_fixtures(testscript, None, tmp_path)
    assert not fixtures
    assert missing["a"].endswith("Patient-example.json holds Patient/other, not Patient/example")
    assert missing["b"].endswith("Observation-example.json holds Patient/example, not Observation/example")


def test_fixture_from_the_examples_is_sent_and_read(tmp_path: Path) -> None:
    (tmp_path / "Patient-example.json").write_text(json.dumps({**PATIENT, "id": "example"}))
    peer = Peer(lambda request: fhir(201 if request.method == "PUT" else 200, {**PATIENT, "id": "example"}))
    result = peer.run(script([op("update", resource="Patient", params="/${Id}", sourceId="pat"),
                              check(responseCode="201")],
                             fixture=[{"id": "pat", "resource": {"reference": "Patient/example"}}],
                             variable=[{"name": "Id", "path": "Patient/id", "sourceId": "pat"}]),
                      None, examples_dir=tmp_path)
    assert result.passed and statuses(result) == ["pass", "pass"], result.report()
    assert str(peer.requests[0].url) == f"{BASE}/Patient/example"
    assert json.loads(peer.requests[0].content)["name"] == PATIENT["name"]


def test_spec_testscripts_find_their_fixtures_in_the_r4_examples() -> None:
    corpora = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    spec, examples = corpora / "testscripts" / "fhir-r4-spec-examples", corpora / "fhir-r4-examples"
    if not spec.is_dir() or not examples.is_dir():
        pytest.skip(f"the corpora are not present at {corpora}")
    for name in ("", "-history", "-search", "-update"):
        testscript = json.loads((spec / f"TestScript-testscript-example{name}.json").read_text(encoding="utf-8"))
        fixtures, missing = load_fixtures(testscript, spec, examples)
        assert not missing, missing
        assert fixtures["fixture-patient-create"]["id"] == "example"
        assert "not a local file" in static_problems(testscript, spec)[0]  # the examples are needed


def test_report_lists_every_action() -> None:
    result = Peer(lambda request: fhir(404)).run(script([op("read", resource="Patient", params="/1", label="Read"),
                                                         check(response="okay", label="OK")]))
    report = result.report()
    assert report.splitlines()[0] == "TestScript unit: pass 1, fail 1, skip 0, warning 0"
    assert "[FAIL   ] test t1 #2 assert OK: response (GET http://fhir.test/fhir/Patient/1 -> 404)" in report
