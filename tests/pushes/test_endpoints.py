"""Endpoint state without a server: slow start, back-off, gone, turns and queues."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from partner_signals.pushes.endpoints import Endpoint, Endpoints
from partner_signals.pushes.policy import Verdict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
DOWN = Verdict("retry", "partner", "HTTP 503")


def endpoint() -> Endpoint:
    return Endpoint(asyncio.Semaphore(2))


def test_a_new_endpoint_may_be_sent_to() -> None:
    assert endpoint().holding_back(NOW) is None


def test_a_partner_failure_backs_off_and_defers_the_others() -> None:
    state = endpoint()
    state.learn(DOWN, LATER, attempt=1, max_attempts=8)
    verdict, due = state.holding_back(NOW) or (None, None)
    assert verdict == Verdict("retry", "partner", "deferred: HTTP 503") and due == LATER
    assert state.holding_back(LATER) is None  # the back-off is over


def test_a_back_off_only_grows() -> None:
    state = endpoint()
    state.learn(DOWN, LATER, attempt=1, max_attempts=8)
    state.learn(DOWN, NOW + timedelta(seconds=5), attempt=1, max_attempts=8)
    assert state.backoff_until == LATER


def test_a_failure_on_the_last_attempt_does_not_back_off() -> None:
    state = endpoint()
    state.learn(DOWN, LATER, attempt=8, max_attempts=8)
    assert state.holding_back(NOW) is None


def test_a_failure_of_ours_does_not_back_off() -> None:
    state = endpoint()
    state.learn(Verdict("retry", "ours", "pool"), LATER, attempt=1, max_attempts=8)
    assert state.holding_back(NOW) is None


def test_an_answer_opens_the_endpoint_and_ends_the_back_off() -> None:
    state = endpoint()
    state.learn(DOWN, LATER, attempt=1, max_attempts=8)
    state.learn(Verdict("failed", "partner", "HTTP 400"), None, attempt=1, max_attempts=8)
    assert state.open and state.holding_back(NOW) is None


def test_a_gone_endpoint_holds_everything_back_until_revived() -> None:
    endpoints = Endpoints(per_endpoint=2, per_endpoint_queue=4)
    state = endpoints.get(7)
    state.learn(Verdict("gone", "partner", "endpoint gone (410)"), None, attempt=1, max_attempts=8)
    assert state.holding_back(NOW) == (Verdict("gone", "partner", "endpoint gone (410)"), None)
    endpoints.revive({7, 8})
    assert state.holding_back(NOW) is None and 8 not in endpoints.states


def test_endpoints_with_a_full_queue_are_listed() -> None:
    endpoints = Endpoints(per_endpoint=2, per_endpoint_queue=4)
    endpoints.get(1).queued = 4
    endpoints.get(2).queued = 3
    assert endpoints.full() == [1]


def test_until_an_endpoint_answers_one_request_probes_it_alone() -> None:
    async def scenario() -> list[str]:
        state, overall, seen = endpoint(), asyncio.Semaphore(10), []

        async def send(name: str) -> None:
            probing = await state.acquire(overall)
            seen.append(f"{name} starts{' (probe)' if probing else ''}")
            await asyncio.sleep(0.01)
            if probing:
                state.learn(Verdict("delivered", "partner", ""), None, attempt=1, max_attempts=8)
            seen.append(f"{name} ends")
            state.release(overall, probing)

        await asyncio.gather(send("a"), send("b"), send("c"))
        return seen

    seen = asyncio.run(scenario())
    assert seen[:2] == ["a starts (probe)", "a ends"]
    assert sorted(seen[2:4]) == ["b starts", "c starts"]  # then up to the endpoint's limit


def test_a_turn_holds_the_endpoint_slot_before_an_overall_one() -> None:
    async def scenario() -> tuple[bool, bool]:
        state, overall = Endpoint(asyncio.Semaphore(1), open=True), asyncio.Semaphore(1)
        await overall.acquire()  # another partner holds the only overall slot
        waiting = asyncio.create_task(state.acquire(overall))
        await asyncio.sleep(0)
        held = state.semaphore.locked()  # taken while it waits for the overall slot
        overall.release()
        probing = await waiting
        state.release(overall, probing)
        return held, not state.semaphore.locked() and not overall.locked()

    held, all_released = asyncio.run(scenario())
    assert held and all_released
