"""HL7 v2 ingest benchmark: ORU^R01 messages with 10 OBX each, through the whole path (parse,
convert, translate, identity, store: ``POST /ingest/hl7v2`` against a real server, each
message its own transaction with its original, Provenance and AuditEvent), beside the
in-process floors measured in the same run: parse-only (python-hl7), convert-only (the reader,
no database) and stored in-process (reader + pipeline, no HTTP). The issue's goal: the stored
rate at least half the convert-only rate.

Usage: ``python bench/ingest_bench.py [--messages 300] [--clients 4] [--backend postgresql|sqlite|both]``
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import database, percentile, server  # noqa: E402

ANALYTES = [("2345-7", "Glucose", "mmol/L", "5.4"), ("2160-0", "Creatinine", "umol/L", "88"),
            ("2823-3", "Potassium", "mmol/L", "4.1"), ("2951-2", "Sodium", "mmol/L", "140"),
            ("718-7", "Hemoglobin", "g/L", "135"), ("6690-2", "WBC", "10*9/L", "6.2"),
            ("777-3", "Platelets", "10*9/L", "250"), ("4548-4", "HbA1c", "%", "6.8"),
            ("2093-3", "Cholesterol", "mmol/L", "5.1"), ("1742-6", "ALT", "U/L", "32")]


def hkid(n: int) -> str:
    from fhir_exchange.identity.documents import hkid_check_character

    digits = f"{n % 1_000_000:06d}"
    return f"A{digits}{hkid_check_character('A', digits)}"


SURNAMES = [("CHAN", "陳"), ("LEE", "李"), ("CHEUNG", "張"), ("WONG", "黃"), ("LEUNG", "梁"), ("LAM", "林"), ("LAU", "劉"),
            ("NG", "吳"), ("HO", "何"), ("KWOK", "郭")]
GIVEN = [("TAI MAN", "大文"), ("SIU MING", "小明"), ("CHI KEUNG", "志強"), ("MEI LING", "美玲"), ("KA WAI", "嘉偉")]
PATIENTS = 60  # results arrive for a standing population: most messages are for patients already known


def message(n: int) -> bytes:
    control = f"BENCH{n:07d}-{uuid.uuid4().hex[:6]}"
    person = n % PATIENTS
    (family, family_zh), (given, given_zh) = SURNAMES[person % 10], GIVEN[(person // 10) % 5]
    born = f"19{40 + person % 40:02d}{1 + person % 12:02d}{1 + person % 28:02d}"
    segments = [
        f"MSH|^~\\&|LIS|QMH|BAYLINK|BL|20261124101500+0800||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE||UNICODE UTF-8",
        f"PID|1||{hkid(person)}^^^HKID^NNHKG||{family}^{given}^^^^^L~{family_zh}^{given_zh}^^^^^L^^^^^^I||{born}|M",
        f"OBR|1|ORD{n}^QMH|FIL{n}^QMH-LAB|24323-8^Comprehensive metabolic panel^LN|||20261124090000+0800|||||||||"
        f"||||||||F",
    ]
    for i, (code, name, unit, value) in enumerate(ANALYTES, 1):
        segments.append(f"OBX|{i}|NM|{code}^{name}^LN||{value}|{unit}|||||F|||20261124093000+0800")
    return ("\r".join(segments) + "\r").encode("utf-8")


def floors(count: int) -> dict[str, float]:
    import hl7

    from fhir_exchange.convert.base import Source
    from fhir_exchange.convert.hl7v2.reader import read

    messages = [message(i) for i in range(count)]
    started = time.perf_counter()
    for data in messages:
        hl7.parse(data.decode("utf-8"))
    parse = count / (time.perf_counter() - started)
    source = Source("ha-queen-mary", "hk")
    started = time.perf_counter()
    for data in messages:
        read(data, source)
    convert = count / (time.perf_counter() - started)
    return {"parse": parse, "convert": convert}


def stored_in_process(url: str, count: int) -> float:
    from baylink.app import create_app
    from baylink.settings import Settings
    from fhir_exchange.ingest.receive import Receiver
    from fhir_exchange.ports import RequestContext

    app = create_app(Settings(database_url=url))
    context = RequestContext(request_id="bench", client_id="bench", institution="ha-queen-mary", purpose_of_use="HOPERAT",
                             scopes=("system/*.cruds",))
    receiver = Receiver(app.state.fhir, context, "http://bench/fhir")
    messages = [message(100_000 + i) for i in range(count)]
    started = time.perf_counter()
    for data in messages:
        _, received = receiver.hl7v2(data)
        if received.code != "AA":
            raise RuntimeError(received.text)
    elapsed = time.perf_counter() - started
    app.state.engine.dispose()
    app.state.reader_engine.dispose()
    return count / elapsed


def over_http(base: str, headers: dict[str, str], count: int, clients: int) -> dict[str, float]:
    root = base.removesuffix("/fhir")
    latencies: list[float] = []
    messages = [message(200_000 + i) for i in range(count)]

    def one(data: bytes) -> None:
        with httpx.Client(timeout=60) as client:
            started = time.perf_counter()
            response = client.post(f"{root}/ingest/hl7v2", content=data,
                                   headers={**headers, "Content-Type": "application/hl7-v2"})
            latencies.append((time.perf_counter() - started) * 1000)
            if "MSA|AA" not in response.text:
                raise RuntimeError(response.text[:300])

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, messages))
    elapsed = time.perf_counter() - started
    return {"per_s": count / elapsed, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}


def prepare(url: str) -> None:
    from baylink.settings import Settings, identifier_vault
    from fhir_exchange import crypto
    from fhir_exchange.institutions.registry import load_registry
    from fhir_exchange.ports import AllowAllGate, RequestContext
    from fhir_exchange.service import FhirService
    from fhir_exchange.store.db import make_engine, make_sessionmaker
    from fhir_exchange.store.repository import FhirRepository

    crypto.configure(identifier_vault(Settings(database_url=url)))
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session, session.begin():
        context = RequestContext(request_id="bench", client_id="bench", scopes=("system/*.cruds",))
        load_registry(FhirService(FhirRepository(session, context, AllowAllGate()), "http://bench/fhir"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    args = parser.parse_args()
    floor = floors(args.messages)
    rows = []
    for backend in ("postgresql", "sqlite") if args.backend == "both" else (args.backend,):
        with database(backend) as url:
            if url is None:
                continue
            prepare(url)
            in_process = stored_in_process(url, max(50, args.messages // 3))
            with server(url, institution="ha-queen-mary") as (base, headers):
                http = over_http(base, headers, args.messages, args.clients)
            rows.append((backend, in_process, http))
    print("\nHL7 v2 ORU^R01 with 10 OBX (parse, convert, translate, identity, store; original + Provenance + audit)")
    print(f"in-process floors: parse-only {floor['parse']:.0f}/s, convert-only {floor['convert']:.0f}/s")
    print(f"{'backend':<11} {'stored in-process/s':>20} {'HTTP/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'HTTP ÷ convert':>15}  ({args.clients} clients)")
    for backend, in_process, http in rows:
        print(f"{backend:<11} {in_process:>20.0f} {http['per_s']:>8.0f} {http['p50']:>8.1f} {http['p95']:>8.1f} "
              f"{http['per_s'] / floor['convert']:>15.2f}")


if __name__ == "__main__":
    main()
