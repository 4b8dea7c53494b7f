"""Build ``fhir_exchange/search/search_parameters.json`` from the official R4 SearchParameter bundle.

Usage: ``python scripts/build_search_params.py [BUNDLE] [--out PATH]``

BUNDLE defaults to ``../shared/corpora/fhir-r4-definitions/Bundle-searchParams.json``
(relative to the repository root). The output is a compact table without descriptions:
a JSON list with one object per line, sorted by code, then base, then type, so that a
regeneration diffs cleanly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = ROOT.parent / "shared" / "corpora" / "fhir-r4-definitions" / "Bundle-searchParams.json"
DEFAULT_OUT = ROOT / "fhir_exchange" / "search" / "search_parameters.json"


def compact_definition(resource: dict[str, Any]) -> dict[str, Any]:
    """The fields of one SearchParameter the server needs; empty ones are left out."""
    row: dict[str, Any] = {
        "code": resource["code"],
        "base": list(resource.get("base") or []),
        "type": resource["type"],
    }
    if resource.get("expression"):
        row["expression"] = resource["expression"]
    if resource.get("target"):
        row["target"] = sorted(resource["target"])
    if resource["type"] == "composite" and resource.get("component"):
        row["component"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in resource["component"]
        ]
    return row


def build_table(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        compact_definition(entry["resource"])
        for entry in bundle.get("entry", [])
        if entry.get("resource", {}).get("resourceType") == "SearchParameter"
    ]
    rows.sort(key=lambda r: (r["code"], r["base"], r["type"], r.get("expression", "")))
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.bundle.exists():
        print(f"no SearchParameter bundle at {args.bundle}", file=sys.stderr)
        return 1
    bundle = json.loads(args.bundle.read_text(encoding="utf-8"))
    rows = build_table(bundle)
    args.out.write_text(render_table(rows), encoding="utf-8")
    print(f"wrote {len(rows)} search parameters to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
