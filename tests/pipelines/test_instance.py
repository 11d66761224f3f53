"""The generated dagster.yaml: Dagster loads it, and its run monitoring fails a run whose
process is gone, so the sensors count it and retry its window."""

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import MAX_RUNTIME_SECONDS_TAG
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from partner_signals.settings import Settings
from pipelines.instance import (
    MAX_RUNTIME_SECONDS,
    RUN_MAX_RUNTIME_TAG,
    STORAGE_URL_ENV,
    prepare_dagster_home,
)
from pipelines.signals.assets import SIGNALS_JOB_NAME
from pipelines.signals.health import signals_run_health
from tests.pipelines.service_day import drop_database, new_database


@pytest.fixture
def home(server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    url = new_database(server_url, "ps_instance")
    # prepare_dagster_home exports DAGSTER_HOME and the storage URL; undone after the test.
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.setenv(STORAGE_URL_ENV, "")
    try:
        yield prepare_dagster_home(Settings(database_url=url, data_dir=tmp_path))
    finally:
        drop_database(server_url, url)


def test_dagster_loads_the_run_monitoring_it_is_given(home: Path) -> None:
    assert "run_monitoring:" in (home / "dagster.yaml").read_text()
    assert RUN_MAX_RUNTIME_TAG == MAX_RUNTIME_SECONDS_TAG
    with dg.DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == MAX_RUNTIME_SECONDS
        assert instance.run_monitoring_start_timeout_seconds == 180
        # The default launcher cannot resume a run: asking it to would fail every check.
        assert not instance.run_launcher.supports_resume_run
        assert instance.run_monitoring_max_resume_run_attempts == 0


def test_a_run_whose_process_is_gone_is_failed_and_counted(home: Path) -> None:
    """A signals run left STARTED past its limit with no process behind it (no code
    server knows it): the monitoring daemon's check marks it failed."""
    with dg.DagsterInstance.get() as instance:
        run = create_run_for_test(
            instance,
            job_name=SIGNALS_JOB_NAME,
            status=dg.DagsterRunStatus.NOT_STARTED,
            tags={RUN_MAX_RUNTIME_TAG: "1"},
        )
        instance.handle_run_event(
            run.run_id,
            dg.DagsterEvent(
                event_type_value=dg.DagsterEventType.RUN_START.value, job_name=SIGNALS_JOB_NAME
            ),
        )
        time.sleep(1.1)
        (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
        assert record.dagster_run.status == dg.DagsterRunStatus.STARTED
        monitor_started_run(instance, None, record, logging.getLogger(__name__))  # type: ignore[arg-type]
        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
        assert signals_run_health(instance).failed_in_a_row == 1
