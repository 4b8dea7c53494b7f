"""BayLink benchmarks (``make bench``): not a test, a measurement. Prints markdown tables.

For each backend (SQLite; PostgreSQL when reachable):
- load: resources/s POSTing transaction bundles of 100 resources (50 bundles) to a real server;
- fill the store to 100k resources (in-process, large transactions; not timed as HTTP);
- latency p50/p95 of read and of ``Observation?subject=…&code=…`` over HTTP;
- the consent gate's cost: ``Observation?patient=…`` (about 100 matches, a page of 20) against
  BayLink with the consent gate (asked by the custodian, and by another institution under each
  patient's Consent) and BayLink with the allow-all gate, in one server process holding one
  BayLink per case (``bench/gates_app.py``), interleaved request by request, with a second
  allow-all BayLink as the control; and in-process, the decision engine's decisions/s and the gate's requests/s
  (``bench/gate_bench.py``).
Beside them, measured in the same run, the in-process floor: fhir.resources parse + serialise
of the same resources (what no server can go below per resource). ``--only gate`` runs the FHIR
set-up and the consent gate's tables only.

Then the terminology section (``bench/terminology_bench.py``): loading a generated code system of
200,000 concepts with ``baylink terminology load``, ``ValueSet/$expand?filter=`` over HTTP, and the
in-process ``translate()`` / ``display()`` API, each on a database of its own.

Then the voucher section (``bench/voucher_bench.py``, ``--only voucher``): ``POST /vouchers/claims``
claims/s and p50/p95 against a real server, one at a time and from 8 clients at once (over many accounts,
and on one account's row lock), beside the in-process floor (``ClaimService.submit`` alone).

Usage: ``python bench/run.py [--only fhir|gate|terminology|matching] [--resources 100000] [--bundles 50] [--requests 300]
[--gate-rounds 2000] [--concepts 200000] [--map-rows 50000] [--term-requests 100] [--backends sqlite,postgresql]``
PostgreSQL: ``BAYLINK_BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
a database of its own is created and dropped there.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gate_bench
import httpx
import orjson
from common import bearer, database, percentile, server
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fhir_exchange.auth.tokens import generate_key_pem
from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.service import FhirService
from fhir_exchange.store.db import make_engine, make_sessionmaker
from fhir_exchange.store.repository import FhirRepository

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


def floor(resources: list[dict[str, Any]]) -> dict[str, float]:
    from fhir.resources.R4B import get_fhir_model_class

    start = time.perf_counter()
    for resource in resources:
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        model.model_dump_json()
    elapsed = time.perf_counter() - start
    return {"per_s": len(resources) / elapsed, "us": elapsed / len(resources) * 1e6}


def fill(database_url: str, target: int, already: int) -> float:
    """Store resources in-process until the store holds ``target``; returns resources/s."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    context = RequestContext(request_id="bench", institution="baylink-bench", scopes=("system/*.cruds",))
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


def settle(database_url: str) -> None:
    """The store after its writes as the database's own upkeep soon leaves it (PostgreSQL:
    vacuumed, analysed, its dirty pages written out by a checkpoint; SQLite: analysed), so that
    the timings that follow do not share the machine with that upkeep."""
    engine = make_engine(database_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE"))
            try:
                conn.execute(text("CHECKPOINT"))
            except DBAPIError as exc:  # CHECKPOINT needs a superuser or pg_checkpoint
                print(f"(no CHECKPOINT before the gate's timings: {exc.orig})", file=sys.stderr)
        else:
            conn.execute(text("ANALYZE"))
    engine.dispose()


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any] | None:
    with database(backend) as url:
        if url is None:
            return None
        random.seed(42)
        with server(url) as (base, auth), httpx.Client(timeout=60, headers=auth) as http:
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
            reads: list[float] = []
            searches: list[float] = []
            for _ in range(args.requests if args.only != "gate" else 0):
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
            # the consent gate's cost on Observation?patient=… (about 100 matches, a page of 20):
            # each patient has a Consent letting a second institution see results
            for org in ("baylink-bench", "bench-other"):
                http.put(f"{base}/Organization/{org}", headers=headers, content=orjson.dumps({
                    "resourceType": "Organization", "id": org, "name": org, "extension": [{
                        "url": "http://baylink.example.org/fhir/StructureDefinition/institution-jurisdiction",
                        "valueCode": "HK"}]})).raise_for_status()
            for pid in range(PATIENTS):
                http.put(f"{base}/Consent/bench-{pid}", headers=headers, content=orjson.dumps(
                    bench_consent(pid))).raise_for_status()
        settle(url)
        gate_timings = gate_overhead(url, args.gate_rounds)
        engine_rates = gate_bench.engine(bench_consent(1))
        gate_rates = gate_bench.gate(url, [f"bp{pid}" for pid in range(20)])
        floor_stats = floor(sample)
    return {
        "gate": gate_timings,
        "engine": engine_rates,
        "gate_rates": gate_rates,
        "backend": backend,
        "load_per_s": args.bundles * 100 / load_elapsed,
        "fill_per_s": fill_rate,
        "floor_per_s": floor_stats["per_s"],
        "floor_us": floor_stats["us"],
        "stored": args.resources,
        **({"read_p50": percentile(reads, 50), "read_p95": percentile(reads, 95),
            "search_p50": percentile(searches, 50), "search_p95": percentile(searches, 95)} if reads else {}),
    }


def bench_consent(pid: int) -> dict[str, Any]:
    return {"resourceType": "Consent", "id": f"bench-{pid}", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/bp{pid}"},
            # recorded by an institution: with the signed form as its evidence (consent/rules.py)
            "sourceAttachment": {"contentType": "application/pdf", "title": "signed consent form",
                                 "url": f"https://bench.example.org/forms/consent-{pid}.pdf"},
            "provision": {"type": "permit", "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                "reference": {"reference": "Organization/bench-other"}}],
                "code": [{"coding": [{"system": "http://baylink.example.org/fhir/CodeSystem/data-category",
                                      "code": "results"}]}]}}


GATE_CASES = ("allow-all", "allow-all-again", "custodian", "consented")
WARM_UP = 30


def gate_overhead(url: str, requests: int) -> dict[str, list[float]]:
    """Observation?patient=… timed four ways in the same run, on the same store, by one server
    process holding BayLink four times, once per case (bench/gates_app.py): with the allow-all gate, with
    the allow-all gate again (the control: what the method reads where there is no
    difference), and with the consent gate asked by the custodian institution and by a second
    institution under each patient's Consent. Every round asks all four for the same patient,
    in an order that rotates, so that whatever else the machine does falls on all alike. The
    totals must agree: the consent gate released every match."""
    signing_key = generate_key_pem()
    with (server(url, signing_key=signing_key, app="gates_app:create_app", prefix="/allow-all") as (allow_all, _),
          httpx.Client(timeout=60) as http):
        root = allow_all.removesuffix("/allow-all/fhir")
        targets = {"allow-all": (f"{root}/allow-all/fhir", bearer(signing_key, "baylink-bench")),
                   "allow-all-again": (f"{root}/allow-all-again/fhir", bearer(signing_key, "baylink-bench")),
                   "custodian": (f"{root}/consent-custodian/fhir", bearer(signing_key, "baylink-bench")),
                   "consented": (f"{root}/consent/fhir", bearer(signing_key, "bench-other"))}
        timings: dict[str, list[float]] = {case: [] for case in GATE_CASES}
        rng = random.Random(7)
        for i in range(WARM_UP + requests):
            params = {"patient": f"Patient/bp{rng.randrange(PATIENTS)}"}
            totals = set()
            turn = i % len(GATE_CASES)
            for case in GATE_CASES[turn:] + GATE_CASES[:turn]:
                base, headers = targets[case]
                t0 = time.perf_counter()
                response = http.get(f"{base}/Observation", params=params, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                response.raise_for_status()
                totals.add(response.json()["total"])
                if i >= WARM_UP:
                    timings[case].append(elapsed)
            assert len(totals) == 1, f"the consent gate must release every match here ({params})"
    return timings


def run_terminology(args: argparse.Namespace) -> None:
    import terminology_bench

    with tempfile.TemporaryDirectory() as folder:
        print(f"terminology: generating {args.concepts:,} concepts and a map of {args.map_rows:,} rows", file=sys.stderr)
        generated = terminology_bench.generate(Path(folder), args.concepts, args.map_rows)
        expected = terminology_bench.expected_totals(generated)
        results = []
        for backend in args.backends.split(","):
            with database(backend.strip()) as url:
                if url is not None:
                    results.append(terminology_bench.run_backend(backend.strip(), url, generated, args))
        floor_stats = terminology_bench.floor(generated)
    if results:
        terminology_bench.print_tables(results, generated, expected, floor_stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("fhir", "gate", "terminology", "matching", "voucher"),
                        help="run one section (default: all); gate: the FHIR section's consent gate tables only")
    parser.add_argument("--persons", type=int, default=1500, help="matching: generated cross-border persons")
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--bundles", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--gate-rounds", type=int, default=2000,
                        help="consent gate: timed rounds (each asks all four cases); a p95 of 2000 rests on 100 requests "
                             "(of 600, on 30: PostgreSQL's p95 then moved by up to 8 points from run to run)")
    parser.add_argument("--concepts", type=int, default=200_000, help="terminology: concepts in the code system")
    parser.add_argument("--map-rows", type=int, default=50_000, help="terminology: rows in the ConceptMap")
    parser.add_argument("--term-requests", type=int, default=100, help="terminology: $expand requests per filter")
    parser.add_argument("--api-calls", type=int, default=500_000, help="terminology: warm translate()/display() calls")
    parser.add_argument("--api-cold-calls", type=int, default=1000, help="terminology: cold (uncached) calls")
    parser.add_argument("--voucher-claims", type=int, default=300, help="voucher: claims per measurement")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    load_before = os.getloadavg()[0]
    if args.only in (None, "fhir", "gate"):
        results = [r for b in args.backends.split(",") if (r := run_backend(b.strip(), args))]
        if args.only != "gate":
            print_fhir(results)
        print_gate(results)
        print()
        print(gate_bench.table(results))
    if args.only in (None, "terminology"):
        run_terminology(args)
    if args.only in (None, "matching"):
        from matching_bench import evaluate, generate, table

        print("\n## Cross-border patient matching\n")
        print(table(evaluate(*generate(args.persons, seed=7))))
    if args.only in (None, "voucher"):
        import voucher_bench

        print("\n## Elderly Health Care Voucher claims\n")
        print(voucher_bench.table(voucher_bench.run(args.backends.split(","), args.voucher_claims)))
    # Other work on the machine skews every figure: the load average says whether there was any.
    print(f"\nMachine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; "
          f"load average (1 min) {load_before:.2f} before the run, {os.getloadavg()[0]:.2f} after\n")


def print_gate(results: list[dict[str, Any]]) -> None:
    print("\n| backend | Observation?patient=… allow-all gate p50 / p95 (ms) | allow-all again (control) p50 / p95 (ms) "
          "| consent gate, custodian p50 / p95 (ms) | consent gate, another institution under consent p50 / p95 (ms) "
          "| overhead at p50 (control / custodian / consented) | overhead at p95 (control / custodian / consented) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        g = r["gate"]
        cells = [f"{percentile(g[k], 50):.2f} / {percentile(g[k], 95):.2f}" for k in GATE_CASES]
        overheads = []
        for pct in (50, 95):
            base = percentile(g["allow-all"], pct)
            overheads.append(" / ".join(f"{percentile(g[k], pct) / base - 1:+.1%}" for k in GATE_CASES[1:]))
        print(f"| {r['backend']} | {' | '.join(cells)} | {' | '.join(overheads)} |")


def print_fhir(results: list[dict[str, Any]]) -> None:
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
