"""What the benchmarks share: a database of their own per backend, a real server, percentiles."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from baylink.migrate import upgrade  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bearer(signing_key: bytes, institution: str) -> dict[str, str]:
    """The headers of a client of ``institution`` holding a token with every scope, signed
    with the server's key."""
    from fhir_exchange.auth.tokens import TokenSigner

    token = TokenSigner(signing_key).issue(f"{institution}-client", institution, "system/*.cruds",
                                           lifetime=timedelta(hours=6)).token
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}


@contextmanager
def server(database_url: str, *, gate: str = "consent", institution: str = "baylink-bench",
           signing_key: bytes | None = None, app: str = "baylink.process:served_app",
           prefix: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    """A real server (uvicorn, its own process) on a free port: its FHIR base URL, and the
    headers of a client holding a token with every scope. The server signs tokens with a key
    made for this run, so the benchmark issues its token itself (as the tests do) instead of
    going through a registered client and /auth/token. It serves what ``baylink serve`` does
    (``served_app``: the app, and the process's collector set). ``app`` (a factory) and ``prefix``
    (where in it a BayLink is mounted) serve another composition (bench/gates_app.py)."""
    from fhir_exchange.auth.tokens import generate_key_pem

    signing_key = signing_key or generate_key_pem()
    port = free_port()
    env = {**os.environ, "BAYLINK_DATABASE_URL": database_url, "BAYLINK_CELERY_EAGER": "true",
           "BAYLINK_TOKEN_SIGNING_KEY": signing_key.decode(), "BAYLINK_RELEASE_GATE": gate,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}{prefix}/fhir"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, bearer(signing_key, institution)
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    """A migrated database of the benchmark's own: a temporary SQLite file, or a PostgreSQL
    database created (and dropped after) at ``BAYLINK_BENCH_POSTGRES_URL``; None when
    PostgreSQL is not reachable."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade(url)
            yield url
        return
    admin_url = os.environ.get("BAYLINK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"baylink_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"(PostgreSQL not reachable at {admin_url}: {exc.__class__.__name__}; skipped)", file=sys.stderr)
        yield None
        return
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
