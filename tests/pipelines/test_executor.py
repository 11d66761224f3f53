"""Runs the daemon launches execute their steps in the run's own process: a process per
step loaded the definitions again for each (docs/benchmarks.md, "Freshness through serve")."""

from __future__ import annotations

from pipelines.definitions import build_definitions


def test_every_job_runs_its_steps_in_the_run_process() -> None:
    defs = build_definitions()
    names = [job.name for job in defs.resolve_all_job_defs()]
    assert "signals_job" in names
    for name in names:
        assert defs.resolve_job_def(name).executor_def.name == "in_process", name
