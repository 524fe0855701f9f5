"""`madoguchi`: the operator's command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from domain.actors import Client, Role
from domain.errors import DomainError
from domain.policy import SERVICE_SCOPES
from infra.settings import Settings

if TYPE_CHECKING:
    from infra.worker import PassReport

app = typer.Typer(
    help="madoguchi: consultation-centre backend (API, worker and operator commands).", no_args_is_help=True
)


_reported: set[str] = set()


def _settings() -> Settings:
    for name, near in Settings.unknown_names():
        if name in _reported:
            continue
        _reported.add(name)
        hint = f"; did you mean {near}?" if near else ""
        typer.echo(f"warning: {name} is not a madoguchi setting and is ignored{hint}", err=True)
    try:
        return Settings.from_environment()
    except ValidationError as exc:
        # Which setting and why, never a value (values can be passwords and keys).
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"MADOGUCHI_{name}: {message}" if name else message, err=True)
        raise typer.Exit(2) from exc


def dev_public_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches the server at (a wildcard bind is not one)."""
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first")
    ] = False,
) -> None:
    """Serve the API with uvicorn."""
    settings = _settings()
    # Before anything imports prometheus-client: every worker writes its samples to this directory, and the
    # metrics port (served here, in the supervising process) and /metrics read them all (infra/metrics.py).
    from infra.metrics_setup import prepare_multiprocess

    _, cleanup = prepare_multiprocess(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    import uvicorn

    from infra import metrics
    from infra.logging import configure_logging

    configure_logging(settings.log_level)
    if migrate_first:
        migrate()
    if not settings.is_production and "public_url" not in settings.model_fields_set:
        # Mailed links are built on the public URL: in development they point at this server, whose
        # stand-in pages (api/devpages.py) make the API call the front end would. The uvicorn workers
        # read their settings from the environment, so the default goes there.
        os.environ["MADOGUCHI_PUBLIC_URL"] = dev_public_url(host, port)
        typer.echo(
            f"mailed links use {os.environ['MADOGUCHI_PUBLIC_URL']} (set MADOGUCHI_PUBLIC_URL for a front end)"
        )
    if settings.metrics_port is not None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        metrics.serve_metrics(settings.metrics_host, settings.metrics_port, token)
    try:
        _uvicorn(uvicorn, settings, host, port, workers)
    finally:
        cleanup()


# The standard library's event loop, not uvloop (which uvicorn picks when it is installed): overloaded, uvloop
# served some connections seconds late while others passed at once. A bare FastAPI endpoint at 256
# connections on this 2-core machine: uvloop p50 43 ms, p99 2.0-2.7 s, max 4 s (wrk timeouts); asyncio p50 40-48
# ms, p99 65-75 ms, max 110 ms, for 0-10 % less throughput. Under load every request waits about as long as the
# others, so none times out while the rest are fast.
SERVED_LOOP = "asyncio"


def _uvicorn(uvicorn, settings: Settings, host: str, port: int, workers: int) -> None:
    config = uvicorn.Config(
        "api.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
        http="api.server:BoundedHttpToolsProtocol",  # bounds the request head (431); see api/server.py
        loop=SERVED_LOOP,
        access_log=False,  # the app writes its own request line (api/middleware.py), without addresses
        log_config=None,  # uvicorn's lines go to the JSON handler (infra/logging.py)
        log_level=settings.log_level.lower(),
    )
    from infra.listener import serve_config

    serve_config(config)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision: head, base or a revision id")] = "head",
) -> None:
    """Move the database to a revision (up or down), printing each revision as it is applied."""
    from sqlalchemy.exc import SQLAlchemyError

    from infra.db.migrate import (
        Step,
        UnknownRevision,
        current_heads,
        head_revision,
        known_revisions,
        migrate_to,
    )

    settings = _settings()

    def show(step: Step) -> None:
        verb = "applied " if step.upgrade else "reverted"
        typer.echo(f"{verb} {step.revision}  {step.title}")

    try:
        steps = migrate_to(settings.database_url, revision, show)
        at = current_heads(settings.database_url)
    except UnknownRevision:
        typer.echo(
            f"error: unknown revision {revision!r}; use head, base or one of {', '.join(known_revisions())}",
            err=True,
        )
        raise typer.Exit(2) from None
    except (SQLAlchemyError, OSError) as exc:
        # Only the type: driver messages can carry the connection URL and its password.
        typer.echo(f"error: the database could not be migrated ({type(exc).__name__})", err=True)
        raise typer.Exit(1) from None
    where = ", ".join(at) or "base (empty)"
    if at == (head_revision(),):
        where += " (head)"
    if not steps:
        typer.echo(f"database already at {where}: nothing to do")
        return
    applied = sum(s.upgrade for s in steps)
    counts = [(verb, n) for verb, n in (("applied", applied), ("reverted", len(steps) - applied)) if n]
    done = ", ".join(f"{verb} {n} revision{'' if n == 1 else 's'}" for verb, n in counts)
    typer.echo(f"database at {where}: {done}")


def _run(coro):
    try:
        return asyncio.run(coro)
    except DomainError as exc:
        typer.echo(f"error: {exc.code}", err=True)
        raise typer.Exit(1) from exc


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="E-mail address (the sign-in name)")],
    role: Annotated[Role, typer.Option(help="Role")] = Role.consulter,
    display_name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    expires_at: Annotated[
        datetime | None, typer.Option(help="When the account stops working (required for council members)")
    ] = None,
) -> None:
    """Create a verified account, e.g. the first admin. Without --password-stdin the password is prompted."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def go() -> None:
        from infra.container import build_container

        c = build_container(_settings())
        try:
            expiry = expires_at.replace(tzinfo=expires_at.tzinfo or UTC) if expires_at else None
            user = await c.accounts.create_user_directly(
                email=email, role=role, password=password, display_name=display_name, expires_at=expiry
            )
            typer.echo(f"created {user.role.value} {user.id}")
        finally:
            await c.close()

    _run(go())


@app.command("create-client")
def create_client(
    client_id: Annotated[str, typer.Option(help="Client id, e.g. line-bot")],
    kind: Annotated[Client, typer.Option(help="line, chatbot or service")],
    scope: Annotated[list[str], typer.Option(help="Allowed scope; repeat for several")],
    name: Annotated[str, typer.Option(help="Human-readable name")] = "",
) -> None:
    """Register a service client for the client_credentials grant; prints its secret once."""
    if kind in (Client.web, Client.staff):
        typer.echo("error: kind must be line, chatbot or service", err=True)
        raise typer.Exit(2)
    unknown = sorted(set(scope) - set(SERVICE_SCOPES))
    if unknown:
        typer.echo(f"error: unknown scope {', '.join(unknown)}; known: {', '.join(SERVICE_SCOPES)}", err=True)
        raise typer.Exit(2)

    async def go() -> None:
        from infra.container import build_container

        c = build_container(_settings())
        try:
            _, secret = await c.accounts.add_service_client(
                client_id=client_id, name=name or client_id, kind=kind, scopes=frozenset(scope)
            )
            typer.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
        finally:
            await c.close()

    _run(go())


@app.command()
def worker(once: Annotated[bool, typer.Option("--once", help="Drain what is due and exit")] = False) -> None:
    """Deliver the outbox (mail, notifications) with retries."""

    async def go() -> None:
        from infra import metrics, tracing
        from infra.container import build_container
        from infra.logging import configure_logging

        settings = _settings()
        configure_logging(settings.log_level)
        tracing.configure_tracing(
            settings.otlp_endpoint, service="madoguchi-worker", sample_ratio=settings.trace_sample_ratio
        )
        if settings.metrics_port is not None and not once:
            token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
            metrics.serve_metrics(settings.metrics_host, settings.metrics_port, token)
        c = build_container(settings)
        try:
            if once:
                await c.worker.run_once()
                typer.echo(describe_pass(c.worker.last_pass))
                return
            stop = asyncio.Event()
            import signal

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await c.worker.run_forever(stop)
        finally:
            await c.close()

    asyncio.run(go())


def describe_pass(report: PassReport) -> str:
    """One line an operator can read: what went out, by kind, and what did not."""

    def by_kind(counts) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))

    parts = [
        f"delivered {report.total}" + (f" ({by_kind(report.delivered)})" if report.total else ": nothing due")
    ]
    if report.failed:
        parts.append(f"failed, to be retried: {by_kind(report.failed)}")
    if report.given_up:
        parts.append(f"given up after the last attempt: {by_kind(report.given_up)}")
    for count, what in (
        (report.clock_reminders, "request clock reminders queued"),
        (report.reads_chained, "reads chained into their chain of custody"),
        (report.heads_stamped, "chain heads time-stamped"),
        (report.chatbot_sessions_purged, "expired chatbot sessions purged"),
        (report.consultations_shredded, "consultations past retention shredded"),
        (report.statistics_years, "fiscal years of statistics recounted"),
        (report.exports_prepared, "personal exports prepared"),
        (report.exports_swept, "personal export copies deleted"),
        (report.erasures_completed, "account erasures carried out"),
        (report.erasure_shredded, "consultations of erased accounts shredded"),
        (report.erasure_kept, "consultations of erased accounts kept under a legal hold"),
        (report.files_left, "files of shredded consultations the store refused to delete (retried)"),
    ):
        if count:
            parts.append(f"{count} {what}")
    return "; ".join(parts)


@app.command("verify-audit")
def verify_audit(
    consultation: Annotated[
        str | None, typer.Option(help="Check only this consultation's chain (its id)")
    ] = None,
) -> None:
    """Check every chain of custody: each link re-hashed in order, the head against the last link, and the
    time-stamp tokens (against MADOGUCHI_TSA_CA_FILE when set). Names the first broken link of each broken
    chain (consultation id and sequence number) and exits 1 when any is broken. Reads waiting to be chained
    (the worker chains them on its next pass) are counted, not checked: they are not links yet."""
    import uuid

    async def go():
        from infra.container import build_container

        c = build_container(_settings())
        try:
            return await c.custody.verify(uuid.UUID(consultation) if consultation else None)
        finally:
            await c.close()

    report = _run(go())
    for found in report.breaks:
        typer.echo(f"BROKEN {found}", err=True)
    stamps = f", {report.stamps_checked} time-stamp tokens verified" if report.stamps_checked else ""
    waiting = f" ({report.waiting} reads waiting to be chained)" if report.waiting else ""
    typer.echo(
        f"checked {report.chains} chains, {report.links} links{stamps}: {len(report.breaks)} broken{waiting}"
    )
    if report.breaks:
        raise typer.Exit(1)


@app.command("stamp-heads")
def stamp_heads() -> None:
    """Time-stamp, at MADOGUCHI_TSA_URL, every chain head that moved since its last stamp (the worker does
    this every MADOGUCHI_TSA_STAMP_MINUTES)."""

    async def go():
        from infra.container import build_container

        c = build_container(_settings())
        try:
            if c.custody.tsa is None:
                typer.echo("error: set MADOGUCHI_TSA_URL and MADOGUCHI_TSA_CA_FILE", err=True)
                raise typer.Exit(2)
            return await c.custody.stamp_heads()
        finally:
            await c.close()

    result = _run(go())
    typer.echo(f"time-stamped {result.stamped} chain heads; {result.failed} failed")
    if result.failed:
        raise typer.Exit(1)


@app.command("rotate-keys")
def rotate_keys(
    batch: Annotated[int, typer.Option(min=1, help="Data keys re-wrapped per transaction")] = 500,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many (run again to go on)")
    ] = None,
) -> None:
    """Re-wrap every case's data key under the current key-encryption key (the first of MADOGUCHI_KEK_FILE or
    MADOGUCHI_KEK; keep the previous ones after it until this reports 0 remaining). Data is not re-encrypted.
    Resumable: each batch commits, and a new run goes on with what is left."""

    from infra.db.case_keys import Rotation, missing_keks, missing_keks_message, rewrap_all

    async def go() -> Rotation | list[str]:
        from infra.container import build_container

        c = build_container(_settings())
        try:
            async with c.sessions() as db:
                missing = await missing_keks(db, c.keys)
            if missing:
                return missing  # nothing re-wrapped: a key it cannot open would stop the run half-way
            return await rewrap_all(
                c.sessions,
                c.keys,
                batch=batch,
                limit=limit,
                progress=lambda done, total: typer.echo(f"re-wrapped {done} of {total}"),
            )
        finally:
            await c.close()

    result = _run(go())
    if isinstance(result, list):
        typer.echo(f"refused: {missing_keks_message(result)}", err=True)
        raise typer.Exit(2)
    typer.echo(f"re-wrapped {result.rewrapped} data keys; {result.remaining} remaining under an earlier key")


@app.command("retention")
def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be shredded; change nothing")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many cases in this run")] = 200,
) -> None:
    """Shred the closed and withdrawn consultations whose retention period (domain/knowledge/retention.yaml)
    has passed and that no legal hold keeps (the worker does this every few hours). Prints the count and the
    consultation ids (nothing else about them)."""
    from domain.retention import RetentionReport

    async def go() -> RetentionReport:
        from infra.container import build_container

        c = build_container(_settings())
        try:
            return await c.retention.apply(dry_run=dry_run, limit=limit)
        finally:
            await c.close()

    report = _run(go())
    for consultation_id in report.consultation_ids:
        typer.echo(str(consultation_id))
    verb = "would shred" if dry_run else "shredded"
    typer.echo(f"{verb} {len(report.consultation_ids)} consultations; {report.held} kept by a legal hold")
    if report.files_left:
        typer.echo(
            f"warning: {report.files_left} files the store did not delete (sealed, unreadable)", err=True
        )


@app.command("load-reference")
def load_reference() -> None:
    """Validate the reference knowledge (categories, desks, platforms, chart, guides, triage rules) and load
    the desk directory into the database (a desk whose file entry changed gets a new version)."""
    from infra.knowledge import knowledge_version, load_knowledge
    from infra.triage_loader import load_triage_engine

    typer.echo("checking reference data ...")
    try:
        knowledge = load_knowledge()
        triage = load_triage_engine()
    except ValueError as exc:
        typer.echo(f"reference data is invalid: {exc}", err=True)
        raise typer.Exit(1) from exc
    missing = triage.referenced_desk_codes() - {d.code for d in knowledge.desks}
    if missing:
        typer.echo(f"triage rules name unknown desks: {sorted(missing)}", err=True)
        raise typer.Exit(1)

    async def sync_desks() -> int:
        from infra.container import build_container

        c = build_container(_settings())
        try:
            from infra.quality_loader import load_manual

            return await c.desks.sync_reference() + await c.quality.sync_reference(*load_manual())
        finally:
            await c.close()

    typer.echo("writing the desk directory and the manual to the database ...")
    written = asyncio.run(sync_desks())
    typer.echo(
        f"reference data {knowledge_version()[:12]}: {len(knowledge.leaf_categories())} categories, "
        f"{len(knowledge.desks)} desks, {len(knowledge.platforms)} platforms, {len(knowledge.chart.nodes)} chart "
        f"nodes, {len(knowledge.guides)} guides, triage rules {triage.version}; {written} desk and manual versions written"
    )


@app.command("line-rich-menu")
def line_rich_menu(
    font: Annotated[
        str | None,
        typer.Option(help="A TrueType/OpenType font with Japanese glyphs (default: the bundled IPAexGothic)"),
    ] = None,
    dry_run: Annotated[
        str | None,
        typer.Option("--dry-run", help="Write the PNG to this path and print the menu; call nothing"),
    ] = None,
) -> None:
    """Deploy the LINE rich menu (domain/knowledge/line_rich_menu.yaml): create it, upload a generated image
    of its size and make it the default for every user of the official account."""
    from infra.line_richmenu import deploy_rich_menu, load_rich_menu, rich_menu_image, rich_menu_request
    from infra.line_sdk import LineApi

    settings = _settings()
    try:
        spec = load_rich_menu()
    except (ValueError, OSError) as exc:
        typer.echo(f"rich menu data is invalid: {exc}", err=True)
        raise typer.Exit(1) from exc
    if dry_run:
        with open(dry_run, "wb") as out:
            out.write(rich_menu_image(spec, font))
        typer.echo(json.dumps(rich_menu_request(spec, settings.public_url), ensure_ascii=False))
        return
    api = LineApi(settings)
    if not api.configured:
        typer.echo("error: MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN is not set", err=True)
        raise typer.Exit(2)

    async def go() -> str:
        try:
            return await deploy_rich_menu(api, spec, settings.public_url, font)
        finally:
            await api.close()

    from infra.line_sdk import LineCallFailed

    try:
        rich_menu_id = asyncio.run(go())
    except LineCallFailed as exc:
        typer.echo(f"error: the Messaging API answered {exc.code}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"rich menu {rich_menu_id} is the default")


if __name__ == "__main__":
    app()
