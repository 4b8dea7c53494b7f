"""BayLink benchmarks (``make bench``): not a test, a measurement. Prints markdown tables.

For each backend (SQLite; PostgreSQL when reachable):
- load: resources/s POSTing transaction bundles of 100 resources (50 bundles) to a real server;
- fill the store to 100k resources (in-process, large transactions; not timed as HTTP);
- latency p50/p95 of read and of ``Observation?subject=…&code=…`` over HTTP.
Beside them, measured in the same run, the in-process floor: fhir.resources parse + serialise
of the same resources (what no server can go below per resource).

Usage: ``python bench/run.py [--resources 100000] [--bundles 50] [--requests 300] [--backends sqlite,postgresql]``
PostgreSQL: ``BAYLINK_BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
a database of its own is created and dropped there.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baylink.migrate import upgrade  # noqa: E402
from fhir_exchange.ports import AllowAllGate, RequestContext  # noqa: E402
from fhir_exchange.service import FhirService  # noqa: E402
from fhir_exchange.store.db import make_engine, make_sessionmaker  # noqa: E402
from fhir_exchange.store.repository import FhirRepository  # noqa: E402

LOINC = [("718-7", "Hemoglobin"), ("4548-4", "HbA1c"), ("2345-7", "Glucose"), ("2160-0", "Creatinine"),
         ("2093-3", "Cholesterol"), ("2571-8", "Triglyceride"), ("1742-6", "ALT"), ("1920-8", "AST"),
         ("2951-2", "Sodium"), ("2823-3", "Potassium"), ("6690-2", "WBC"), ("777-3", "Platelets"),
         ("789-8", "RBC"), ("4544-3", "Hematocrit"), ("3016-3", "TSH"), ("1975-2", "Bilirubin"),
         ("2885-2", "Protein"), ("1751-7", "Albumin"), ("5902-2", "PT"), ("6301-6", "INR")]
PATIENTS = 1000


def patient(i: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": f"bp{i}", "gender": random.choice(["male", "female"]),
            "birthDate": f"19{random.randint(30, 99)}-0{random.randint(1, 9)}-1{random.randint(0, 9)}",
            "identifier": [{"system": "urn:baylink:bench", "value": str(i)}],
            "name": [{"family": random.choice(["Chan", "Wong", "Lee", "Cheung", "Lau"]), "given": ["Bench"]}]}


def observation(subject: int) -> dict[str, Any]:
    code, display = random.choice(LOINC)
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {"reference": f"Patient/bp{subject}"},
            "effectiveDateTime": f"2025-{random.randint(1, 12):02d}-{random.randint(1, 28):02d}T08:00:00+08:00",
            "valueQuantity": {"value": round(random.uniform(1, 200), 1), "unit": "mmol/L",
                              "system": "http://unitsofmeasure.org", "code": "mmol/L"}}


def transaction_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def floor(resources: list[dict[str, Any]]) -> dict[str, float]:
    from fhir.resources.R4B import get_fhir_model_class

    start = time.perf_counter()
    for resource in resources:
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        model.model_dump_json()
    elapsed = time.perf_counter() - start
    return {"per_s": len(resources) / elapsed, "us": elapsed / len(resources) * 1e6}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(database_url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BAYLINK_DATABASE_URL": database_url, "BAYLINK_CELERY_EAGER": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "baylink.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def database(backend: str) -> Iterator[str | None]:
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


def fill(database_url: str, target: int, already: int) -> float:
    """Store resources in-process until the store holds ``target``; returns resources/s."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    context = RequestContext(request_id="bench")
    remaining = target - already
    start = time.perf_counter()
    chunk = 2000
    done = 0
    while done < remaining:
        n = min(chunk, remaining - done)
        with sessions() as session, session.begin():
            service = FhirService(FhirRepository(session, context, AllowAllGate()), "http://bench/fhir")
            for _ in range(n):
                service.create("Observation", observation(random.randrange(PATIENTS)))
        done += n
        print(f"  filled {already + done}/{target}", end="\r", file=sys.stderr)
    print(file=sys.stderr)
    rate = remaining / (time.perf_counter() - start)
    # A bulk load is followed by statistics, as autovacuum (PostgreSQL) would soon do; the
    # latency figures are for a store in that steady state.
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return rate


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any] | None:
    with database(backend) as url:
        if url is None:
            return None
        random.seed(42)
        with server(url) as base, httpx.Client(timeout=60) as http:
            headers = {"Content-Type": "application/fhir+json"}
            patients = [patient(i) for i in range(PATIENTS)]
            for start in range(0, PATIENTS, 100):
                batch = patients[start : start + 100]
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}} for p in batch]}
                http.post(base, content=orjson.dumps(bundle), headers=headers).raise_for_status()
            bundles = [transaction_bundle([observation(random.randrange(PATIENTS)) for _ in range(100)])
                       for _ in range(args.bundles)]
            sample = [r["resource"] for b in bundles for r in b["entry"]]
            start = time.perf_counter()
            for bundle in bundles:
                http.post(base, content=orjson.dumps(bundle), headers=headers).raise_for_status()
            load_elapsed = time.perf_counter() - start
            loaded = PATIENTS + args.bundles * 100
            fill_rate = fill(url, args.resources, loaded)
            reads, searches = [], []
            for _ in range(args.requests):
                pid = random.randrange(PATIENTS)
                t0 = time.perf_counter()
                http.get(f"{base}/Patient/bp{pid}").raise_for_status()
                reads.append((time.perf_counter() - t0) * 1000)
                code = random.choice(LOINC)[0]
                t0 = time.perf_counter()
                response = http.get(f"{base}/Observation", params={"subject": f"Patient/bp{pid}",
                                                                  "code": f"http://loinc.org|{code}"})
                searches.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
        floor_stats = floor(sample)
    return {
        "backend": backend,
        "load_per_s": args.bundles * 100 / load_elapsed,
        "fill_per_s": fill_rate,
        "floor_per_s": floor_stats["per_s"],
        "floor_us": floor_stats["us"],
        "read_p50": percentile(reads, 50), "read_p95": percentile(reads, 95),
        "search_p50": percentile(searches, 50), "search_p95": percentile(searches, 95),
        "stored": args.resources,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--bundles", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = [r for b in args.backends.split(",") if (r := run_backend(b.strip(), args))]
    cpu = platform.processor() or platform.machine()
    print(f"\nMachine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| backend | load: transaction bundles of 100 (resources/s) | in-process fill (resources/s) "
          "| floor: fhir.resources parse+serialise (resources/s) |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['load_per_s']:.0f} | {r['fill_per_s']:.0f} | {r['floor_per_s']:.0f} |")
    print("\n| backend | resources stored | read p50 / p95 (ms) | Observation?subject&code p50 / p95 (ms) "
          "| floor per resource (ms) |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['stored']:,} | {r['read_p50']:.2f} / {r['read_p95']:.2f} "
              f"| {r['search_p50']:.2f} / {r['search_p95']:.2f} | {r['floor_us'] / 1000:.3f} |")


if __name__ == "__main__":
    main()
