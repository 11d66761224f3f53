"""A sensor's run request executed in this process, as the daemon would launch it: the same
job, assets, checks, run config and tags (tests and the signals benchmark use it)."""

from __future__ import annotations

import dagster as dg

from pipelines.signals.jobs import SIGNALS_JOB_NAME


def execute_request(
    defs: dg.Definitions,
    request: dg.RunRequest,
    instance: dg.DagsterInstance,
    *,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(SIGNALS_JOB_NAME).get_subset(
        asset_selection=set(request.asset_selection or []),
        asset_check_selection=set(request.asset_check_keys or []),
    )
    return job.execute_in_process(
        run_config=request.run_config,
        instance=instance,
        tags=dict(request.tags),
        raise_on_error=raise_on_error,
    )
