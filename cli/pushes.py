"""`partner-signals deliveries ...` and `integrations test`: run, replay and inspect pushes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from cli.output import Json, print_json
from cli.registry import fail
from partner_signals.settings import get_settings

deliveries_app = typer.Typer(help="Pushes to partners: run, replay, status.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--{name} must be an ISO date or time, e.g. 2026-03-14T18:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@deliveries_app.command("run")
def run(
    limit: Annotated[int | None, typer.Option(help="Deliver at most this many")] = None,
    company: Annotated[str | None, typer.Option(help="Only this company's deliveries")] = None,
    forever: Annotated[
        bool, typer.Option(help="Keep delivering (the daemon under serve); Ctrl-C stops")
    ] = False,
    nudges: Annotated[
        bool, typer.Option(help="Also enqueue unpaid-bill nudges before delivering")
    ] = True,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port (with --forever)")
    ] = None,
) -> None:
    """Deliver what is due once and print the counts (or keep going with --forever)."""
    from partner_signals.db import get_engine
    from partner_signals.pushes.outbox import enqueue_unpaid_bill_nudges
    from partner_signals.pushes.worker import WorkerOptions, deliver_due, run_loop

    settings = get_settings()
    engine = get_engine(settings)

    options = WorkerOptions.from_settings(settings)

    async def daemon() -> None:
        stop = asyncio.Event()
        # SIGTERM (how serve and supervisors stop it) finishes and writes what it claimed,
        # as Ctrl-C does, instead of leaving its claims to wait out their lease.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        task = asyncio.create_task(
            deliver_due(
                engine,
                key=settings.master_key(),
                forever=True,
                stop=stop,
                company_id=company,
                options=options,
            )
        )
        try:
            while not task.done():
                if nudges:
                    await asyncio.to_thread(_nudge, engine)
                await asyncio.wait([task], timeout=60)
        finally:
            stop.set()
            summary = await task
            out.print(summary.line())

    if forever:
        if metrics_port:
            from cli.metrics import serve_metrics

            serve_metrics(metrics_port, settings=settings)  # and the database gauges
        console.print("delivering continuously; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            run_loop(daemon())
        return
    if nudges:
        with engine.begin() as conn:
            queued = enqueue_unpaid_bill_nudges(conn, now=datetime.now(UTC))
        if queued:
            out.print(f"{queued} unpaid-bill nudges queued")
    summary = run_loop(
        deliver_due(
            engine, key=settings.master_key(), limit=limit, company_id=company, options=options
        )
    )
    out.print(summary.line())
    for adapter, counts in sorted(summary.by_adapter.items()):
        out.print(f"  {adapter}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


def _nudge(engine: Any) -> None:
    from partner_signals.pushes.outbox import enqueue_unpaid_bill_nudges

    with engine.begin() as conn:
        enqueue_unpaid_bill_nudges(conn, now=datetime.now(UTC))


@deliveries_app.command("replay")
def replay(
    adapter: Annotated[str | None, typer.Option(help="Only this adapter")] = None,
    company: Annotated[str | None, typer.Option(help="Only this company")] = None,
    restaurant: Annotated[str | None, typer.Option(help="Only this restaurant")] = None,
    since: Annotated[str | None, typer.Option(help="Dead-lettered at or after (ISO)")] = None,
    until: Annotated[str | None, typer.Option(help="Dead-lettered before (ISO)")] = None,
    fault: Annotated[
        str | None, typer.Option(help="partner (their 4xx, gone, down) or ours")
    ] = None,
) -> None:
    """Re-queue dead letters with a fresh retry schedule; `deliveries run` sends them."""
    from partner_signals.db import get_engine
    from partner_signals.pushes.replay import replay_dead_letters

    if fault not in (None, "partner", "ours"):
        raise _fail("--fault is partner or ours")
    chosen: Literal["partner", "ours"] | None = fault  # type: ignore[assignment]
    with get_engine().begin() as conn:
        result = replay_dead_letters(
            conn,
            adapter=adapter,
            company_id=company,
            restaurant_id=restaurant,
            fault=chosen,
            since=_when(since, "since"),
            until=_when(until, "until"),
        )
    out.print(f"{result.requeued} dead letters re-queued")
    if result.skipped_disabled:
        out.print(
            f"{result.skipped_disabled} left alone: their integration is disabled "
            "(enable it again, then replay)"
        )


@deliveries_app.command("status")
def status(as_json: Json = False) -> None:
    """Per-adapter attempt counts, what is pending and what is dead."""
    from partner_signals.db import get_engine
    from partner_signals.pushes.replay import adapter_counts

    with get_engine().connect() as conn:
        rows = adapter_counts(conn)
    if as_json:
        print_json(rows)
        return
    table = Table("adapter", "delivered", "failed", "retried", "deferred", "pending", "dead")
    for r in rows:
        table.add_row(
            r["adapter"],
            *(str(r[k]) for k in ("delivered", "failed", "retried", "deferred", "pending", "dead")),
        )
    out.print(table)


def integrations_test(
    adapter: Annotated[str, typer.Argument(help="webhook, workforce, crm or messaging")],
    company: Annotated[str, typer.Option(help="Company id")],
    restaurant: Annotated[str | None, typer.Option(help="Restaurant-scoped integration")] = None,
) -> None:
    """Check an enabled adapter's URL and credentials with a harmless request."""
    import httpx
    import sqlalchemy as sa

    from partner_signals.adapters import ADAPTERS, Target
    from partner_signals.db import get_engine
    from partner_signals.registry import read_integration_secrets

    if adapter not in ADAPTERS:
        raise _fail(f"unknown adapter {adapter!r}; one of {', '.join(sorted(ADAPTERS))}")
    settings = get_settings()
    with get_engine(settings).connect() as conn:
        row = conn.execute(
            sa.text(
                "select integration_id, config, enabled from ops.integrations "
                "where company_id = :c and provider = :p "
                "and coalesce(restaurant_id, '') = coalesce(:r, '')"
            ),
            {"c": company, "p": adapter, "r": restaurant},
        ).first()
        if row is None:
            raise _fail(f"{adapter} is not enabled for {company}/{restaurant or '*'}")
        secrets = read_integration_secrets(
            conn,
            key=settings.master_key(),
            company_id=company,
            provider=adapter,
            restaurant_id=restaurant,
        )
    target = Target(row.integration_id, adapter, company, restaurant, row.config or {}, secrets)

    async def check() -> Any:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
            return await ADAPTERS[adapter].test_connection(client, target)

    result = asyncio.run(check())
    state = "" if row.enabled else " (integration is disabled)"
    if result.ok:
        out.print(f"{adapter} ok: HTTP {result.status_code}{state}")
        return
    code = f"HTTP {result.status_code} " if result.status_code else ""
    raise _fail(f"{adapter} test failed: {code}{result.detail}{state}")
