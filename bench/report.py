"""Benchmark results: the machine, one row per scenario, ratios and goals, as markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import Usage

# The sections of docs/benchmarks.md that the benchmarks write their blocks into.
INGEST_SECTION = "## Ingest: latest `make bench` run"
API_SECTION = "## Partner API and pushes"
# Share of the machine (%) used by other processes above which a run counts as disturbed.
BUSY_LIMIT = 15.0


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu: str
    memory_gib: float
    kernel: str
    python: str
    uvicorn: str
    wrk: str
    pg: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        pg = self.pg
        return (
            f"{self.nproc} CPUs ({self.cpu}), {self.memory_gib:g} GiB RAM, "
            f"PostgreSQL {pg.get('server_version', '?')} "
            f"(synchronous_commit={pg.get('synchronous_commit', '?')}, "
            f"fsync={pg.get('fsync', '?')}), Linux {self.kernel}, Python {self.python}"
        )


@dataclass
class Outcome:
    name: str
    what: str
    rps: float
    requests: int
    ok: int
    rows: int | None
    in_flight_limit: int
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    non2xx: int = 0
    socket_errors: int = 0
    repeats: int = 0
    seconds: float | None = None
    cpu: Usage | None = None
    attempt: int = 1
    bytes_per_response: float = 0.0
    # The 1, 5 and 15-minute load averages right after the measured run.
    load: tuple[float, float, float] | None = None
    not_modified: int = 0  # 304 answers, where the script counted them

    def durable(self) -> bool | None:
        """Every 2xx has its row: acknowledged <= landed <= acknowledged + what was in
        flight when wrk stopped (answered after wrk stopped listening) or refused late.
        None when the scenario stores nothing."""
        if self.rows is None:
            return None
        unique_ok = self.ok - self.repeats
        return unique_ok <= self.rows <= self.ok + self.non2xx + self.in_flight_limit

    def check(self) -> str:
        verdict = self.durable()
        if verdict is None:
            return "n/a (stores nothing)"
        mark = "ok" if verdict else "FAILED"
        return f"{mark}: {self.ok:,} acknowledged, {self.rows:,} rows"

    def summary(self) -> str:
        lat = (
            f", p50 {self.p50_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"
            if self.p99_ms is not None
            else f", {self.seconds:.1f} s"
        )
        extra = (
            f", {self.non2xx} non-2xx, {self.socket_errors} socket errors" if self.p99_ms else ""
        )
        dup = f", {self.repeats} repeated bodies" if self.repeats else ""
        return f"{self.rps:,.0f}/s{lat}{extra}{dup}; durability {self.check()}"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _load(load: tuple[float, float, float] | None) -> str:
    return "" if load is None else " / ".join(f"{x:.2f}" for x in load)


def _find(outcomes: list[Outcome], name: str) -> Outcome | None:
    return next((o for o in outcomes if o.name == name), None)


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def goal_table(rows: list[tuple[str, str, str]]) -> list[str]:
    """Markdown lines (after a blank one) of a (goal, measured, verdict) table."""
    if not rows:
        return []
    return [
        "",
        "| goal | measured | verdict |",
        "| --- | ---: | --- |",
        *(f"| {g} | {m} | {v} |" for g, m, v in rows),
    ]


def goals(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for each goal whose scenario ran."""
    rows: list[tuple[str, str, str]] = []
    pos, naive, stripe, bulk, bare, copy = (
        _find(outcomes, n)
        for n in ("ingest-pos", "naive", "ingest-stripe", "bulk-file", "bare-asgi", "plain-copy")
    )
    if pos:
        rows.append(("POS events ≥ 8,000/s", f"{pos.rps:,.0f}/s", verdict(pos.rps >= 8000)))
        p99 = pos.p99_ms or 0.0
        rows.append(("POS p99 acknowledgement ≤ 25 ms", f"{p99:.1f} ms", verdict(p99 <= 25)))
    if pos and naive and naive.rps:
        ratio = pos.rps / naive.rps
        rows.append(("POS ≥ 2.5x naive receiver", f"{ratio:.2f}x", verdict(ratio >= 2.5)))
        rows.append(("POS ≥ 4x naive receiver (issue 16)", f"{ratio:.2f}x", verdict(ratio >= 4)))
    if pos and bare and bare.rps:
        ratio = pos.rps / bare.rps
        rows.append(("POS ≥ 0.3x bare ASGI (issue 16)", f"{ratio:.2f}x", verdict(ratio >= 0.3)))
    if stripe:
        rows.append(
            (
                "signed Stripe webhooks ≥ 5,000/s",
                f"{stripe.rps:,.0f}/s",
                verdict(stripe.rps >= 5000),
            )
        )
    if bulk:
        rows.append(
            ("bulk `ingest FILE` ≥ 100,000/s", f"{bulk.rps:,.0f}/s", verdict(bulk.rps >= 100_000))
        )
    if bulk and copy and copy.rps:
        ratio = bulk.rps / copy.rps
        rows.append(
            (
                "bulk `ingest FILE` ≥ 0.8x plain COPY (issue 16)",
                f"{ratio:.2f}x",
                verdict(ratio >= 0.8),
            )
        )
    checks = [o for o in outcomes if o.durable() is not None]
    if checks:
        good = all(o.durable() for o in checks)
        rows.append(
            (
                "every 2xx committed (rows = acknowledgements)",
                f"{sum(1 for o in checks if o.durable())}/{len(checks)} scenarios",
                verdict(good),
            )
        )
    return rows


def render_markdown(
    machine: Machine,
    outcomes: list[Outcome],
    *,
    seconds: int,
    stamp: str,
    quick: bool,
    note: str = "",
) -> str:
    pg = machine.pg
    lines = [
        f"### Run {stamp}{' (quick)' if quick else ''}",
        "",
        f"**Machine:** {machine.line()}.",
        "",
        f"PostgreSQL settings: synchronous_commit={pg.get('synchronous_commit')}, "
        f"fsync={pg.get('fsync')}, wal_sync_method={pg.get('wal_sync_method')}, "
        f"full_page_writes={pg.get('full_page_writes')}, commit_delay={pg.get('commit_delay')}, "
        f"shared_buffers={pg.get('shared_buffers')}. Load: {machine.wrk}, "
        f"`-t2 -c32 -d{seconds}s`, client and servers on the same machine; servers: "
        f"uvicorn {machine.uvicorn} `--workers 2` (uvloop + httptools).",
        "",
    ]
    if note:
        lines += [f"Experiment settings: `{note}`", ""]
    lines += [
        "| scenario | what | events/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx "
        "| socket errors | durability check |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.name} | {o.what} | {o.rps:,.0f} | {_ms(o.p50_ms)} | {_ms(o.p90_ms)} "
            f"| {_ms(o.p99_ms)} | {_ms(o.max_ms)} | {o.non2xx} | {o.socket_errors} "
            f"| {o.check()} |"
        )
    metered = [o for o in outcomes if o.cpu]
    if metered:
        lines += [
            "",
            "CPU during each measured run, as a share of the whole machine (all CPUs); "
            "`other` is every process that is not this benchmark's (a busy machine shows here):",
            "",
            "| scenario | server | postgres | wrk | other | idle | server CPU µs/event "
            "| postgres CPU µs/event | load average after (1/5/15 min) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for o in metered:
            u = o.cpu
            assert u is not None
            per = 1e6 / o.requests if o.requests else 0.0
            lines.append(
                f"| {o.name} | {u.share(u.server):.0f}% | {u.share(u.postgres):.0f}% "
                f"| {u.share(u.wrk):.0f}% | {u.share(u.other):.0f}% | {u.share(u.idle):.0f}% "
                f"| {u.server * per:.0f} | {u.postgres * per:.0f} | {_load(o.load)} |"
            )
    bare, naive = _find(outcomes, "bare-asgi"), _find(outcomes, "naive")
    ratio_rows = []
    for o in outcomes:
        if o.name in ("bare-asgi", "naive", "bulk-file", "plain-copy"):
            continue
        vs_naive = f"{o.rps / naive.rps:.2f}x" if naive and naive.rps else "n/a"
        vs_bare = f"{o.rps / bare.rps:.2f}x" if bare and bare.rps else "n/a"
        ratio_rows.append(f"| {o.name} | {vs_naive} | {vs_bare} |")
    if ratio_rows:
        lines += [
            "",
            "| scenario | ÷ naive receiver | ÷ bare ASGI |",
            "| --- | ---: | ---: |",
            *ratio_rows,
        ]
    bulk, copy = _find(outcomes, "bulk-file"), _find(outcomes, "plain-copy")
    if bulk and copy and copy.rps:
        lines += [
            "",
            "| scenario | ÷ plain COPY of the same rows |",
            "| --- | ---: |",
            f"| bulk-file | {bulk.rps / copy.rps:.2f}x |",
        ]
    lines += goal_table(goals(outcomes))
    busy = [
        f"{o.name} ({o.cpu.share(o.cpu.other):.0f}%)"
        for o in outcomes
        if o.cpu and o.cpu.share(o.cpu.other) > BUSY_LIMIT
    ]
    if busy:
        lines += [
            "",
            "**Warning:** other processes used a large share of the machine during "
            + ", ".join(busy)
            + "; those numbers (and ratios built on them) are low and not comparable. "
            "Run again on an idle machine.",
        ]
    again = [f"{o.name} (attempt {o.attempt} kept)" for o in outcomes if o.attempt > 1]
    if again:
        lines += [
            "",
            "Measured again because other processes were busy during the first attempt: "
            + ", ".join(again)
            + ".",
        ]
    repeats = sum(o.repeats for o in outcomes)
    if repeats:
        lines += ["", f"Note: {repeats} Stripe bodies were sent twice (ran out of unique ones)."]
    return "\n".join(lines) + "\n"


def update_block(path: Path, kind: str, markdown: str, *, heading: str) -> None:
    """Put `markdown` between this kind's markers (`<!-- bench:<kind>:start -->` ...) in
    docs/benchmarks.md, leaving the rest of the page (other benchmarks, analysis) as it
    is. Without the markers, the block goes at the end of the `heading` section, which
    is appended to the page when missing."""
    start, end = f"<!-- bench:{kind}:start -->", f"<!-- bench:{kind}:end -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        path.write_text(head + block + tail)
        return
    if heading not in text:
        text = text.rstrip("\n") + f"\n\n{heading}\n"
    head, rest = text.split(heading, 1)
    # The section ends at the next "## " heading (or the end of the page).
    cut = rest.find("\n## ")
    body, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    path.write_text(head + heading + body.rstrip("\n") + "\n\n" + block + "\n" + tail)
