"""The institutions registry: loaded from data, checked whole, idempotent, listed for operators."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from baylink import cli
from baylink.settings import get_settings
from fhir_exchange.errors import InvalidRequest
from fhir_exchange.institutions.registry import (
    DEFAULT_FILE,
    JURISDICTIONS,
    Designation,
    institution_from_resource,
    read_registry,
)


def _registry(tmp_path: Path, institutions: list[dict]) -> Path:
    document = json.loads(DEFAULT_FILE.read_text())
    document["institutions"] = institutions
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document, ensure_ascii=False))
    return path


@pytest.fixture
def cli_env(app, settings, monkeypatch):  # type: ignore[no-untyped-def]
    """The CLI pointed at the test database (the ``app`` fixture has emptied it)."""
    monkeypatch.setenv("BAYLINK_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_shipped_registry_is_valid_fhir_and_covers_every_jurisdiction_it_names() -> None:
    resources = read_registry()
    organizations = [r for r in resources if r["resourceType"] == "Organization"]
    jurisdictions = {institution_from_resource(r).jurisdiction for r in organizations}
    assert {"HK", "MO", "CN-Shenzhen", "CN-Guangzhou"} <= jurisdictions <= set(JURISDICTIONS)
    hku = institution_from_resource(next(r for r in organizations if r["id"] == "hku-szh"))
    voucher = next(d for d in hku.designations if d.programme == "ehcv")
    assert voucher.start == "2015-10-06"  # Health Bureau LCQ9, 2016-05-04 (institutions.md)
    assert set(voucher.excludes) == {"inpatient", "prepaid", "day-surgery"}
    assert hku.names["zh-Hant"] == "香港大學深圳醫院"  # derived from zh-Hans by OpenCC s2hk
    locations = [r for r in resources if r["resourceType"] == "Location"]
    assert {"reference": "Organization/hku-szh"} in [loc["managingOrganization"] for loc in locations]


def test_partial_designation_dates_cover_their_whole_year_or_month() -> None:
    batch = Designation("mmdc", "2025-12", None)
    assert not batch.active_on(date(2025, 11, 30))
    assert batch.active_on(date(2025, 12, 1))
    ended = Designation("ehcv", "2021", "2023-02")
    assert ended.active_on(date(2021, 1, 1))
    assert ended.active_on(date(2023, 2, 28))
    assert not ended.active_on(date(2023, 3, 1))


def test_a_bad_registry_names_every_fault_and_stores_nothing(tmp_path: Path, cli_env: CliRunner, client) -> None:  # type: ignore[no-untyped-def]
    path = _registry(tmp_path, [
        {"id": "good", "jurisdiction": "HK", "name": {"en": "Good Hospital"}},
        {"id": "good", "jurisdiction": "HK", "name": {"en": "Twin"}},
        {"id": "nowhere", "jurisdiction": "CN-Beijing", "name": {"en": "Far"}},
        {"id": "nameless", "jurisdiction": "MO", "name": {"zh-Hant": "無名"}},
        {"id": "dated", "jurisdiction": "CN-Zhuhai", "name": {"en": "Dated"},
         "designations": [{"programme": "ehcv", "from": "2024-13-01", "source": "ref-institutions"},
                          {"programme": "ehcv", "from": "2024-05", "until": "2024-01", "source": "ref-institutions"},
                          {"programme": "ehcv", "from": "2024", "source": "hearsay"},
                          {"programme": "lottery", "from": "2024", "source": "ref-institutions"}]},
    ])
    with pytest.raises(InvalidRequest) as caught:
        read_registry(path)
    messages = "\n".join(issue.diagnostics for issue in caught.value.issues)
    assert "institution 'good': the id appears more than once" in messages
    assert "jurisdiction 'CN-Beijing' is not one of" in messages
    assert "institution 'nameless': needs an English name" in messages
    assert "month must be in 1..12" in messages
    assert "ends (2024-01) before it starts (2024-05)" in messages
    assert "got 'hearsay'" in messages
    assert "programme 'lottery'" in messages

    result = cli_env.invoke(cli.app, ["institutions", "load", str(path)])
    assert result.exit_code == 1
    assert "CN-Beijing" in result.output
    assert client.get("/fhir/Organization").json().get("total") == 0


def test_load_is_idempotent_and_list_json_has_the_operator_shape(cli_env: CliRunner, client) -> None:  # type: ignore[no-untyped-def]
    first = cli_env.invoke(cli.app, ["institutions", "load"])
    assert first.exit_code == 0, first.output
    expected = len(read_registry())
    assert f"{expected} written, 0 unchanged" in first.output
    second = cli_env.invoke(cli.app, ["institutions", "load"])
    assert f"0 written, {expected} unchanged" in second.output
    history = client.get("/fhir/Organization/hku-szh/_history").json()
    assert history["total"] == 1  # the second load wrote no new version

    listed = cli_env.invoke(cli.app, ["institutions", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    institutions = orjson.loads(listed.stdout)
    by_id = {i["id"]: i for i in institutions}
    assert by_id["ha-queen-mary"]["jurisdiction"] == "HK"
    assert by_id["mo-kiang-wu"]["jurisdiction"] == "MO"
    assert by_id["zhongshan-chenxinghai"]["jurisdiction"] == "CN-Zhongshan"
    assert by_id["zhongshan-chenxinghai"]["name"] == "Zhongshan Chenxinghai Hospital"
    assert {d["programme"] for d in by_id["zhongshan-chenxinghai"]["designations"]} == {"mmdc", "ehcv"}
    assert by_id["hku-szh"]["locations"] == ["hku-szh-huawei-lzy"]
    assert all({"id", "name", "jurisdiction"} <= set(i) for i in institutions)


def test_registered_organizations_are_searchable_by_name_in_either_script(cli_env: CliRunner, client) -> None:  # type: ignore[no-untyped-def]
    assert cli_env.invoke(cli.app, ["institutions", "load"]).exit_code == 0
    found = client.get("/fhir/Organization", params={"name": "中山市陈星海"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["zhongshan-chenxinghai"]
    found = client.get("/fhir/Organization", params={"name:contains": "陳星海"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["zhongshan-chenxinghai"]
