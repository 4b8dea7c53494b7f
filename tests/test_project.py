"""The project's own wiring: the package graph, docker-compose, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]


def test_package_graph_contracts_hold() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_docker_compose_runs_what_production_needs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "beat", "postgres", "redis"} <= set(services)
    api_env = services["api"]["environment"]
    assert api_env["BAYLINK_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api_env["BAYLINK_BROKER_URL"].startswith("redis://redis:")
    assert api_env["BAYLINK_CELERY_EAGER"] == "false"
    for key in ("BAYLINK_TOKEN_SIGNING_KEY", "BAYLINK_IDENTIFIER_KEYS", "BAYLINK_IDENTIFIER_KEY_ID", "BAYLINK_BLIND_INDEX_KEY"):
        assert api_env[key].startswith("${" + key + ":?"), key  # required from the environment, never a default
    assert "celery" in services["worker"]["command"] and "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAYLINK_DATABASE_URL": database_url}
    return subprocess.run([str(Path(sys.executable).parent / "baylink"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_migrate_seed_load(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    assert _cli("migrate", database_url=url).returncode == 0
    assert _cli("seed", database_url=url).returncode == 0
    good = tmp_path / "patient.json"
    good.write_text(json.dumps({"resourceType": "Patient", "id": "cli-1", "name": [{"family": "Lo"}]}))
    ndjson = tmp_path / "many.ndjson"
    ndjson.write_text("\n".join([
        json.dumps({"resourceType": "Patient", "id": "cli-2"}),
        json.dumps({"resourceType": "Patient", "gender": "not-a-gender"}),
        json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    ]))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "cli-3"}, "request": {"method": "PUT", "url": "Patient/cli-3"}}
    ]}))
    result = _cli("load", str(good), str(ndjson), str(bundle), database_url=url)
    assert result.returncode == 1, result.stderr  # one line failed, and says so
    assert "many.ndjson:2" in result.stderr and "Patient.gender" in result.stderr
    assert "4 resources stored" in result.stderr
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = sorted(conn.execute(text("SELECT res_id FROM resource WHERE res_type = 'Patient'")).scalars())
        assert ids == ["cli-1", "cli-2", "cli-3"]
        assert conn.execute(text("SELECT count(*) FROM resource WHERE res_id = 'baylink'")).scalar() == 1
    engine.dispose()
    assert _cli("load", str(tmp_path / "missing.json"), database_url=url).returncode == 2


def test_production_settings_refuse_missing_keys() -> None:
    import pytest
    from pydantic import ValidationError

    from baylink.settings import Settings

    base = {"environment": "production", "database_url": "postgresql+psycopg://u@h/db", "celery_eager": False,
            "token_signing_key": None, "identifier_keys": None, "blind_index_key": None, "identifier_key_id": ""}
    with pytest.raises(ValidationError, match="BAYLINK_TOKEN_SIGNING_KEY"):
        Settings(**base)
    with pytest.raises(ValidationError, match="BAYLINK_IDENTIFIER_KEYS"):
        Settings(**{**base, "token_signing_key": "pem"})
    with pytest.raises(ValidationError, match="BAYLINK_RELEASE_GATE"):
        Settings(**{**base, "release_gate": "allow-all"})
