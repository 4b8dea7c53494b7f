"""Loading FHIR JSON files, NDJSON and bundles into the store (``baylink load``).

Each transaction or batch bundle is processed as if POSTed to the base; any other bundle
(collection, document, searchset) has its entries stored one by one; a single resource is
stored with PUT when it has an id (so re-loading is idempotent), else POST. NDJSON lines are
loaded in chunks, each line in its own savepoint so one bad line does not lose the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_exchange.bundles import BundleProcessor
from fhir_exchange.errors import FhirError
from fhir_exchange.service import FhirService

NDJSON_CHUNK = 200
ServiceFactory = Callable[[], Any]  # a context manager yielding (FhirService, Session)


@dataclass(slots=True)
class LoadReport:
    loaded: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


def iter_inputs(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".json", ".ndjson") and p.is_file())
        else:
            yield path


def store_resource(service: FhirService, resource: dict[str, Any]) -> None:
    resource_type = resource.get("resourceType", "")
    if resource.get("id"):
        service.update(resource_type, resource["id"], resource)
    else:
        service.create(resource_type, resource)


def load_document(service: FhirService, session: Any, document: Any) -> int:
    """Store one parsed JSON document; returns how many resources it held."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("resourceType") == "Bundle" and document.get("type") in ("transaction", "batch"):
        result = BundleProcessor(service, session, "minimal").process(document)
        if document["type"] == "batch":
            failed = [e for e in result["entry"] if not e["response"]["status"].startswith("2")]
            if failed:
                raise ValueError(f"{len(failed)} batch entries failed")
        return len(result["entry"])
    if document.get("resourceType") == "Bundle" and document.get("type") != "history":
        count = 0
        for entry in document.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                store_resource(service, entry["resource"])
                count += 1
        # the bundle itself is a resource worth keeping (documents, collections)
        store_resource(service, document)
        return count + 1
    store_resource(service, document)
    return 1


def load_path(path: Path, unit_of_work: Callable[[], Any], report: LoadReport) -> None:
    if path.suffix == ".ndjson":
        _load_ndjson(path, unit_of_work, report)
        return
    try:
        document = orjson.loads(path.read_bytes())
        with unit_of_work() as (service, session):
            report.loaded += load_document(service, session, document)
    except FhirError as error:
        report.failures.append((str(path), "; ".join(i.diagnostics for i in error.issues)))
    except (ValueError, OSError) as error:
        report.failures.append((str(path), str(error)))


def _load_ndjson(path: Path, unit_of_work: Callable[[], Any], report: LoadReport) -> None:
    lines = path.read_bytes().splitlines()
    for start in range(0, len(lines), NDJSON_CHUNK):
        with unit_of_work() as (service, session):
            for number, line in enumerate(lines[start : start + NDJSON_CHUNK], start=start + 1):
                if not line.strip():
                    continue
                savepoint = session.begin_nested()
                try:
                    report.loaded += load_document(service, session, orjson.loads(line))
                    savepoint.commit()
                except FhirError as error:
                    savepoint.rollback()
                    report.failures.append((f"{path}:{number}", "; ".join(i.diagnostics for i in error.issues)))
                except ValueError as error:
                    savepoint.rollback()
                    report.failures.append((f"{path}:{number}", str(error)))
