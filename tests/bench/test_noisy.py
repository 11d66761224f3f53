"""The noisy-neighbour report: both companies' figures, the ratio to the baseline, the bar."""

from __future__ import annotations

from collections import Counter

from bench.ingest import NoisyPhase, noisy_markdown
from bench.noisy import SideA, SideB, tiny_lines_batch


def side_b(latencies: list[float], errors: int = 0) -> SideB:
    n = len(latencies)
    return SideB(
        sent=n,
        ok=n - errors,
        errors=Counter({"503": errors} if errors else {}),
        latencies_ms=latencies,
    )


def test_the_report_gives_the_ratio_and_fails_errors_or_a_slow_p99() -> None:
    a = SideA(
        requests=100, statuses=Counter({"429": 98, "400": 2}), bytes_sent=100 << 20, seconds=10.0
    )
    phases = [
        NoisyPhase("b-alone", "B alone (baseline)", side_b([10.0] * 100), None),
        NoisyPhase("b-with-a", "B while A floods", side_b([20.0] * 100), a),
        NoisyPhase("b-with-a-unlimited", "B, no limit", side_b([2000.0] * 100), a),
        NoisyPhase("errors", "B with errors", side_b([10.0] * 100, errors=1), a),
    ]
    text = noisy_markdown(phases, "2 CPUs", "20260101T000000Z", 15)
    assert "| B while A floods | 2.00x | **pass** |" in text
    assert "| B, no limit | 200.00x | **FAIL** |" in text
    assert "| B with errors | 1.00x | **FAIL** |" in text
    assert "2 x 400, 98 x 429" in text


def test_a_batch_of_tiny_lines_fills_the_body_limit() -> None:
    body = tiny_lines_batch(1 << 20)
    assert len(body) <= 1 << 20 and body.count(b"\n") == 349_525
