"""`baylink demo` (run by `make run`): a demo institution, client and patient, so that a new
user can call the API and sign in to the patient's page at once; running it twice is harmless."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from baylink import cli
from baylink.settings import get_settings
from tests.consent.test_page import HKID, sign_in


def test_demo_patient_can_sign_in_to_the_page(app, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BAYLINK_DATABASE_URL", database_url)
    monkeypatch.setenv("BAYLINK_ENVIRONMENT", "test")
    monkeypatch.setattr(cli, "DEMO_KEY", tmp_path / "demo-client-key.pem")
    monkeypatch.setattr(cli, "_engine_cache", {})
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        for _ in range(2):
            result = runner.invoke(cli.app, ["demo"])
            assert result.exit_code == 0, result.output
        assert cli.DEMO_HKID in result.output and "/consent" in result.output
    finally:
        get_settings.cache_clear()
    with TestClient(app, base_url="https://testserver") as browser:
        home = sign_in(app, browser, HKID, cli.DEMO_HKID, "+852 9000 0000")
    assert "Tai Man CHAN" in home and "Who holds your records" in home
