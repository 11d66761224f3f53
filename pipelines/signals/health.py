"""How the signals runs are doing, read from Dagster's run records: the last success, the
failures since, and which raw events the last successful run had processed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipelines.runs import ACTIVE_STATUSES, job_run_active
from pipelines.signals.assets import CANONICAL_EVENTS_KEY, SIGNALS_JOB_NAME
from pipelines.signals.raw import RawHighWater

# Run records read to count failures in a row; a longer streak is reported as this many.
RUN_HISTORY = 200
RUN_PAGE = 20
# canonical_events materializations looked through for one from a successful run.
MATERIALIZATION_PAGE = 50
MATERIALIZATION_PAGES = 4
MESSAGE_CHARS = 500
STUCK_AFTER = timedelta(hours=2)
# A run in one of these has not finished: its outcome is still to come.
NOT_FINISHED = (*ACTIVE_STATUSES, dg.DagsterRunStatus.CANCELING)


@dataclass(frozen=True)
class RunHealth:
    """One job's recent history: the last success, the failures since, the newest failure."""

    last_success_at: datetime | None
    failed_in_a_row: int
    last_failure_at: datetime | None
    last_failure_message: str | None
    last_failure_run_id: str | None = None

    @property
    def failing(self) -> bool:
        return self.failed_in_a_row > 0


@dataclass(frozen=True)
class SignalsRunHealth(RunHealth):
    """The signals job's recent history. `processed_high_water` is where the last
    successful run's canonical_events stood: raw rows above it are still to process."""

    processed_high_water: RawHighWater | None = None


def job_run_health(instance: dg.DagsterInstance, job_name: str) -> RunHealth:
    """`job_name`'s finished runs, newest first: failures count until the newest success
    (cancelled runs neither break nor extend a streak)."""
    failed_in_a_row = 0
    last_success_at: datetime | None = None
    last_failure: dg.RunRecord | None = None
    for record in finished_runs(instance, job_name):
        if record.dagster_run.status == dg.DagsterRunStatus.SUCCESS:
            last_success_at = finished_at(record)
            break
        failed_in_a_row += 1
        last_failure = last_failure or record
    if last_failure is None:
        # No failure since the last success; the newest failure before it, if any.
        older = instance.get_run_records(
            filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.FAILURE]),
            limit=1,
        )
        last_failure = older[0] if older else None
    return RunHealth(
        last_success_at=last_success_at,
        failed_in_a_row=failed_in_a_row,
        last_failure_at=finished_at(last_failure) if last_failure else None,
        last_failure_message=(
            failure_message(instance, last_failure.dagster_run.run_id) if last_failure else None
        ),
        last_failure_run_id=last_failure.dagster_run.run_id if last_failure else None,
    )


def signals_run_health(instance: dg.DagsterInstance) -> SignalsRunHealth:
    """The signals job's history, and the raw events its last success had processed."""
    health = job_run_health(instance, SIGNALS_JOB_NAME)
    return SignalsRunHealth(**vars(health), processed_high_water=processed_high_water(instance))


def finished_runs(instance: dg.DagsterInstance, job_name: str) -> Iterator[dg.RunRecord]:
    """The job's succeeded and failed runs, newest first, a page at a time (the newest is
    a success most of the time), at most RUN_HISTORY."""
    cursor: str | None = None
    for _ in range(RUN_HISTORY // RUN_PAGE):
        page = instance.get_run_records(
            filters=dg.RunsFilter(
                job_name=job_name,
                statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            ),
            limit=RUN_PAGE,
            cursor=cursor,
        )
        yield from page
        if len(page) < RUN_PAGE:
            return
        cursor = page[-1].dagster_run.run_id


def finished_at(record: dg.RunRecord) -> datetime:
    stamp = record.end_time or record.start_time
    if stamp is None:
        return record.update_timestamp.astimezone(UTC)
    return datetime.fromtimestamp(stamp, tz=UTC)


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """What failed, in a few lines: the failed step's error (dbt's, for the dbt step),
    else the run's own failure message."""
    entries = instance.all_logs(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    )
    for entry in entries:
        event = entry.dagster_event
        if event is not None and event.is_step_failure:
            error = event.step_failure_data.error
            if error is not None and error.message.strip():
                return error.message.strip()[:MESSAGE_CHARS]
    for entry in entries:
        if entry.dagster_event is not None and entry.dagster_event.message:
            return entry.dagster_event.message.strip()[:MESSAGE_CHARS]
    return None


def processed_high_water(
    instance: dg.DagsterInstance, *, counting_run_id: str | None = None
) -> RawHighWater | None:
    """The raw high water stamped on the newest canonical_events materialization of a run
    that succeeded (or of `counting_run_id`, the run asking); None when there is none.
    A failed run's materialization does not count: what it started is done again."""
    cursor: str | None = None
    for _ in range(MATERIALIZATION_PAGES):
        page = instance.fetch_materializations(
            CANONICAL_EVENTS_KEY, limit=MATERIALIZATION_PAGE, cursor=cursor
        )
        succeeded = successful_run_ids(instance, {record.run_id for record in page.records})
        for record in page.records:
            if record.run_id not in succeeded and record.run_id != counting_run_id:
                continue
            materialization = record.asset_materialization
            if materialization is None:
                continue
            stamp = RawHighWater.from_metadata(
                {key: value.value for key, value in materialization.metadata.items()}
            )
            if stamp is not None:
                return stamp
        if not page.has_more:
            return None
        cursor = page.cursor
    return None


def successful_run_ids(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> set[str]:
    ids = list(run_ids)
    if not ids:
        return set()
    records = instance.get_run_records(
        filters=dg.RunsFilter(run_ids=ids, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    return {record.dagster_run.run_id for record in records}


def signals_run_in_flight(instance: dg.DagsterInstance, *, now: datetime | None = None) -> bool:
    """A signals run queued, starting or running: it reads the raw tables when its dbt
    starts, and its outcome decides what the next one must do. A run not heard of for
    STUCK_AFTER (its process killed with no one to mark it failed) no longer holds the
    sensor back."""
    return job_run_active(
        instance,
        SIGNALS_JOB_NAME,
        statuses=NOT_FINISHED,
        updated_after=(now or datetime.now(UTC)) - STUCK_AFTER,
    )


# What SignalsRunsCollector serves (the alert rules' test checks they name real metrics).
RUNS_GAUGE_NAMES = (
    "partner_signals_signals_runs_health_up",
    "partner_signals_signals_runs_failed_in_a_row",
    "partner_signals_signals_last_success_age_seconds",
    "partner_signals_export_runs_failed_in_a_row",
)


class SignalsRunsCollector(Collector):
    """Prometheus view of `signals_run_health`: runs failed in a row and the age of the
    last success, and the export runs failed in a row, read from Dagster's run records at
    scrape time, at most once per `cache_seconds` (scrapes from several Prometheus
    servers share one read)."""

    def __init__(
        self,
        instance: Callable[[], dg.DagsterInstance],
        *,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._health: SignalsRunHealth | None = None
        self._exports: RunHealth | None = None
        self._up = 0

    def refresh(self) -> None:
        with self._lock:
            if self._read_at is not None and self.clock() - self._read_at < self.cache_seconds:
                return
            # Here, not at the top: the exports domain imports this module.
            from pipelines.exports.assets import EXPORT_JOB_NAME

            try:
                instance = self.instance()
                self._health = signals_run_health(instance)
                self._exports = job_run_health(instance, EXPORT_JOB_NAME)
                self._up = 1
            except Exception:
                self._up = 0
            self._read_at = self.clock()

    def collect(self) -> Iterator[Metric]:
        self.refresh()
        yield GaugeMetricFamily(
            "partner_signals_signals_runs_health_up",
            "1 when Dagster's run records were read at the last refresh",
            value=self._up,
        )
        health = self._health
        if health is None:
            return
        yield GaugeMetricFamily(
            "partner_signals_signals_runs_failed_in_a_row",
            "Signals runs (signals_job) failed since the last one that succeeded",
            value=health.failed_in_a_row,
        )
        if health.last_success_at is not None:
            age = (datetime.now(UTC) - health.last_success_at).total_seconds()
            yield GaugeMetricFamily(
                "partner_signals_signals_last_success_age_seconds",
                "Seconds since the last signals run that succeeded finished",
                value=max(age, 0.0),
            )
        if self._exports is not None:
            yield GaugeMetricFamily(
                "partner_signals_export_runs_failed_in_a_row",
                "Export runs (export_signal_files) failed since the last one that succeeded",
                value=self._exports.failed_in_a_row,
            )
