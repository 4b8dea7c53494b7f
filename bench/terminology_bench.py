"""Terminology benchmarks (part of ``make bench``; alone: ``python bench/run.py --only terminology``).

For each backend (SQLite; PostgreSQL when reachable), on a database of its own:
- load: a generated code system of ``--concepts`` concepts (CSV ``code,display,parent,en,zh-Hans``;
  a few thousand English words drawn Zipf-like, Chinese built from a few hundred words, zh-Hant
  derived by OpenCC; a hierarchy) through ``baylink terminology load`` as a subprocess, timed whole;
  then the same file again (the idempotent 'unchanged' path); then a generated ConceptMap of
  ``--map-rows`` rows to a second code system, through the same command;
- ``ValueSet/$expand?url=<system>?fhir_vs&filter=…&count=20`` over HTTP against a real server:
  p50/p95 per kind of filter, with the number of matches (expansion.total), checked against a
  count made in Python from the generated file;
- the in-process Python API ``terminology.api.Terminology``: translate() and display() with the
  cache warm and cold (a distinct code each call).
The vocabulary is read from the starter content (``terminology/content/*.csv``), so changing that content
changes the generated data and the words the filters look for.
Beside them, in the same run, the in-process floor: reading the CSV with OpenCC (the loader's
parse, no database), and ``$expand`` in-process (service, and its SQL alone).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from common import ROOT, percentile, server

from fhir_exchange.store.db import make_engine, make_sessionmaker
from terminology.api import Terminology
from terminology.loader import Source, read_code_system_csv
from terminology.service import TerminologyService
from terminology.store import Selection, TerminologyStore, filter_needles, search_text

SYSTEM = "http://bench.baylink.example.org/fhir/CodeSystem/vocabulary"
TARGET = "http://bench.baylink.example.org/fhir/CodeSystem/target"
MAP = "http://bench.baylink.example.org/fhir/ConceptMap/vocabulary-to-target"
ENGLISH_WORDS = 4000
CHINESE_WORDS = 300
TARGET_CONCEPTS = 5000
ROOTS = 20
FANOUT = 8
# Synthetic English words pad the vocabulary read from the starter content to ENGLISH_WORDS.
_STEMS = ("cardi", "hepat", "nephr", "gastr", "neur", "oste", "derm", "pneum", "haem", "lip", "arthr", "enter",
          "myel", "angi", "cyst", "encephal", "lymph", "my", "ot", "rhin", "laryng", "bronch", "col", "proct", "path",
          "phleb", "pyel", "splen", "thyr", "vas", "cholecyst", "mast", "hyster", "orchi", "ophthalm", "retin")
_SUFFIXES = ("itis", "osis", "ectomy", "algia", "oma", "opathy", "aemia", "oplasty", "oscopy", "ogenic", "otomy",
             "ostomy", "ography", "orrhea", "omegaly", "ocyte", "oid", "olysis", "ostasis", "otrophy")
_SYLLABLES = ("ba", "ce", "di", "fo", "gu", "ka", "le", "mi", "no", "pu", "ra", "se", "ti", "vo", "xu", "ze",
              "bro", "cla", "dre", "fli", "gro", "pla", "tri", "stra", "ler", "mon", "ton", "dax", "zil", "vor")


@dataclass(slots=True)
class Generated:
    system_csv: Path
    target_csv: Path
    map_csv: Path
    english: list[str]
    chinese: list[str]
    mapped: list[str]  # source codes the map has a target for, in random order
    map_sources: set[str]  # every source code of the map (unmatched ones too)
    codes: list[str]
    filters: list[tuple[str, str]]  # (what, filter text)


def _content_words() -> tuple[list[str], list[str]]:
    """English words and Chinese word runs of the starter content, most frequent first."""
    english, chinese = Counter(), Counter()
    for path in sorted((ROOT / "terminology" / "content").glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                for key in ("display", "en"):
                    english.update(re.findall(r"[a-z]{3,}", (row.get(key) or "").lower()))
                chinese.update(re.findall(r"[\u4e00-\u9fff]{2,4}", row.get("zh-Hans") or ""))
    rank = lambda counter: [w for w, _ in sorted(counter.items(), key=lambda item: (-item[1], item[0]))]  # noqa: E731
    return rank(english), rank(chinese)


def vocabulary(rng: random.Random) -> tuple[list[str], list[str]]:
    english, chinese = _content_words()
    words = dict.fromkeys(english)
    synthetic = [stem + suffix for stem in _STEMS for suffix in _SUFFIXES]
    rng.shuffle(synthetic)
    for word in synthetic:
        if len(words) >= ENGLISH_WORDS:
            break
        words.setdefault(word)
    while len(words) < ENGLISH_WORDS:
        words.setdefault("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    # Interleave the content's words and the synthetic ones below the most frequent few
    # hundred, so the rare tail is not only made-up words.
    ranked = list(words)
    head, tail = ranked[:300], ranked[300:]
    rng.shuffle(tail)
    return head + tail, chinese[:CHINESE_WORDS]


def _zipf_ranks(rng: random.Random, n: int, k: int) -> list[int]:
    cumulative, total = [], 0.0
    for rank in range(n):
        total += 1 / (rank + 1)
        cumulative.append(total)
    return rng.choices(range(n), cum_weights=cumulative, k=k)


def generate(folder: Path, concepts: int, map_rows: int, seed: int = 7) -> Generated:
    rng = random.Random(seed)
    english, chinese = vocabulary(rng)
    lengths = [rng.randint(2, 6) for _ in range(concepts)]
    ranks = iter(_zipf_ranks(rng, len(english), sum(lengths)))
    codes = [f"V{i:06d}" for i in range(concepts)]
    system_csv = folder / "bench-vocabulary.csv"
    with system_csv.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["code", "display", "parent", "en", "zh-Hans"])
        for i, code in enumerate(codes):
            picked = [next(ranks) for _ in range(lengths[i])]
            display = " ".join(english[r] for r in picked).capitalize()
            parent = codes[(i - ROOTS) // FANOUT] if i >= ROOTS else ""
            out.writerow([code, display, parent, display, "".join(chinese[r % len(chinese)] for r in picked)])
    target_codes = [f"T{i:05d}" for i in range(TARGET_CONCEPTS)]
    target_csv = folder / "bench-target.csv"
    with target_csv.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["code", "display", "en", "zh-Hans"])
        for code in target_codes:
            picked = _zipf_ranks(rng, len(english), 3)
            display = " ".join(english[r] for r in picked).capitalize()
            out.writerow([code, display, display, "".join(chinese[r % len(chinese)] for r in picked)])
    # Most sources map to one target, some to two (narrower), a few are unmatched.
    doubles, unmatched = map_rows // 25, map_rows // 100
    sources = rng.sample(codes, min(concepts, map_rows - doubles))
    map_csv = folder / "bench-vocabulary-to-target.csv"
    mapped = []
    with map_csv.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["source_code", "target_code", "equivalence", "comment"])
        for index, code in enumerate(sources):
            if index < unmatched:
                out.writerow([code, "", "unmatched", "no target"])
                continue
            first = rng.randrange(TARGET_CONCEPTS)
            out.writerow([code, target_codes[first], "equivalent", ""])
            if index < unmatched + doubles:
                out.writerow([code, target_codes[(first + 1) % TARGET_CONCEPTS], "narrower", ""])
            mapped.append(code)
    rng.shuffle(mapped)
    return Generated(system_csv, target_csv, map_csv, english, chinese, mapped, set(sources), codes,
                     choose_filters(english, chinese))


def choose_filters(english: list[str], chinese: list[str]) -> list[tuple[str, str]]:
    # A rare word whose first five letters start no other word of the vocabulary.
    rare = next(w for w in english[2000:] if len(w) >= 8 and sum(v.startswith(w[:5]) for v in english) == 1)
    common = next(w for w in english if len(w) >= 6)
    fairly_common = [w for w in english[10:300] if len(w) >= 5]
    zh3 = next(w for w in chinese[20:] if len(w) >= 3)
    zh2 = next(w for w in chinese[20:] if len(w) == 2)
    return [
        ("English word prefix, rare", rare[:5]),
        ("English word, most common", common),
        ("two English words", f"{fairly_common[0]} {fairly_common[30]}"),
        ("Chinese word, 3 characters", zh3[:3]),
        ("Chinese word, 2 characters", zh2),
        ("one Chinese character", chinese[0][0]),
        ("matches nothing", "qzxvk"),
    ]


def expected_totals(generated: Generated) -> dict[str, int]:
    """What each filter should match, counted in Python over the loader's own reading of the file."""
    content = read_code_system_csv(Source(generated.system_csv, "CodeSystem", {"url": SYSTEM, "version": "1"}))
    texts = [search_text([c.code, c.display, *(v for v, _ in c.all_designations().values())]) for c in content.concepts]
    totals = {}
    for _, text in generated.filters:
        needles = filter_needles(text)
        totals[text] = sum(1 for t in texts if all(n in t for n in needles))
    return totals


def baylink_command() -> list[str]:
    """The ``baylink`` command of this checkout (``python -m`` from the checkout's root, so its
    own packages are imported whatever the venv's editable install points at)."""
    return [sys.executable, "-m", "baylink.cli"]


def cli_load(database_url: str, path: Path, *options: str) -> tuple[float, str]:
    env = {"BAYLINK_DATABASE_URL": database_url, "BAYLINK_CELERY_EAGER": "true", "COLUMNS": "200"}
    start = time.perf_counter()
    done = subprocess.run([*baylink_command(), "terminology", "load", str(path), *options], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"baylink terminology load {path.name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done.stderr + done.stdout


def startup_seconds() -> float:
    """A process that imports what ``baylink terminology load`` imports, and does nothing."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import baylink.cli, fhir_exchange.terminology_sync, fhir_exchange.service, "
                    "fhir_exchange.store.db, terminology.languages as l; l.to_traditional_hk('血')"],
                   cwd=ROOT, check=True)
    return time.perf_counter() - start


def _sampled(call: Any, at_most: int, budget_s: float, at_least: int) -> list[float]:
    """Milliseconds of ``call()``: at most ``at_most`` samples, fewer (but ``at_least``) when the
    calls are slow enough to spend ``budget_s``, so the scans do not dominate the run."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < at_most and (len(times) < at_least or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def http_expand(base: str, headers: dict[str, str], generated: Generated, requests: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=120, headers=headers) as http:
        for _, text in generated.filters:
            params = {"url": f"{SYSTEM}?fhir_vs", "filter": text, "count": "20"}
            answers: list[dict[str, Any]] = []

            def call(params: dict[str, str] = params, answers: list[dict[str, Any]] = answers) -> None:
                response = http.get(f"{base}/ValueSet/$expand", params=params)
                response.raise_for_status()
                answers.append(response.json()["expansion"])

            _sampled(call, 3, 0, 3)  # warms the server (and PostgreSQL's prepared statements)
            times = _sampled(call, requests, 6.0, min(20, requests))
            expansion = answers[-1]
            results[text] = {"p50": percentile(times, 50), "p95": percentile(times, 95), "n": len(times),
                             "total": expansion["total"], "shown": len(expansion.get("contains") or [])}
    return results


def in_process_expand(sessions: Any, generated: Generated, rounds: int) -> dict[str, dict[str, float]]:
    """$expand in the benchmark's own process, one session: the service (what the HTTP route calls)
    and its SQL alone (``TerminologyStore.expand``: the count and the page of 20)."""
    results = {}
    with sessions() as session:
        store = TerminologyStore(session)
        selection = Selection(store.code_system(SYSTEM).pk)
        service = TerminologyService(store)
        for _, text in generated.filters:
            sql = _sampled(lambda text=text: store.expand([selection], [], text, 0, 20), rounds, 2.0, 5)
            whole = _sampled(lambda text=text: service.expand(f"{SYSTEM}?fhir_vs", text_filter=text, count=20),
                             rounds, 2.0, 5)
            results[text] = {"sql_p50": percentile(sql, 50), "service_p50": percentile(whole, 50)}
        session.rollback()
    return results


def api_rates(sessions: Any, generated: Generated, warm_calls: int, cold_calls: int) -> dict[str, float]:
    api = Terminology(sessions)
    warm_codes = generated.mapped[:1000]
    cold_codes = generated.mapped[1000 : 1000 + cold_calls]
    for code in warm_codes:
        if not api.translate(SYSTEM, code, TARGET):
            raise AssertionError(f"translate({code}) found no target, though the map has one")
    rounds = max(1, warm_calls // len(warm_codes))
    t0 = time.perf_counter()
    for _ in range(rounds):
        for code in warm_codes:
            api.translate(SYSTEM, code, TARGET)
    translate_warm = rounds * len(warm_codes) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for code in cold_codes:
        api.translate(SYSTEM, code, TARGET)
    translate_cold = len(cold_codes) / (time.perf_counter() - t0)
    unmapped = [c for c in generated.codes if c not in generated.map_sources][:cold_calls]
    t0 = time.perf_counter()
    for code in unmapped:
        api.translate(SYSTEM, code, TARGET)
    translate_cold_miss = len(unmapped) / (time.perf_counter() - t0)
    display_codes = generated.codes[-1000:]
    for code in display_codes:
        api.display(SYSTEM, code, "zh-Hant")
    t0 = time.perf_counter()
    for _ in range(rounds):
        for code in display_codes:
            api.display(SYSTEM, code, "zh-Hant")
    display_warm = rounds * len(display_codes) / (time.perf_counter() - t0)
    cold_display_codes = generated.codes[-1000 - cold_calls : -1000]
    t0 = time.perf_counter()
    for code in cold_display_codes:
        api.display(SYSTEM, code, "zh-Hant")
    display_cold = len(cold_display_codes) / (time.perf_counter() - t0)
    return {"translate_warm": translate_warm, "translate_cold": translate_cold, "translate_cold_miss": translate_cold_miss,
            "display_warm": display_warm, "display_cold": display_cold}


def run_backend(backend: str, url: str, generated: Generated, args: argparse.Namespace) -> dict[str, Any]:
    concepts = len(generated.codes)
    print(f"  [{backend}] loading {concepts:,} concepts with baylink terminology load", file=sys.stderr)
    load_s, output = cli_load(url, generated.system_csv, "--url", SYSTEM, "--version", "1", "--name", "BenchVocabulary")
    if " loaded " not in output:
        raise RuntimeError(f"first load did not report 'loaded':\n{output[-2000:]}")
    reload_s, output = cli_load(url, generated.system_csv, "--url", SYSTEM, "--version", "1", "--name", "BenchVocabulary")
    if " unchanged " not in output:
        raise RuntimeError(f"re-load did not report 'unchanged':\n{output[-2000:]}")
    cli_load(url, generated.target_csv, "--url", TARGET, "--version", "1")
    map_s, output = cli_load(url, generated.map_csv, "--url", MAP, "--version", "1", "--source-system", SYSTEM,
                             "--target-system", TARGET)
    with generated.map_csv.open(encoding="utf-8") as handle:
        map_rows = sum(1 for _ in handle) - 1
    print(f"  [{backend}] $expand over HTTP", file=sys.stderr)
    with server(url) as (base, headers):
        http = http_expand(base, headers, generated, args.term_requests)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    print(f"  [{backend}] in-process $expand and the Python API", file=sys.stderr)
    local = in_process_expand(sessions, generated, max(5, args.term_requests // 5))
    rates = api_rates(sessions, generated, args.api_calls, args.api_cold_calls)
    server_note = ""
    if engine.dialect.name == "postgresql":
        # Whether autovacuum runs matters here: it is what analyses the tables the load does not
        # and merges the trigram index's pending list.
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
            autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar()
        server_note = f"PostgreSQL {version}, autovacuum {autovacuum}"
    engine.dispose()
    return {"backend": backend, "concepts": concepts, "load_s": load_s, "reload_s": reload_s, "map_s": map_s,
            "map_rows": map_rows, "http": http, "local": local, "server_note": server_note, **rates}


_FLOOR = """
import sys, time
from pathlib import Path
from terminology.loader import Source, read_code_system_csv
t0 = time.perf_counter()
content = read_code_system_csv(Source(Path(sys.argv[1]), "CodeSystem", {"url": "urn:bench", "version": "1"}))
t1 = time.perf_counter()
content.content_hash()
print(t1 - t0, time.perf_counter() - t1)
"""


def floor(generated: Generated) -> dict[str, float]:
    """The loader's parse of the file (CSV, OpenCC for zh-Hant) and its content hash, with no
    database, in a fresh process as the command has; and that process's start-up."""
    done = subprocess.run([sys.executable, "-c", _FLOOR, str(generated.system_csv)], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    parse_s, hash_s = map(float, done.stdout.split())
    return {"parse_s": parse_s, "hash_s": hash_s, "startup_s": startup_seconds()}


def print_tables(results: list[dict[str, Any]], generated: Generated, expected: dict[str, int],
                 floor_stats: dict[str, float]) -> None:
    concepts = len(generated.codes)
    print(f"\n### Terminology: {concepts:,} concepts ({len(generated.english):,} English words, "
          f"{len(generated.chinese)} Chinese words; zh-Hant derived by OpenCC)\n")
    print("| backend | `baylink terminology load` (concepts/s) | seconds | re-load, unchanged (s) "
          f"| ConceptMap of {results[0]['map_rows']:,} rows (rows/s) | seconds |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['concepts'] / r['load_s']:,.0f} | {r['load_s']:.1f} | {r['reload_s']:.1f} "
              f"| {r['map_rows'] / r['map_s']:,.0f} | {r['map_s']:.1f} |")
    print(f"\nFloor, no database, in a fresh process: the loader's parse of the CSV with OpenCC {floor_stats['parse_s']:.1f} s "
          f"({concepts / floor_stats['parse_s']:,.0f} concepts/s), its content hash {floor_stats['hash_s']:.1f} s; "
          f"process start + imports {floor_stats['startup_s']:.1f} s.\n")
    header, rule = "| filter | `filter=` | matches |", "|---|---|---|"
    for r in results:
        header += f" {r['backend']}: HTTP p50 / p95 (ms) | {r['backend']}: in-process service / SQL p50 (ms) |"
        rule += "---|---|"
    print(header)
    print(rule)
    for what, text in generated.filters:
        totals = [r["http"][text]["total"] for r in results]
        shown = f"{totals[0]:,}" if len(set(totals)) == 1 else " vs ".join(f"{t:,}" for t in totals)
        if any(t != expected[text] for t in totals):
            shown += f" (expected {expected[text]:,}!)"
        line = f"| {what} | {text} | {shown} |"
        for r in results:
            h, local = r["http"][text], r["local"][text]
            samples = "" if h["n"] >= 100 else f" (n={h['n']})"
            line += f" {h['p50']:.1f} / {h['p95']:.1f}{samples} | {local['service_p50']:.1f} / {local['sql_p50']:.1f} |"
        print(line)
    notes = [r["server_note"] for r in results if r["server_note"]]
    if notes:
        print(f"\n{'; '.join(notes)}.")
    print("\n| backend | translate() warm (calls/s) | translate() cold (calls/s) | translate() cold, code not mapped (calls/s) "
          "| display() warm (calls/s) | display() cold (calls/s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['translate_warm']:,.0f} | {r['translate_cold']:,.0f} | {r['translate_cold_miss']:,.0f} "
              f"| {r['display_warm']:,.0f} | {r['display_cold']:,.0f} |")
