"""The shipped alert rules and dashboard: promtool accepts them, and they use our metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from api.metrics import LATENCY, REQUESTS
from partner_signals.observability import GAUGE_NAMES
from partner_signals.pushes.metrics import DEAD_LETTERS, DELIVERIES
from partner_signals.pushes.metrics import LATENCY as DELIVERY_LATENCY
from pipelines.signals.health import RUNS_GAUGE_NAMES

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "partner-signals.json"
METRIC = re.compile(r"\bpartner_signals_[a-z0-9_]+")
ALERTS = {
    "PartnerSignalsSignalLagOverGoal",
    "PartnerSignalsSignalsRunsFailing",
    "PartnerSignalsPushesWaiting",
    "PartnerSignalsPushBacklog",
    "PartnerSignalsDeadLettersWaiting",
    "PartnerSignalsUnmappedEventsIncreasing",
    "PartnerSignalsApiErrors",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: `make test` installs it (Debian: apt-get install prometheus)"
        )
    return found


def exported() -> set[str]:
    names = set(GAUGE_NAMES) | set(RUNS_GAUGE_NAMES)
    for counter in (REQUESTS, DELIVERIES, DEAD_LETTERS):
        names.add(f"{counter._name}_total")
    for histogram in (LATENCY, DELIVERY_LATENCY):
        names |= {f"{histogram._name}_{part}" for part in ("bucket", "count", "sum")}
    return names


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_alerts_are_there_and_use_only_metrics_we_export() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= ALERTS
    for rule in rules:
        used = set(METRIC.findall(rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported(), (rule["alert"], used - exported())


def test_the_dashboard_uses_only_metrics_we_export() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used <= exported(), used - exported()
    # Every gauge of the database collector and the API's request metrics are on it.
    assert {n for n in GAUGE_NAMES if n != "partner_signals_gauges_refresh_seconds"} <= used
    assert {
        "partner_signals_api_requests_total",
        "partner_signals_api_request_seconds_bucket",
    } <= used
