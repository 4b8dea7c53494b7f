"""The ``baylink`` command: serve, migrate, seed, load."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from baylink.settings import get_settings

app = typer.Typer(help="BayLink: the Greater Bay Area cross-border health record exchange.", no_args_is_help=True)
console = Console(stderr=True)
SEED_DIR = Path(__file__).parent / "seed"


@contextmanager
def _unit_of_work(base_url: str = "", institution: str | None = None) -> Iterator[Any]:
    """A transaction with an operator's context and the allow-all gate (operator tooling
    writes only; nothing it does releases data to a third party)."""
    from baylink.settings import identifier_vault
    from fhir_exchange import crypto
    from fhir_exchange.ports import AllowAllGate, RequestContext
    from fhir_exchange.service import FhirService
    from fhir_exchange.store.db import make_engine, make_sessionmaker
    from fhir_exchange.store.repository import FhirRepository

    settings = get_settings()
    crypto.configure(identifier_vault(settings))
    engine = _engine_cache.get(settings.database_url) or make_engine(settings.database_url)
    _engine_cache[settings.database_url] = engine
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="baylink-cli", purpose_of_use="HOPERAT",
                             scopes=OPERATOR_SCOPES, institution=institution)
    with make_sessionmaker(engine)() as session, session.begin():
        repository = FhirRepository(session, context, AllowAllGate(), max_search_results=settings.max_search_results)
        yield FhirService(repository, base_url or settings.public_base_url or "http://127.0.0.1:8000/fhir"), session


_engine_cache: dict[str, Any] = {}
# Operator tooling runs with full scopes and the allow-all gate: it writes reference data and
# never releases patient data to a third party.
OPERATOR_SCOPES = ("system/*.cruds",)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "",
    port: Annotated[int, typer.Option(help="port to listen on")] = 0,
) -> None:
    """Serve BayLink over HTTP (FHIR base /fhir)."""
    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    console.print(f"BayLink serving on http://{host}:{port}  (FHIR base http://{host}:{port}/fhir)")
    # the app, and then the process's garbage collector set for serving it (baylink/process.py)
    uvicorn.run("baylink.process:served_app", factory=True, host=host, port=port, log_level="info")


@app.command()
def mllp(
    institution: Annotated[str, typer.Option(help="the Organization id of the sending institution this listener serves")],
    host: Annotated[str, typer.Option(help="interface to listen on (loopback: put a TLS tunnel in front)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 2575,
) -> None:
    """Listen for HL7 v2 over MLLP for one institution; each message is acknowledged only after
    it is committed."""
    import asyncio

    from baylink.app import create_app
    from fhir_exchange.ingest.mllp import MllpServer
    from fhir_exchange.ingest.receive import Receiver, ack_for
    from fhir_exchange.ports import RequestContext

    settings = get_settings()
    application = create_app(settings)
    context = RequestContext(request_id=f"mllp-{institution}", client_id=f"mllp:{institution}", institution=institution,
                             purpose_of_use="HOPERAT", scopes=("system/*.cruds",))
    receiver = Receiver(application.state.fhir, context,
                        settings.public_base_url or f"http://{settings.host}:{settings.port}/fhir",
                        application.state.ingest_dispatch)

    def handle(message: bytes) -> bytes:
        header, received = receiver.hl7v2(message)
        return ack_for(header, received).encode("utf-8")

    server = MllpServer(handle, host, port)
    console.print(f"MLLP listener for {institution} on {host}:{port} (Ctrl-C stops it)")
    asyncio.run(server.serve_forever())


@app.command()
def convert(
    paths: Annotated[list[Path], typer.Argument(help="HL7 v2 (.hl7, .txt, batch files) or CDA (.xml, .ccda) files")],
    profile: Annotated[str, typer.Option(help="local flavour: hk, cn, mo, or none")] = "none",
    to: Annotated[str, typer.Option(help="output format (json: FHIR JSON transaction Bundles)")] = "json",
    out: Annotated[Path | None, typer.Option(help="write the transaction Bundles here (a folder); else stdout")] = None,
) -> None:
    """Convert files to FHIR transactions without storing anything, to check a feed."""
    if to != "json":
        console.print(f"[red]--to {to}: only json is written (FHIR JSON transaction Bundles)[/red]")
        raise typer.Exit(2)
    import orjson
    from rich.progress import track

    from fhir_exchange.convert.base import ConversionError, Source
    from fhir_exchange.ingest.receive import read_cda, read_hl7v2

    source = Source(None, None if profile == "none" else profile)
    failures = 0
    for path in track(paths, description="converting", console=console):
        data = path.read_bytes()
        try:
            is_xml = data.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"<")
            conversions = [read_cda(data, source)] if is_xml else read_hl7v2(data, source)
        except ConversionError as error:
            failures += 1
            console.print(f"[red]{path}: {error.where()}: {error.message}[/red]", highlight=False)
            continue
        for number, conversion in enumerate(conversions, 1):
            text = orjson.dumps(conversion.bundle, option=orjson.OPT_INDENT_2)
            if out is None:
                print(text.decode())
            else:
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{path.stem}-{number}.json").write_bytes(text)
            for warning in conversion.warnings:
                console.print(f"[yellow]{path}: {warning}[/yellow]", highlight=False)
    if failures:
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Apply the database migrations (Alembic upgrade head) to the configured database."""
    from baylink.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    console.print(f"[green]database is at the latest schema[/green] ({_safe_url(settings.database_url)})")


@app.command()
def seed() -> None:
    """Load the reference data BayLink ships (idempotent)."""
    from fhir_exchange.identity.documents import NAMING_SYSTEMS_FILE

    files = [*sorted(SEED_DIR.glob("*.json")), NAMING_SYSTEMS_FILE]
    report = _load(files, "seeding")
    failed = _load_terminology([TERMINOLOGY_MANIFEST], {})
    failed += _load_institutions(None)
    if report.failures or failed:
        raise typer.Exit(1)


@app.command()
def load(paths: Annotated[list[Path], typer.Argument(help="FHIR JSON files, NDJSON files, bundles or folders")]) -> None:
    """Load FHIR resources from files into the store, with a progress bar and a failure summary."""
    from fhir_exchange.loader import iter_inputs

    missing = [p for p in paths if not p.exists()]
    if missing:
        console.print(f"[red]no such file: {', '.join(map(str, missing))}[/red]")
        raise typer.Exit(2)
    report = _load(list(iter_inputs(paths)), "loading")
    if report.failures:
        raise typer.Exit(1)


def _load(files: list[Path], verb: str) -> Any:
    from fhir_exchange.loader import LoadReport, load_path

    report = LoadReport()
    columns = (TextColumn(f"{verb} {{task.fields[name]}}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(verb, total=len(files), name="")
        for path in files:
            progress.update(task, name=path.name)
            load_path(path, _unit_of_work, report)
            progress.advance(task)
    console.print(f"[green]{report.loaded} resources stored[/green] from {len(files)} files")
    if report.failures:
        console.print(f"[red]{len(report.failures)} failed:[/red]")
        for where, why in report.failures:
            console.print(f"  {where}: {why[:500]}", soft_wrap=True, markup=False, highlight=False)
    return report


terminology_app = typer.Typer(help="Terminology: code systems, concept maps and value sets.", no_args_is_help=True)
app.add_typer(terminology_app, name="terminology")
TERMINOLOGY_MANIFEST = Path(__file__).resolve().parents[1] / "terminology" / "content" / "manifest.json"


@terminology_app.command("load")
def terminology_load(
    paths: Annotated[list[Path], typer.Argument(help="CSV tables, FHIR JSON files (CodeSystem, ConceptMap, ValueSet "
                                                     "or a Bundle of them) or manifest .json files")],
    url: Annotated[str | None, typer.Option(help="canonical url of the code system or map in a CSV table")] = None,
    version: Annotated[str | None, typer.Option(help="version to load a CSV table as (default: one per load)")] = None,
    name: Annotated[str | None, typer.Option(help="computable name")] = None,
    title: Annotated[str | None, typer.Option(help="human title")] = None,
    resource_id: Annotated[str | None, typer.Option("--id", help="id of the FHIR resource (default: from the file name)")] = None,
    source_system: Annotated[str | None, typer.Option(help="a map table's source code system url")] = None,
    target_system: Annotated[str | None, typer.Option(help="a map table's target code system url")] = None,
    content: Annotated[str, typer.Option(help="CodeSystem.content of a CSV table: complete or fragment")] = "complete",
) -> None:
    """Load terminology into the tables and the FHIR store: one transaction per file, every
    fault reported by line, a file with any fault not loaded at all, unchanged files skipped."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        console.print(f"[red]no such file: {', '.join(map(str, missing))}[/red]")
        raise typer.Exit(2)
    meta = {k: v for k, v in {
        "url": url, "version": version, "name": name, "title": title, "id": resource_id,
        "sourceSystem": source_system, "targetSystem": target_system, "content": content,
    }.items() if v is not None}
    if _load_terminology(paths, meta):
        raise typer.Exit(1)


def _load_terminology(paths: list[Path], meta: dict[str, Any]) -> int:
    """Load the files; returns how many failed."""
    from fhir_exchange.errors import FhirError
    from fhir_exchange.terminology_sync import load_source
    from terminology.errors import TerminologyError
    from terminology.loader import identify

    sources, failures = [], 0
    for path in paths:
        try:
            sources += identify(path, dict(meta))
        except TerminologyError as exc:
            failures += 1
            _print_failure(path.name, exc)
    columns = (TextColumn("terminology {task.fields[name]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("terminology", total=len(sources), name="")
        for source in sources:
            progress.update(task, name=source.label)
            if source.kind != "fhir" and "url" not in source.meta:
                failures += 1
                console.print(f"[red]{source.label}: give --url (and for a map --source-system and --target-system)[/red]")
            else:
                try:
                    with _unit_of_work() as (service, _):
                        results = load_source(service, source)
                    for result in results:
                        colour = "dim" if result.status == "unchanged" else "green"
                        console.print(f"[{colour}]{source.label}: {result.kind} {result.url}|{result.version} "
                                      f"{result.status} ({result.items} items)[/{colour}]", highlight=False, soft_wrap=True)
                except (TerminologyError, FhirError) as exc:
                    failures += 1
                    _print_failure(source.label, exc)
            progress.advance(task)
    if failures:
        console.print(f"[red]{failures} file(s) not loaded[/red]")
    return failures


def _print_failure(label: str, exc: Exception) -> None:
    console.print(f"[red]{label}: not loaded[/red]", highlight=False)
    problems = getattr(exc, "problems", None)
    if problems:
        console.print(f"  {getattr(exc, 'message', exc)}", markup=False, highlight=False)
        for problem in problems:
            console.print(f"  {problem}", markup=False, highlight=False)
    else:
        console.print(f"  {exc}", markup=False, highlight=False, soft_wrap=True)


institutions_app = typer.Typer(help="The institutions registry: who takes part, where, and designated for what.",
                                no_args_is_help=True)
app.add_typer(institutions_app, name="institutions")


@institutions_app.command("load")
def institutions_load(
    path: Annotated[Path | None, typer.Argument(help="registry file (default: the one BayLink ships)")] = None,
) -> None:
    """Load the registry as Organization and Location resources (idempotent; a file with any
    fault loads nothing and every fault is listed)."""
    if _load_institutions(path):
        raise typer.Exit(1)


def _load_institutions(path: Path | None) -> bool:
    """Load the registry; True when it failed."""
    from fhir_exchange.errors import FhirError
    from fhir_exchange.institutions.registry import DEFAULT_FILE, load_registry

    path = path or DEFAULT_FILE
    if not path.exists():
        console.print(f"[red]no such file: {path}[/red]")
        return True
    try:
        with _unit_of_work() as (service, _):
            written, unchanged = load_registry(service, path)
    except FhirError as exc:
        console.print(f"[red]{path.name}: not loaded[/red]", highlight=False)
        for issue in exc.issues:
            console.print(f"  {issue.diagnostics}", markup=False, highlight=False, soft_wrap=True)
        return True
    console.print(f"[green]institutions: {written} written, {unchanged} unchanged[/green] ({path.name})")
    return False


@institutions_app.command("list")
def institutions_list(
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array (id, name, jurisdiction, …)")] = False,
) -> None:
    """List the registered institutions."""
    import orjson

    from fhir_exchange.institutions.registry import list_institutions

    with _unit_of_work() as (service, _):
        institutions = list_institutions(service)
    if as_json:
        typer.echo(orjson.dumps([i.summary() for i in institutions], option=orjson.OPT_INDENT_2).decode())
        return
    from rich.table import Table

    table = Table("id", "jurisdiction", "name", "designations")
    for institution in institutions:
        designations = ", ".join(f"{d.programme} from {d.start}" + (f" until {d.end}" if d.end else "")
                                 for d in institution.designations)
        table.add_row(institution.id, institution.jurisdiction, institution.name, designations)
    Console().print(table)


clients_app = typer.Typer(help="Hospital systems: register SMART Backend Services clients, get tokens.",
                           no_args_is_help=True)
app.add_typer(clients_app, name="clients")


@clients_app.command("register")
def clients_register(
    org: Annotated[str, typer.Option("--org", help="the institution's Organization id (see: baylink institutions list)")],
    jwks: Annotated[Path, typer.Option("--jwks", help="the client's public JWKS (JSON file)")],
    scope: Annotated[str, typer.Option("--scope", help="the most it may be granted")] = "system/*.rs",
    name: Annotated[str | None, typer.Option(help="a name for the client")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", help="choose the client_id (default: generated)")] = None,
) -> None:
    """Register a client; prints {"client_id", "institution", "scope"} as JSON."""
    import orjson

    from fhir_exchange.auth.service import AuthError, ClientRegistry

    try:
        keys = orjson.loads(jwks.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        console.print(f"[red]cannot read the JWKS {jwks}: {exc}[/red]")
        raise typer.Exit(2) from None
    try:
        with _unit_of_work() as (_, session):
            client = ClientRegistry(session).register(org, keys, scope, name, client_id)
    except AuthError as exc:
        console.print(f"[red]not registered: {exc.description}[/red]", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(orjson.dumps({"client_id": client.client_id, "institution": client.institution,
                             "scope": client.scopes}).decode())


@clients_app.command("keygen")
def clients_keygen(
    out: Annotated[Path, typer.Option(help="where to write the private key (PEM); the JWKS goes beside it")],
    kind: Annotated[str, typer.Option(help="EC (ES384) or RSA (RS384)")] = "EC",
) -> None:
    """Make a key pair for a client: the private key (keep it secret) and its public JWKS."""
    import os

    import orjson

    from fhir_exchange.auth.keys import generate_private_key_pem, public_jwks

    pem = generate_private_key_pem(kind.upper())
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    jwks_path = out.with_suffix(".jwks.json")
    jwks_path.write_bytes(orjson.dumps(public_jwks(pem), option=orjson.OPT_INDENT_2))
    console.print(f"private key: {out}\npublic JWKS: {jwks_path}")


@clients_app.command("token")
def clients_token(
    client_id: Annotated[str, typer.Option("--client-id")],
    key: Annotated[Path, typer.Option("--key", help="the client's private key (PEM)")],
    scope: Annotated[str, typer.Option(help="scopes to ask for")] = "system/*.rs",
    url: Annotated[str, typer.Option(help="BayLink's base URL")] = "http://127.0.0.1:8000",
) -> None:
    """Sign a client assertion with the key, exchange it at /auth/token, print the access token."""
    import httpx

    from fhir_exchange.auth.keys import client_assertion

    token_url = url.rstrip("/") + "/auth/token"
    assertion = client_assertion(client_id, key.read_bytes(), token_url)
    response = httpx.post(token_url, data={
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }, timeout=30)
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}: {response.text}[/red]", highlight=False)
        raise typer.Exit(1)
    typer.echo(response.json()["access_token"])


DEMO_CLIENT = "demo-client"
DEMO_KEY = Path("var") / "demo-client-key.pem"


DEMO_HKID = "A123456(3)"


@app.command()
def demo() -> None:
    """Development only: a demo institution and client with a key under var/, and how to use it."""
    import os

    from fhir_exchange.auth.keys import generate_private_key_pem, public_jwks
    from fhir_exchange.auth.service import ClientRegistry

    settings = get_settings()
    if settings.environment == "production":
        console.print("[red]the demo client is for development only[/red]")
        raise typer.Exit(2)
    report = _load([SEED_DIR / "demo" / "Organization-demo-clinic.json"], "demo")
    if report.failures:
        raise typer.Exit(1)
    if not DEMO_KEY.exists():
        DEMO_KEY.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(DEMO_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(generate_private_key_pem())
    with _unit_of_work() as (_, session):
        registry = ClientRegistry(session)
        existing = registry.get(DEMO_CLIENT)
        if existing is not None and existing.jwks != public_jwks(DEMO_KEY.read_bytes()):
            existing.jwks = public_jwks(DEMO_KEY.read_bytes())
        elif existing is None:
            registry.register("demo-clinic", public_jwks(DEMO_KEY.read_bytes()), "system/*.cruds", "BayLink demo client",
                              DEMO_CLIENT)
    with _unit_of_work(institution="demo-clinic") as (service, _):
        for name in ("Patient-demo-chan.json", "Observation-demo-hba1c.json"):
            service.put_if_changed(json.loads((SEED_DIR / "demo" / name).read_text(encoding="utf-8")))
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"[bold]Patient page[/bold] {base}/consent — sign in as the demo patient with Hong Kong Identity Card "
        f"{DEMO_HKID}; the one-time code appears in the server's console and at {base}/consent/dev/messages",
        highlight=False, soft_wrap=True,
    )
    console.print(
        f"[bold]Demo client[/bold] {DEMO_CLIENT} (institution demo-clinic), private key {DEMO_KEY}. Once serving:\n"
        f"  TOKEN=$(.venv/bin/baylink clients token --client-id {DEMO_CLIENT} --key {DEMO_KEY} "
        f"--scope 'system/*.cruds' --url {base})\n"
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/fhir/Patient',
        highlight=False, soft_wrap=True,
    )


audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the AuditEvent hash chain end to end; names the first bad record and exits 1."""
    from fhir_exchange.audit.trail import verify

    with _unit_of_work() as (_, session):
        result = verify(session)
    if result.ok:
        console.print(f"[green]audit chain intact: {result.checked} records[/green]")
        return
    console.print(f"[red]audit chain broken after {result.checked} good records: {result.problem}[/red]", highlight=False,
                  soft_wrap=True)
    raise typer.Exit(1)


keys_app = typer.Typer(help="Keys for identity document numbers at rest.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new() -> None:
    """Print a new random 256-bit key (base64url) for BAYLINK_IDENTIFIER_KEYS or BAYLINK_BLIND_INDEX_KEY."""
    from fhir_exchange.crypto import new_key

    typer.echo(new_key())


@keys_app.command("rotate")
def keys_rotate(batch: Annotated[int, typer.Option(help="resources per transaction")] = 500) -> None:
    """Re-seal every identity number sealed under an older key with the current key. First add
    the new key to BAYLINK_IDENTIFIER_KEYS and make it BAYLINK_IDENTIFIER_KEY_ID; remove the
    old key only after this has finished."""
    from sqlalchemy import func, select

    from fhir_exchange import crypto
    from fhir_exchange.store.models import ResourceRow
    from fhir_exchange.store.repository import reseal_identifiers
    from fhir_exchange.validation import PERSON_TYPES

    with _unit_of_work() as (_, session):
        total = session.execute(select(func.count()).select_from(ResourceRow)
                                .where(ResourceRow.res_type.in_(sorted(PERSON_TYPES)))).scalar_one()
    vault = crypto.vault()
    after: int | None = 0
    seen = changed = 0
    columns = (TextColumn("re-sealing under key {task.fields[kid]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("rotate", total=total, kid=vault.current)
        while after is not None:
            with _unit_of_work() as (_, session):
                rows, updated, after = reseal_identifiers(session, vault, after, batch)
            seen += rows
            changed += updated
            progress.update(task, completed=min(total, progress.tasks[0].completed + batch) if after else total)
    console.print(f"[green]{changed} stored versions re-sealed under key {vault.current}[/green] ({seen} looked at)")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    app()
