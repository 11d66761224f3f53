"""A failed export run is asked for again by the exports sensor, backing off like the
signals sensor from the second failure in a row, and the streak shows in `status` and a
gauge. Dagster config classes need real annotations: no `from __future__` here."""

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from rich.console import Console

from cli.status import show_export_runs
from pipelines.exports.assets import EXPORT_JOB_NAME, exports_follow_the_data
from pipelines.exports.plan import EXPORTS_UNTIL_TAG
from pipelines.resources import DatabaseResource
from pipelines.signals.health import SignalsRunsCollector, job_run_health
from tests.pipelines.test_runs_gauge import scrape


class Outcome(dg.Config):
    fail: bool


@dg.op
def write_files(config: Outcome) -> None:
    if config.fail:
        raise OSError("No space left on device")


@dg.job(name=EXPORT_JOB_NAME)
def fake_export_job() -> None:
    write_files()


def export_run(instance: dg.DagsterInstance, tags: dict[str, str], *, fail: bool) -> str:
    result = fake_export_job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags=tags,
        run_config={"ops": {"write_files": {"config": {"fail": fail}}}},
    )
    return result.run_id


def test_a_failed_export_run_is_asked_for_again_backing_off_and_shown() -> None:
    """A failed run's days are asked for again (keyed by the failed run, so once per
    failure) whatever the files' position says; from the second failure in a row the
    sensor waits like the signals sensor; status and the gauge show the streak."""
    # The retry path reads only Dagster's run records: no database is reached.
    resources = {"database": DatabaseResource(database_url="postgresql://nobody@127.0.0.1:1/x")}
    sensor_tags = {
        ASSET_PARTITION_RANGE_START_TAG: "2026-03-14",
        ASSET_PARTITION_RANGE_END_TAG: "2026-03-15",
        EXPORTS_UNTIL_TAG: "2026-03-15T10:00:00+00:00",
    }
    with dg.instance_for_test() as instance:

        def tick() -> dg.RunRequest | dg.SkipReason:
            result = exports_follow_the_data(
                dg.build_sensor_context(instance=instance, resources=resources)
            )
            assert isinstance(result, dg.RunRequest | dg.SkipReason)
            return result

        export_run(instance, {}, fail=False)
        failed = export_run(instance, sensor_tags, fail=True)
        retry = tick()
        assert isinstance(retry, dg.RunRequest)
        assert retry.run_key == f"retry of {failed}"
        assert retry.tags == sensor_tags

        # The retry fails too: the next try waits (60 s after the second failure).
        export_run(instance, retry.tags, fail=True)
        waiting = tick()
        assert isinstance(waiting, dg.SkipReason)
        assert "2 export runs failed in a row" in (waiting.skip_message or "")
        assert "write_files" in (waiting.skip_message or "")

        health = job_run_health(instance, EXPORT_JOB_NAME)
        console = Console(width=200, record=True)
        assert show_export_runs(health, console) is False
        assert "2 export runs failed in a row" in console.export_text()
        text = scrape(SignalsRunsCollector(lambda: instance))
        assert "partner_signals_export_runs_failed_in_a_row 2.0" in text

        # A success ends the streak; a failed schedule run is retried as its one day.
        export_run(instance, {}, fail=False)
        assert show_export_runs(job_run_health(instance, EXPORT_JOB_NAME), Console()) is True
        export_run(instance, {PARTITION_NAME_TAG: "2026-03-16"}, fail=True)
        one_day = tick()
        assert isinstance(one_day, dg.RunRequest)
        assert one_day.partition_key == "2026-03-16"
        assert EXPORTS_UNTIL_TAG not in one_day.tags
