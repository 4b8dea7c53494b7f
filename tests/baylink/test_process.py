"""The server process's garbage collector policy (baylink/process.py) and the factory `baylink
serve` runs: start-up's objects frozen, the first generation's threshold raised, once, and
only where a server process is started (never by ``create_app``)."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from baylink import cli, process
from baylink.app import create_app
from baylink.migrate import upgrade
from baylink.settings import Settings, get_settings


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test process's collector as it was, afterwards: thresholds, nothing frozen, not tuned."""
    thresholds = gc.get_threshold()
    monkeypatch.setattr(process, "_tuned", False)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _seen_by_the_collector(objects: list[list[int]]) -> int:
    ids = {id(o) for o in objects}
    return sum(id(o) in ids for o in gc.get_objects())


def test_tuning_freezes_start_up_and_raises_the_first_threshold_once(collector: None) -> None:
    _, older, oldest = gc.get_threshold()
    made_at_start_up = [[n] for n in range(1000)]  # containers the collector tracks, living as the process does
    assert all(gc.is_tracked(o) for o in made_at_start_up)
    assert _seen_by_the_collector(made_at_start_up) == len(made_at_start_up)
    assert process.tune_collector(7000) is True
    assert gc.get_threshold() == (7000, older, oldest)
    # frozen: in no generation the collector scans
    assert gc.get_freeze_count() >= len(made_at_start_up)
    assert _seen_by_the_collector(made_at_start_up) == 0
    # a second call (another app in the same process) changes nothing: what is made since stays in sight
    made_since = [[n] for n in range(1000)]
    assert process.tune_collector(50_000) is False
    assert gc.get_threshold() == (7000, older, oldest)
    assert _seen_by_the_collector(made_since) == len(made_since)


class _Node:
    other: object = None


def test_garbage_is_collected_before_freezing(collector: None) -> None:
    gc.disable()  # no automatic collection between here and the tuning
    try:
        node = _Node()
        node.other = node  # a cycle: only the collector frees it
        gone = weakref.ref(node)
        del node
        assert gone() is not None
        process.tune_collector(7000)
        assert gone() is None  # collected, not frozen for the life of the process
    finally:
        gc.enable()


def test_zero_keeps_the_default_policy(collector: None) -> None:
    thresholds = gc.get_threshold()
    assert process.tune_collector(0) is False
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0


def test_the_threshold_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().gc_threshold == 7000
    monkeypatch.setenv("BAYLINK_GC_THRESHOLD", "0")
    assert Settings().gc_threshold == 0
    monkeypatch.setenv("BAYLINK_GC_THRESHOLD", "-1")
    with pytest.raises(ValidationError, match="gc_threshold"):
        Settings()


def test_create_app_leaves_the_collector_alone(settings: Settings, collector: None) -> None:
    thresholds = gc.get_threshold()
    create_app(settings)
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0


def test_served_app_is_the_app_with_the_collector_set(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                                      collector: None) -> None:
    monkeypatch.setenv("BAYLINK_DATABASE_URL", database_url)
    monkeypatch.setenv("BAYLINK_ENVIRONMENT", "test")
    monkeypatch.setenv("BAYLINK_GC_THRESHOLD", "9000")
    get_settings.cache_clear()
    try:
        app = process.served_app()
    finally:
        get_settings.cache_clear()
    assert app.title == "BayLink"
    assert gc.get_threshold()[0] == 9000 and gc.get_freeze_count() > 0


def test_serve_runs_the_served_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    result = CliRunner().invoke(cli.app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    (args, kwargs), = calls
    assert args == ("baylink.process:served_app",) and kwargs["factory"] is True and kwargs["port"] == 8123


def test_baylink_serve_serves(tmp_path: Path) -> None:
    """The command `make run` ends with, as a process of its own: it answers on its port."""
    url = f"sqlite:///{tmp_path}/serve.db"
    upgrade(url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    baylink = Path(sys.executable).with_name("baylink")
    env = {**os.environ, "BAYLINK_DATABASE_URL": url, "BAYLINK_ENVIRONMENT": "test"}
    server = subprocess.Popen([str(baylink), "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "baylink serve did not answer within 60 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["resourceType"] == "CapabilityStatement"
    finally:
        server.terminate()
        server.wait(timeout=20)
