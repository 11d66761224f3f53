"""The signals runs' health as Prometheus gauges: failed runs in a row count until one
succeeds, read from a real Dagster instance's run records."""

import dagster as dg
from prometheus_client import CollectorRegistry, generate_latest

from pipelines.signals.assets import SIGNALS_JOB_NAME
from pipelines.signals.health import SignalsRunsCollector


class Outcome(dg.Config):
    fail: bool


@dg.op
def build(config: Outcome) -> None:
    if config.fail:
        raise RuntimeError("relation staging.stg_pos__order_events does not exist")


@dg.job(name=SIGNALS_JOB_NAME)
def fake_signals_job() -> None:
    build()


def run(instance: dg.DagsterInstance, *, fail: bool) -> None:
    fake_signals_job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"ops": {"build": {"config": {"fail": fail}}}},
    )


def scrape(collector: SignalsRunsCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_failed_runs_in_a_row_until_one_succeeds() -> None:
    now = [0.0]
    with dg.DagsterInstance.ephemeral() as instance:
        collector = SignalsRunsCollector(lambda: instance, cache_seconds=10, clock=lambda: now[0])
        text = scrape(collector)
        assert "partner_signals_signals_runs_health_up 1.0" in text
        assert "partner_signals_signals_runs_failed_in_a_row 0.0" in text
        assert "last_success_age_seconds" not in text  # no success yet: no age to report

        run(instance, fail=False)
        run(instance, fail=True)
        run(instance, fail=True)
        assert "failed_in_a_row 0.0" in scrape(collector)  # within the cache window
        now[0] += 11
        text = scrape(collector)
        assert "partner_signals_signals_runs_failed_in_a_row 2.0" in text
        assert "partner_signals_signals_last_success_age_seconds" in text

        run(instance, fail=False)
        now[0] += 11
        assert "partner_signals_signals_runs_failed_in_a_row 0.0" in scrape(collector)


def test_unreadable_run_records_say_so_instead_of_failing_the_scrape() -> None:
    def broken() -> dg.DagsterInstance:
        raise RuntimeError("run storage unreachable")

    text = scrape(SignalsRunsCollector(broken))
    assert "partner_signals_signals_runs_health_up 0.0" in text
    assert "failed_in_a_row" not in text
