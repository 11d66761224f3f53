"""Whether a job has a run that has not finished: the sensors' shared "wait for it" test."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import dagster as dg

# A run in one of these will still read what landed before it started.
ACTIVE_STATUSES = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)


def job_run_active(
    instance: dg.DagsterInstance,
    job_name: str,
    *,
    statuses: Sequence[dg.DagsterRunStatus] = ACTIVE_STATUSES,
    updated_after: datetime | None = None,
) -> bool:
    """One run of `job_name` in `statuses` (heard of since `updated_after`) exists."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=job_name, statuses=list(statuses), updated_after=updated_after
        ),
        limit=1,
    )
    return bool(records)
