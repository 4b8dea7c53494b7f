"""A small FHIR R4 TestScript runner for BayLink's tests (JSON only).

``run_testscript(script, base_url, fixture_dir)`` executes a TestScript resource (a dict)
against a FHIR server with httpx and returns a :class:`TestScriptResult` that lists every
setup / test / teardown action with ``pass``, ``fail``, ``skip`` or ``warning`` (a failed
``warningOnly`` assert) and a message saying why.

Conventions (where the TestScript specification leaves room, or the runner is deliberately
small):

- Execution follows the specification: a failed setup action skips the rest of the setup and
  every test; a failed test action skips the rest of that test; teardown always runs.
- XML is not supported. An operation whose ``accept``/``contentType`` asks for XML is sent
  anyway; when the server refuses it (406/415) the operation is marked ``skip: XML not
  supported`` and asserts on its response are skipped too.
- Variables are evaluated when substituted, so a ``headerField`` variable can read a
  ``responseId`` stored by an earlier operation. Without ``sourceId`` they read the last
  response. A variable with no value (e.g. one with only a ``hint`` for user input) skips the
  action that needs it, unless supplied through ``variables=``.
- ``path`` accepts a dotted FHIRPath (``Patient.name.family``) or the simple XPath form the
  R4 examples use (``fhir:Patient/fhir:name/fhir:family/@value`` or ``Patient/id``), which is
  translated step for step into FHIRPath; anything else is skipped. Like XPath's ``string()``,
  a path compares its first value; an ``expression`` must yield exactly one value, or, with
  no value to compare, is evaluated as a boolean condition.
- ``update`` sends the fixture with its ``id`` set to the id in the request URL (fixtures are
  templates; the specification requires the body id to match the URL).
- ``targetId`` names the id the server gave the fixture (from the response body or
  ``Location``), falling back to the fixture's own id.
- A fixture's ``resource.reference`` is a ``#contained`` resource, a path relative to the
  fixture directory, or a literal ``Type/id`` naming an example stored as ``Type-id.json`` (the
  layout of the FHIR npm packages) beside the script or in ``examples_dir``; the file must hold
  that type and id.
- ``validateProfileId`` is skipped (no validator here); ``navigationLinks`` requires the
  Bundle's ``self`` link, the only link R4 search requires.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fhirpathpy
import httpx
from fhirpathpy.models import models

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
R4 = models["r4"]

RESPONSE_CODES = {
    200: "okay", 201: "created", 204: "noContent", 304: "notModified", 400: "bad", 403: "forbidden",
    404: "notFound", 405: "methodNotAllowed", 409: "conflict", 410: "gone",
    412: "preconditionFailed", 422: "unprocessable",
}
METHODS = {
    "read": "GET", "vread": "GET", "search": "GET", "history": "GET", "capabilities": "GET",
    "create": "POST", "transaction": "POST", "batch": "POST",
    "update": "PUT", "updateCreate": "PUT", "delete": "DELETE",
}
_VAR = re.compile(r"\$\{([^}]+)\}")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


@dataclass
class ActionResult:
    section: str  # "setup", "test <id>", "teardown", "fixture"
    index: int  # 1-based position within the section
    kind: str  # "operation" or "assert"
    label: str
    status: str  # "pass" | "fail" | "skip" | "warning"
    message: str

    def __str__(self) -> str:
        return f"[{self.status.upper():7}] {self.section} #{self.index} {self.kind} {self.label}: {self.message}"


@dataclass
class TestScriptResult:
    __test__ = False  # not a pytest test class

    name: str
    actions: list[ActionResult] = field(default_factory=list)

    def with_status(self, status: str) -> list[ActionResult]:
        return [a for a in self.actions if a.status == status]

    @property
    def failures(self) -> list[ActionResult]:
        return self.with_status("fail")

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self) -> str:
        counts = ", ".join(f"{s} {len(self.with_status(s))}" for s in ("pass", "fail", "skip", "warning"))
        return "\n".join([f"TestScript {self.name}: {counts}", *map(str, self.actions)])


@dataclass
class Exchange:
    """One HTTP request and its response."""

    method: str
    url: str
    request_headers: httpx.Headers
    request_body: Any
    status: int
    headers: httpx.Headers
    body: Any  # parsed JSON, or None

    def describe(self) -> str:
        return f"{self.method} {self.url} -> {self.status}"


class Skip(Exception):
    """The action cannot be evaluated here; the message says why."""


class Fail(Exception):
    """The action failed; the message says why."""


# ---------------------------------------------------------------- pure helpers (unit tested)


def path_to_fhirpath(path: str) -> str | None:
    """A FHIRPath equivalent of a simple ``path``, or None when there is none."""
    path = path.strip()
    if "/" not in path:
        return path if re.fullmatch(rf"{_NAME}(\.{_NAME})*", path) else None
    steps = path.removeprefix("/").split("/")  # "//" (any depth) leaves an empty step: refused
    if steps[-1] == "@value":
        steps = steps[:-1]
    names = [re.fullmatch(rf"(?:fhir:)?({_NAME})", step) for step in steps]
    if not steps or not all(names):
        return None
    return ".".join(m.group(1) for m in names if m)


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def compare(received: str | None, operator: str | None, expected: str | None) -> bool:
    """TestScript ``assert.operator`` semantics on text values (``None`` = absent)."""
    operator = operator or "equals"
    if operator == "empty":
        return not received
    if operator == "notEmpty":
        return bool(received)
    if operator in ("in", "notIn"):
        found = received in [item.strip() for item in (expected or "").split(",")]
        return found if operator == "in" else not found
    if received is None:
        return operator in ("notEquals", "notContains")
    expected = expected or ""
    if operator == "equals":
        return received == expected
    if operator == "notEquals":
        return received != expected
    if operator in ("greaterThan", "lessThan"):
        left, right = _number(received), _number(expected)
        pair: tuple[Any, Any] = (left, right) if left is not None and right is not None else (received, expected)
        return pair[0] > pair[1] if operator == "greaterThan" else pair[0] < pair[1]
    if operator == "contains":
        return expected in received
    if operator == "notContains":
        return expected not in received
    raise Skip(f"operator {operator!r} is not supported")


def mime(value: str | None) -> str:
    """``xml``/``json`` or a media type -> the FHIR media type the runner sends."""
    if not value:
        return FHIR_JSON
    if value in ("xml", "json", "ttl"):
        return {"xml": FHIR_XML, "json": FHIR_JSON, "ttl": "application/fhir+turtle"}[value]
    return value


def contains_subset(minimum: Any, actual: Any) -> bool:
    """``minimumId``: every element of ``minimum`` is present in ``actual`` (lists: any order)."""
    if isinstance(minimum, dict):
        return isinstance(actual, dict) and all(contains_subset(v, actual.get(k)) for k, v in minimum.items())
    if isinstance(minimum, list):
        if not isinstance(actual, list):
            return False
        remaining = list(actual)
        for item in minimum:
            match = next((i for i, cand in enumerate(remaining) if contains_subset(item, cand)), None)
            if match is None:
                return False
            remaining.pop(match)
        return True
    return minimum == actual


def _id_from_location(location: str) -> tuple[str | None, str | None]:
    """``.../Type/id/_history/vid`` -> (id, vid)."""
    match = re.search(r"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?/?$", location)
    return (match.group(2), match.group(3)) if match else (None, None)


# ---------------------------------------------------------------- the runner


class Runner:
    def __init__(self, script: dict, base_url: str, fixture_dir: Path | None,
                 client: httpx.Client, variables: dict[str, str] | None = None,
                 examples_dir: Path | None = None) -> None:
        self.script = script
        self.base = base_url.rstrip("/")
        self.client = client
        self.overrides = dict(variables or {})
        self.result = TestScriptResult(script.get("name") or script.get("id") or "?")
        self.variables = {v["name"]: v for v in script.get("variable", [])}
        self.fixtures, self.missing = load_fixtures(script, fixture_dir, examples_dir)
        self.responses: dict[str, Exchange] = {}
        self.unavailable: dict[str, str] = {}  # responseId of a skipped operation -> why
        self.server_ids: dict[str, tuple[str, str | None]] = {}  # fixture/response id -> (id, vid)
        self.last: Exchange | None = None
        self.last_skip: str | None = None  # why the last operation was skipped

    # -- fixtures and variables

    def _source(self, source_id: str | None) -> Any:
        """The resource behind a fixture id or responseId (the last response without an id)."""
        if source_id is None:
            if self.last is None:
                raise Skip(self.last_skip or "no response to evaluate")
            return self.last.body
        if source_id in self.responses:
            return self.responses[source_id].body
        if source_id in self.fixtures:
            return self.fixtures[source_id]
        raise Skip(self.missing.get(source_id) or self.unavailable.get(source_id)
                   or f"sourceId {source_id!r} has no resource (no response stored)")

    def variable(self, name: str) -> str:
        if name in self.overrides:
            return self.overrides[name]
        var = self.variables.get(name)
        if var is None:
            raise Skip(f"variable ${{{name}}} is not defined")
        value: str | None = None
        try:
            if var.get("headerField"):
                value = self._exchange(var.get("sourceId")).headers.get(var["headerField"])
            elif var.get("expression") or var.get("path"):
                expression = var.get("expression") or path_to_fhirpath(var["path"])
                if expression is None:
                    raise Skip(f"variable {name}: path {var['path']!r} has no FHIRPath equivalent")
                values = evaluate(self._source(var.get("sourceId")), expression)
                value = as_text(values[0]) if values else None
        except Skip as exc:
            if "defaultValue" not in var:
                raise Skip(f"variable ${{{name}}}: {exc}") from exc
        if value is None:
            value = var.get("defaultValue")
        if value is None:
            hint = f" (needs input: {var['hint']})" if var.get("hint") else ""
            raise Skip(f"variable ${{{name}}} has no value{hint}")
        return value

    def substitute(self, text: str) -> str:
        return _VAR.sub(lambda m: self.variable(m.group(1)), text)

    # -- operations

    def _target(self, target_id: str) -> tuple[str, str, str | None]:
        resource = self._source(target_id)
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise Skip(f"targetId {target_id!r} has no resource")
        rid, vid = self.server_ids.get(target_id, (resource.get("id"), None))
        vid = vid or (resource.get("meta") or {}).get("versionId")
        if not rid:
            raise Fail(f"targetId {target_id!r} has no id")
        return resource["resourceType"], rid, vid

    def _url(self, op: dict, code: str) -> str:
        rtype = op.get("resource", "")
        if op.get("url"):
            url = self.substitute(op["url"])
            return url if url.startswith(("http://", "https://")) else f"{self.base}/{url.lstrip('/')}"
        if op.get("params"):
            params = self.substitute(op["params"])
            return f"{self.base}/{rtype}{params}" if rtype else f"{self.base}{params}"
        if op.get("targetId"):
            rtype, rid, vid = self._target(op["targetId"])
            url = f"{self.base}/{rtype}/{rid}"
            if code == "history":
                return f"{url}/_history"
            if code == "vread":
                if not vid:
                    raise Fail(f"vread: no version known for {op['targetId']!r}")
                return f"{url}/_history/{vid}"
            return url
        if code in ("transaction", "batch"):
            return self.base
        if code == "capabilities":
            return f"{self.base}/metadata"
        if op.get("sourceId") and code in ("create", "update", "updateCreate"):
            resource = self._source(op["sourceId"])
            rtype = rtype or resource.get("resourceType", "")
            return f"{self.base}/{rtype}/{resource['id']}" if code != "create" else f"{self.base}/{rtype}"
        if code == "history":
            return f"{self.base}/{rtype}/_history" if rtype else f"{self.base}/_history"
        if code == "search" and rtype:
            return f"{self.base}/{rtype}"
        raise Fail(f"cannot build a URL for operation {code!r} (no url, params, targetId or sourceId)")

    def _request(self, op: dict) -> tuple[str, str, dict[str, str], dict | None]:
        code = (op.get("type") or {}).get("code") or ""
        method = (op.get("method") or METHODS.get(code, "")).upper()
        if not method:
            raise Skip(f"operation type {code!r} is not supported")
        url = self._url(op, code)
        headers = {"Accept": mime(op.get("accept"))}
        body = None
        if method in ("POST", "PUT"):
            if not op.get("sourceId"):
                raise Fail(f"{code}: no sourceId for the request body")
            body = self._source(op["sourceId"])
            if not isinstance(body, dict):
                raise Skip(f"{code}: sourceId {op['sourceId']!r} has no resource")
            if method == "PUT" and code in ("update", "updateCreate"):
                url_id = httpx.URL(url).path.rstrip("/").rsplit("/", 1)[-1]
                body = {**body, "id": url_id}
            headers["Content-Type"] = mime(op.get("contentType"))
        for header in op.get("requestHeader", []):
            headers[header["field"]] = self.substitute(header["value"])
        return method, url, headers, body

    def operation(self, op: dict) -> str:
        try:
            method, url, headers, body = self._request(op)  # variables may read the previous response
        finally:
            self.last, self.last_skip = None, None
        try:
            response = self.client.request(method, url, headers=headers,
                                           content=json.dumps(body).encode() if body is not None else None)
        except httpx.HTTPError as exc:
            raise Fail(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        wants_xml = "xml" in headers["Accept"] or "xml" in headers.get("Content-Type", "")
        if wants_xml and response.status_code in (406, 415):
            self.last_skip = f"XML not supported ({method} {url} asked for XML; server answered {response.status_code})"
            raise Skip(self.last_skip)
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        exchange = Exchange(method, url, response.request.headers, body, response.status_code, response.headers, parsed)
        self.last = exchange
        self._remember(op, exchange)
        return exchange.describe()

    def _remember(self, op: dict, ex: Exchange) -> None:
        if op.get("responseId"):
            self.responses[op["responseId"]] = ex
        if ex.method == "DELETE" and op.get("targetId") and ex.status in (200, 202, 204):
            self.server_ids.pop(op["targetId"], None)
            return
        if not 200 <= ex.status < 300:
            return
        body = ex.body if isinstance(ex.body, dict) and ex.body.get("resourceType") != "OperationOutcome" else {}
        rid, vid = body.get("id"), (body.get("meta") or {}).get("versionId")
        if not rid and ex.headers.get("Location"):
            rid, vid = _id_from_location(ex.headers["Location"])
        if rid and body.get("resourceType") != "Bundle":
            for key in (op.get("sourceId"), op.get("responseId")):
                if key:
                    self.server_ids[key] = (rid, vid)

    # -- asserts

    def _exchange(self, source_id: str | None) -> Exchange:
        if source_id is None:
            if self.last is None:
                raise Skip(self.last_skip or "no response to evaluate")
            return self.last
        if source_id not in self.responses:
            raise Skip(self.unavailable.get(source_id) or f"sourceId {source_id!r} is not a stored response")
        return self.responses[source_id]

    def _body(self, a: dict) -> Any:
        """The payload an assert inspects: the response's (or fixture's), or the request's."""
        if a.get("direction") == "request":
            return self._exchange(a.get("sourceId")).request_body
        return self._source(a.get("sourceId"))

    def _values(self, a: dict, key: str, source: Any) -> tuple[list[Any], str]:
        """Evaluate ``a[key]`` (an expression or a path) -> (values, FHIRPath used)."""
        text = a[key]
        expression = text if "xpression" in key else path_to_fhirpath(text)
        if expression is None:
            raise Skip(f"{key} {text!r} is not a simple path (XPath/JSONPath are not supported)")
        if not isinstance(source, (dict, list)):
            raise Fail(f"no FHIR resource in the response body to evaluate {expression!r} on")
        return evaluate(source, expression), expression

    def _received(self, a: dict, op: str | None, source: Any) -> tuple[str | None, list[Any], str]:
        """The assert's own value from ``expression``/``path`` (falling back to the compareTo one)."""
        key = next((k for k in ("expression", "path") if a.get(k)), None)
        if key is None:
            key = "compareToSourceExpression" if a.get("compareToSourceExpression") else "compareToSourcePath"
        values, expression = self._values(a, key, source)
        if len(values) > 1 and "xpression" in key and op not in ("empty", "notEmpty"):
            raise Fail(f"expression {expression!r} returned {len(values)} values {values!r}; expected one")
        return (as_text(values[0]) if values else None), values, expression

    def _expected(self, a: dict) -> str | None:
        if "value" in a:
            return self.substitute(a["value"])
        if a.get("compareToSourceId"):
            source = self._source(a["compareToSourceId"])
            key = "compareToSourceExpression" if a.get("compareToSourceExpression") else "compareToSourcePath"
            if not a.get(key):
                raise Fail("compareToSourceId without compareToSourceExpression or compareToSourcePath")
            values, _ = self._values(a, key, source)
            return as_text(values[0]) if values else None
        return None

    def assertion(self, a: dict) -> str:
        op = a.get("operator")
        request = a.get("direction") == "request"
        if a.get("validateProfileId"):
            raise Skip(f"validateProfileId {a['validateProfileId']!r}: profile validation is not supported")
        if "requestMethod" in a or "requestURL" in a:
            ex = self._exchange(a.get("sourceId"))
            got = ex.method.lower() if "requestMethod" in a else ex.url
            return self._check("request " + ("method" if "requestMethod" in a else "URL"), got, op,
                               a.get("requestMethod") or a.get("requestURL"))
        if "response" in a:
            ex = self._exchange(a.get("sourceId"))
            got = RESPONSE_CODES.get(ex.status, str(ex.status))
            return self._check(f"response ({ex.describe()})", got, op, a["response"])
        if "responseCode" in a:
            ex = self._exchange(a.get("sourceId"))
            return self._check(f"response code ({ex.describe()})", str(ex.status), op, a["responseCode"])
        if "contentType" in a:
            ex = self._exchange(a.get("sourceId"))
            headers = ex.request_headers if request else ex.headers
            got = (headers.get("Content-Type") or "").split(";")[0].strip() or None
            return self._check("Content-Type", got, op, mime(a["contentType"]))
        if "headerField" in a:
            ex = self._exchange(a.get("sourceId"))
            headers = ex.request_headers if request else ex.headers
            return self._check(f"header {a['headerField']}", headers.get(a["headerField"]), op, self._expected(a))
        if "resource" in a:
            body = self._body(a)
            got = body.get("resourceType") if isinstance(body, dict) else None
            return self._check("resource type", got, op, a["resource"])
        if a.get("minimumId"):
            minimum, actual = self._source(a["minimumId"]), self._source(a.get("sourceId"))
            if contains_subset(minimum, actual):
                return f"the response contains every element of fixture {a['minimumId']!r}"
            raise Fail(f"the response lacks elements of fixture {a['minimumId']!r}: {json.dumps(minimum)}")
        if a.get("navigationLinks"):
            body = self._source(a.get("sourceId"))
            links = {link.get("relation"): link.get("url") for link in (body or {}).get("link", [])}
            if links.get("self"):
                return f"Bundle links {sorted(links)}"
            raise Fail(f"Bundle has no self link (links: {links})")
        if any(a.get(k) for k in ("expression", "path", "compareToSourceExpression", "compareToSourcePath")):
            return self._content_assert(a, op)
        raise Skip(f"unsupported assert (keys {sorted(a)})")

    def _content_assert(self, a: dict, op: str | None) -> str:
        got, values, expression = self._received(a, op, self._body(a))
        expected = self._expected(a)
        if op == "eval" or (expected is None and op in (None, "equals") and not a.get("compareToSourceId")):
            if values == [True] or (op != "eval" and values and not isinstance(values[0], bool)):
                return f"{expression} -> {values!r}"
            raise Fail(f"{expression} -> {values!r}; expected true")
        return self._check(expression, got, op, expected)

    @staticmethod
    def _check(what: str, received: str | None, operator: str | None, expected: str | None) -> str:
        text = f"{what}: {operator or 'equals'}{'' if expected is None else f' {expected!r}'}, received {received!r}"
        if compare(received, operator, expected):
            return text
        raise Fail(text)

    # -- sections

    def run_actions(self, section: str, actions: list[dict], skip_reason: str | None = None) -> bool:
        """Run actions; returns False when one failed (so later sections can be skipped)."""
        ok = True
        for index, action in enumerate(actions, 1):
            kind = "operation" if "operation" in action else "assert"
            body = action.get(kind, {})
            label = body.get("label") or body.get("description", "")[:60]
            if skip_reason:
                self._record(section, index, kind, label, "skip", skip_reason)
                continue
            try:
                message = self.operation(body) if kind == "operation" else self.assertion(body)
                self._record(section, index, kind, label, "pass", message)
            except Skip as exc:
                if kind == "operation":
                    self.last_skip = self.last_skip or f"operation #{index} skipped: {exc}"
                    if body.get("responseId"):
                        self.unavailable[body["responseId"]] = self.last_skip
                self._record(section, index, kind, label, "skip", str(exc))
            except Fail as exc:
                if kind == "assert" and body.get("warningOnly"):
                    self._record(section, index, kind, label, "warning", str(exc))
                    continue
                self._record(section, index, kind, label, "fail", str(exc))
                ok = False
                if section != "teardown":
                    skip_reason = f"skipped after the failure of {section} action #{index}"
        return ok

    def _record(self, section: str, index: int, kind: str, label: str, status: str, message: str) -> None:
        self.result.actions.append(ActionResult(section, index, kind, label, status, message))

    def _auto(self, code: str, fixture_id: str) -> bool:
        """Autocreate (POST) or autodelete (DELETE) a fixture; any non-2xx answer is a failure."""
        op = {"type": {"code": code}, "sourceId" if code == "create" else "targetId": fixture_id,
              "label": f"auto{code} {fixture_id}"}
        codes = {"create": [201, 200], "delete": [200, 202, 204]}[code]
        check = {"responseCode": ",".join(map(str, codes)), "operator": "in", "label": f"auto{code} succeeded"}
        return self.run_actions("fixtures", [{"operation": op}, {"assert": check}])

    def run(self) -> TestScriptResult:
        fixtures = self.script.get("fixture", [])
        setup_ok = all([self._auto("create", f["id"]) for f in fixtures if f.get("autocreate")])
        setup = (self.script.get("setup") or {}).get("action", [])
        setup_ok = self.run_actions("setup", setup, None if setup_ok else "skipped: autocreate failed") and setup_ok
        for number, test in enumerate(self.script.get("test", []), 1):
            reason = None if setup_ok else "skipped because the setup failed"
            self.run_actions(f"test {test.get('id') or number}", test.get("action", []), reason)
        self.run_actions("teardown", (self.script.get("teardown") or {}).get("action", []))
        for fixture in fixtures:
            if fixture.get("autodelete") and fixture["id"] in self.server_ids:
                self._auto("delete", fixture["id"])
        return self.result


def evaluate(resource: Any, expression: str) -> list[Any]:
    try:
        return list(fhirpathpy.evaluate(resource, expression, {}, R4))
    except Exception as exc:  # fhirpathpy raises assorted errors for bad input
        raise Fail(f"FHIRPath {expression!r} failed: {type(exc).__name__}: {exc}") from exc


_LITERAL_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")


def fixture_candidates(ref: str, fixture_dir: Path | None, examples_dir: Path | None) -> list[Path]:
    """The files a fixture's ``resource.reference`` may name, in the order they are tried.

    A relative path (``Patient/p.json``) is read under ``fixture_dir``. A literal reference
    ``Type/id`` may also name an example resource stored the way the FHIR specification's npm
    packages store them (``Type-id.json``): first beside the script (``fixture_dir``), then
    under ``examples_dir``.
    """
    if not ref or ref.startswith(("#", "http:", "https:", "urn:")):
        return []
    candidates = [fixture_dir / ref] if fixture_dir else []
    match = _LITERAL_REFERENCE.fullmatch(ref)
    if match and not ref.endswith((".json", ".xml")):  # Patient/p.json is a file name, not an id
        name = f"{match.group(1)}-{match.group(2)}.json"
        candidates += [folder / name for folder in (fixture_dir, examples_dir) if folder]
    return candidates


def _read_fixture(path: Path, ref: str) -> dict:
    resource = json.loads(path.read_text(encoding="utf-8"))
    match = _LITERAL_REFERENCE.fullmatch(ref)
    if match and path.name == f"{match.group(1)}-{match.group(2)}.json":
        found = (resource.get("resourceType"), resource.get("id"))
        if found != match.groups():
            raise ValueError(f"{path} holds {found[0]}/{found[1]}, not {ref}")
    return resource


def load_fixtures(script: dict, fixture_dir: Path | None,
                  examples_dir: Path | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """Fixture id -> resource (contained, or a JSON file, see :func:`fixture_candidates`); and id -> why missing."""
    fixtures: dict[str, dict] = {}
    missing: dict[str, str] = {}
    contained = {r.get("id"): r for r in script.get("contained", [])}
    for fixture in script.get("fixture", []):
        ref = (fixture.get("resource") or {}).get("reference", "")
        if ref.startswith("#") and ref[1:] in contained:
            fixtures[fixture["id"]] = contained[ref[1:]]
            continue
        candidates = fixture_candidates(ref, fixture_dir, examples_dir)
        path = next((c for c in candidates if c.is_file()), None)
        if path is not None:
            try:
                fixtures[fixture["id"]] = _read_fixture(path, ref)
            except ValueError as exc:  # not JSON, or another resource than the reference names
                missing[fixture["id"]] = f"fixture {fixture['id']!r} references {ref!r}, but {exc}"
            continue
        if candidates:
            where = f"(tried {', '.join(map(str, candidates))})"
        elif ref.startswith("#"):
            where = "(no such contained resource)"
        else:
            where = "(no fixture directory)" if not (fixture_dir or examples_dir) else "(not a relative reference)"
        missing[fixture["id"]] = f"fixture {fixture['id']!r} references {ref!r}, which is not a local file {where}"
    return fixtures, missing


def static_problems(script: dict, fixture_dir: Path | None, examples_dir: Path | None = None) -> list[str]:
    """Reasons the script cannot run against a single server from local files."""
    problems = list(load_fixtures(script, fixture_dir, examples_dir)[1].values())
    if script.get("origin") or script.get("destination"):
        problems.append("it declares origin/destination systems (multi-system test of a client under test)")
    return problems


def run_testscript(script: dict, base_url: str, fixture_dir: Path | None, *,
                   examples_dir: Path | None = None, variables: dict[str, str] | None = None,
                   transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                   headers: dict[str, str] | None = None) -> TestScriptResult:
    """Run ``script`` against the FHIR server at ``base_url``.

    Fixtures are read from ``fixture_dir``; a ``Type/id`` reference not found there is read from
    ``examples_dir/Type-id.json`` (e.g. the R4 examples package the spec's TestScripts come with).
    """
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, headers=headers) as client:
        return Runner(script, base_url, fixture_dir, client, variables, examples_dir).run()
