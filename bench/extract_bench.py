"""Search index extraction benchmark: not a test, a measurement.

Extracts the index entries of every official R4 example (``../shared/corpora/fhir-r4-examples``;
Bundles count once for themselves and once per entry resource) with the compiled accessors
and with fhirpathpy only, and prints resources/s and mean time per resource for both.

Usage: ``python bench/extract_bench.py [--rounds 5] [--corpus PATH]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fhir_exchange.search.extract import Engine, extract  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "fhir-r4-examples"


def load_resources(corpus: Path) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for path in sorted(corpus.glob("*.json")):
        if path.name.startswith("_"):
            continue
        resource = json.loads(path.read_text(encoding="utf-8"))
        resources.append(resource)
        if resource.get("resourceType") == "Bundle":
            resources.extend(e["resource"] for e in resource.get("entry", []) if isinstance(e.get("resource"), dict))
    return resources


def time_round(resources: list[dict[str, Any]], engine: Engine) -> float:
    start = time.perf_counter()
    for resource in resources:
        extract(resource, engine=engine)
    return time.perf_counter() - start


def measure(resources: list[dict[str, Any]], engine: Engine, rounds: int) -> tuple[float, int]:
    """Best-of-``rounds`` seconds for one pass, after a warm-up pass that compiles everything."""
    entries = sum(len(extract(r, engine=engine)) for r in resources)
    best = min(time_round(resources, engine) for _ in range(rounds))
    return best, entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 1
    resources = load_resources(args.corpus)
    print(f"{len(resources)} resources from {args.corpus}, best of {args.rounds} rounds\n")
    print("| engine | resources/s | ms/resource | entries |")
    print("|---|---:|---:|---:|")
    results = {}
    for engine, rounds in (("compiled", args.rounds), ("fhirpath", max(1, args.rounds // 2))):
        seconds, entries = measure(resources, engine, rounds)  # type: ignore[arg-type]
        results[engine] = seconds
        per = seconds / len(resources) * 1000
        print(f"| {engine} | {len(resources) / seconds:,.0f} | {per:.3f} | {entries} |")
    print(f"\ncompiled is {results['fhirpath'] / results['compiled']:.1f}x faster than fhirpathpy only")
    sizes = [len(extract(r)) for r in resources]
    print(f"entries per resource: median {statistics.median(sizes):.0f}, max {max(sizes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
