"""The stale-while-revalidate cache: fresh hits, refresh ahead, max stale, shared loads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from partner_signals.cache import Cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A load that counts its calls, answers `value` (or raises `error`), and can be
    held until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.value = "v1"
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> str:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.value


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


async def settle() -> None:
    """Let tasks started by a hit run to their end."""
    for _ in range(5):
        await asyncio.sleep(0)


def make(clock: Clock, **options: Any) -> Cache[str, str]:
    return Cache(ttl=10.0, clock=clock, **options)


def test_a_fresh_value_is_served_without_loading_again() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        assert await cache.get("k", source) == "v1"
        source.value = "v2"
        clock.now += 9.9
        assert await cache.get("k", source) == "v1"
        assert source.calls == 1

    run(body)


def test_past_the_ttl_a_reader_waits_for_a_fresh_value() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        await cache.get("k", source)
        source.value = "v2"
        clock.now += 10.0
        assert await cache.get("k", source) == "v2"
        assert source.calls == 2

    run(body)


def test_the_ttl_runs_from_when_the_load_started() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        source.gate = asyncio.Event()
        reader = asyncio.ensure_future(cache.get("k", source))
        await settle()
        clock.now += 4.0  # the load takes 4 s
        source.gate.set()
        await reader
        source.gate = None
        source.value = "v2"
        clock.now += 6.0  # 10 s after the load started, 6 s after it ended
        assert await cache.get("k", source) == "v2"

    run(body)


def test_refresh_ahead_serves_the_old_value_and_loads_once_in_the_background() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, refresh_ahead=0.5)
        await cache.get("k", source)
        source.value = "v2"
        clock.now += 5.0
        source.gate = asyncio.Event()
        assert await cache.get("k", source) == "v1"
        assert await cache.get("k", source) == "v1"
        await settle()
        assert source.calls == 2  # one background load for both readers
        source.gate.set()
        await settle()
        assert await cache.get("k", source) == "v2"

    run(body)


def test_before_the_refresh_point_a_hit_starts_no_load() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, refresh_ahead=0.5)
        await cache.get("k", source)
        clock.now += 4.9
        await cache.get("k", source)
        await settle()
        assert source.calls == 1

    run(body)


def test_within_max_stale_an_expired_value_is_served_while_it_refreshes() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, max_stale=30.0)
        await cache.get("k", source)
        source.value = "v2"
        clock.now += 39.9
        assert await cache.get("k", source) == "v1"
        await settle()
        assert await cache.get("k", source) == "v2"
        assert source.calls == 2

    run(body)


def test_past_max_stale_a_reader_gets_the_loads_error() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, max_stale=30.0)
        await cache.get("k", source)
        source.error = RuntimeError("database down")
        clock.now += 40.0
        with pytest.raises(RuntimeError, match="database down"):
            await cache.get("k", source)

    run(body)


def test_a_failed_background_refresh_keeps_the_old_value_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, refresh_ahead=0.5, name="a test value")
        await cache.get("k", source)
        source.error = RuntimeError("database down")
        clock.now += 6.0
        assert await cache.get("k", source) == "v1"
        await settle()
        assert await cache.get("k", source) == "v1"

    with caplog.at_level(logging.WARNING, logger="partner_signals.cache"):
        run(body)
    assert "refreshing a test value failed: database down" in caplog.text


def test_concurrent_readers_of_a_missing_key_share_one_load() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        source.gate = asyncio.Event()
        readers = [asyncio.ensure_future(cache.get("k", source)) for _ in range(5)]
        await settle()
        source.gate.set()
        assert await asyncio.gather(*readers) == ["v1"] * 5
        assert source.calls == 1

    run(body)


def test_concurrent_readers_share_the_error_and_the_next_reader_loads_again() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        source.gate = asyncio.Event()
        source.error = RuntimeError("boom")
        readers = [asyncio.ensure_future(cache.get("k", source)) for _ in range(3)]
        await settle()
        source.gate.set()
        results = await asyncio.gather(*readers, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert source.calls == 1
        source.error, source.gate = None, None
        assert await cache.get("k", source) == "v1"

    run(body)


def test_a_reader_that_goes_away_does_not_cancel_the_shared_load() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        source.gate = asyncio.Event()
        first = asyncio.ensure_future(cache.get("k", source))
        second = asyncio.ensure_future(cache.get("k", source))
        await settle()
        first.cancel()
        source.gate.set()
        assert await second == "v1"
        assert cache.peek("k") == "v1"

    run(body)


def test_unknown_answers_are_cached_too() -> None:
    async def body() -> None:
        clock = Clock()
        calls = 0

        async def missing() -> str | None:
            nonlocal calls
            calls += 1
            return None

        cache: Cache[str, str | None] = Cache(ttl=10.0, clock=clock)
        assert await cache.get("made-up", missing) is None
        assert await cache.get("made-up", missing) is None
        assert calls == 1
        clock.now += 10.0
        await cache.get("made-up", missing)
        assert calls == 2  # an unknown id is read again after the ttl

    run(body)


def test_the_size_is_bounded_and_the_oldest_load_goes_first() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, limit=3)
        for key in ("a", "b", "c", "d"):
            await cache.get(key, source)
        assert len(cache) == 3
        assert cache.peek("a") is None
        assert cache.peek("d") == "v1"

    run(body)


def test_a_zero_ttl_keeps_nothing_but_still_shares_a_load() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        # PARTNER_SIGNALS_API_SNAPSHOT_SECONDS=0 turns snapshots off this way.
        cache: Cache[str, str] = Cache(ttl=0.0, max_stale=30.0, clock=clock)
        source.gate = asyncio.Event()
        readers = [asyncio.ensure_future(cache.get("k", source)) for _ in range(3)]
        await settle()
        source.gate.set()
        await asyncio.gather(*readers)
        assert source.calls == 1
        source.gate = None
        await cache.get("k", source)
        assert source.calls == 2
        assert len(cache) == 0

    run(body)


def test_clear_forgets_every_value() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        await cache.get("k", source)
        cache.clear()
        await cache.get("k", source)
        assert source.calls == 2

    run(body)


def test_discard_forgets_one_key_and_keeps_the_others() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        await cache.get("k", source)
        await cache.get("other", source)
        cache.discard("k")
        source.value = "v2"
        assert await cache.get("k", source) == "v2"
        assert await cache.get("other", source) == "v1"
        assert source.calls == 3

    run(body)


@pytest.mark.parametrize("forget", ["discard", "clear"])
def test_a_load_under_way_when_forgotten_is_not_kept_nor_joined(forget: str) -> None:
    """The load may have read the row before the change: its readers get its answer,
    but a reader after the change loads again and nothing old is stored."""

    async def body() -> None:
        clock, old, new = Clock(), Source(), Source()
        cache = make(clock)
        old.gate = asyncio.Event()
        before = asyncio.ensure_future(cache.get("k", old))
        await settle()
        cache.discard("k") if forget == "discard" else cache.clear()
        new.value = "v2"
        assert await cache.get("k", new) == "v2"
        old.gate.set()
        assert await before == "v1"
        assert cache.peek("k") == "v2"
        assert (old.calls, new.calls) == (1, 1)

    run(body)


def test_close_cancels_a_forgotten_load_too() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock)
        source.gate = asyncio.Event()  # never set
        reader = asyncio.ensure_future(cache.get("k", source))
        await settle()
        cache.clear()
        await asyncio.wait_for(cache.close(), 1.0)
        with pytest.raises(asyncio.CancelledError):
            await reader

    run(body)


def test_close_cancels_pending_refreshes() -> None:
    async def body() -> None:
        clock, source = Clock(), Source()
        cache = make(clock, refresh_ahead=0.5)
        await cache.get("k", source)
        clock.now += 6.0
        source.gate = asyncio.Event()  # never set: the refresh hangs
        await cache.get("k", source)
        await settle()
        pending: Awaitable[None] = cache.close()
        await asyncio.wait_for(pending, timeout=1.0)
        assert cache.peek("k") == "v1"

    run(body)


@pytest.mark.parametrize(
    "options", [{"refresh_ahead": 0.0}, {"refresh_ahead": 1.5}, {"max_stale": -1}, {"limit": 0}]
)
def test_nonsense_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Cache(ttl=10.0, **options)
