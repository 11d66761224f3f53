"""Every event name the delivery-platform brief lists, and every name and status word the
catalogue declares, reaches canonical_events with its status; an event that maps to
nothing, or names a restaurant that is not its company's (quarantined), is counted in
marts.unmapped_events, warned about by the Dagster check and shown by
`partner-signals unmapped`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import orjson
import psycopg
import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from cli.main import app
from partner_signals.catalogue.sources import JsonPath, Source, delivery_platform_names, source
from partner_signals.providers import PROVIDERS
from partner_signals.settings import get_settings
from partner_signals.unmapped import read_unmapped
from pipelines.resources import DatabaseResource
from pipelines.signals.unmapped import no_unmapped_events, unmapped_check_result
from tests.pipelines.conftest import run_dbt
from tests.pipelines.service_day import RawEvent, drop_database, land, new_database, register

COMPANY, RESTAURANT = "co-vocab", "dxb-vocab"
# Another company's restaurant, and one nobody registered: COMPANY's signers naming either
# land but are quarantined (issue 12).
OTHER_COMPANY, OTHER_RESTAURANT = "co-vocab-other", "dxb-vocab-other"
GHOST_RESTAURANT = "dxb-vocab-ghost"
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
UNMAPPED_MODELS = ["--select", "canonical_events int_unmapped_events unmapped_events"]
# Incremental runs without the look-back: each reads exactly the raw ids above its bound.
NO_LOOKBACK = ["--vars", "{canonical_lookback_ids: 0}"]
# The models up to unmapped_events. Staging reads ops.restaurants (the quarantine of
# foreign restaurants), so "+" selects that source too; cautious keeps out the tests of
# unbuilt models that only share it (relationships of every mart to ops.restaurants).
UP_TO_UNMAPPED = ["--select", "+unmapped_events", "--indirect-selection", "cautious"]

# The delivery-platform brief: (platform, event name, the order's status word) -> status.
BRIEF: list[tuple[str, str, str, str]] = [
    ("careem", "order.created", "created", "received"),
    ("careem", "order.updated", "preparing", "preparing"),
    ("careem", "order.updated", " Ready_For_Pickup ", "ready"),  # case and blanks ignored
    ("careem", "order.cancelled", "cancelled", "cancelled"),
    ("careem", "order.delivered", "delivered", "delivered"),
    ("talabat", "order_created", "NEW", "received"),
    ("talabat", "order_confirmed", "CONFIRMED", "accepted"),
    ("talabat", "order_cancelled", "CANCELLED", "cancelled"),
    ("talabat", "order_delivered", "DELIVERED", "delivered"),
    ("deliveroo", "order_created", "placed", "received"),
    ("deliveroo", "order_acknowledged", "acknowledged", "accepted"),
    ("deliveroo", "order_cancelled", "cancelled", "cancelled"),
    ("deliveroo", "order_delivered", "delivered", "delivered"),
    ("deliveroo", "order.status_update", "in_kitchen", "preparing"),
    ("jahez", "order_received", "received", "received"),
    ("jahez", "order_confirmed", "confirmed", "accepted"),
    ("jahez", "order_cancelled", "cancelled", "cancelled"),
    ("jahez", "order_delivered", "delivered", "delivered"),
]


def catalogued() -> list[tuple[str, str, str, str]]:
    """Every event name in each platform's `statuses`, and every status word through each
    of its generic update events, with the status the catalogue gives it."""
    cases = []
    for platform in delivery_platform_names():
        delivery = source(platform).delivery
        assert delivery is not None
        if platform == "deliverect":
            continue  # integer codes in the event type: tests/pipelines/test_deliverect.py
        cases += [(platform, name, "", status) for name, status in delivery.statuses.items()]
        cases += [
            (platform, update, word, status)
            for update in delivery.update_events
            for word, status in delivery.status_words.items()
        ]
    return cases


def put(body: dict[str, Any], path: JsonPath, value: Any) -> None:
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def webhook(
    platform: str,
    name: str,
    word: str,
    order_id: str | None,
    minute: int,
    *,
    restaurant: str | None = RESTAURANT,
) -> RawEvent:
    """A platform's order webhook built at the JSON paths of its catalogue entry, as
    ingest lands it (event id and type found by the provider's own identify); without a
    restaurant or order id where None."""
    entry: Source = source(platform)
    delivery = entry.delivery
    assert delivery is not None
    at = START + timedelta(minutes=minute)
    body: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if entry.event_id.json:
        put(body, entry.event_id.json, uuid.uuid4().hex)
    if entry.event_id.header:
        headers[entry.event_id.header] = uuid.uuid4().hex
    put(body, entry.event_type.json, name)
    if restaurant is not None:
        put(body, entry.restaurant.json, restaurant)
    if order_id is not None:
        put(body, delivery.order_id, order_id)
    put(body, delivery.occurred_at, at.isoformat())
    if word:
        put(body, delivery.order_status, word)
    event_id, event_type = PROVIDERS[platform].identify(orjson.loads(orjson.dumps(body)), headers)
    return RawEvent(platform, event_id, event_type, at, body, headers=headers, received_at=at)


def stripe(name: str, minute: int, *, restaurant: str | None = RESTAURANT) -> RawEvent:
    at = START + timedelta(minutes=minute)
    event_id = f"evt_{uuid.uuid4().hex}"
    metadata = {"restaurant_id": restaurant} if restaurant else {}
    body = {"id": event_id, "type": name, "created": int(at.timestamp()),
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 100,
                                "currency": "aed", "metadata": metadata}}}  # fmt: skip
    return RawEvent("stripe", event_id, name, at, body, received_at=at)


def paypal(name: str, minute: int, restaurant: str = RESTAURANT) -> RawEvent:
    at = START + timedelta(minutes=minute)
    event_id = f"WH-{uuid.uuid4().hex}"
    body = {"id": event_id, "event_type": name, "resource": {"custom_id": f"{restaurant}:o"}}
    return RawEvent("paypal", event_id, name, at, body, received_at=at)


def pos(name: str, minute: int, *, order_id: str | None = "p-1") -> RawEvent:
    at = START + timedelta(minutes=minute)
    event_id = f"pos-{uuid.uuid4().hex}"
    body = {"event_id": event_id, "type": name, "occurred_at": at.isoformat(),
            "restaurant_id": RESTAURANT, "order_id": order_id, "data": {}}  # fmt: skip
    return RawEvent("pos", event_id, name, at, body, restaurant_id=RESTAURANT, received_at=at)


def deliverect(status: int, minute: int, *, ignored: bool = False) -> RawEvent:
    at = START + timedelta(minutes=minute)
    body = {"orderId": f"dl-{minute}", "status": status, "timeStamp": at.isoformat(),
            "location": RESTAURANT, "isIgnoredPOSStatus": ignored}  # fmt: skip
    event_id, event_type = PROVIDERS["deliverect"].identify(orjson.loads(orjson.dumps(body)), {})
    return RawEvent("deliverect", event_id, event_type, at, body, received_at=at)


MAPPED = [(*case, f"b-{i}") for i, case in enumerate(BRIEF)] + [
    (*case, f"c-{i}") for i, case in enumerate(catalogued())
]
# Invented or unused names: (source, name) -> (reason, how many land in the first batch).
UNMAPPED_FIRST = {
    ("careem", "order.refunded"): ("unknown_event", 2),
    ("careem", "order.updated"): ("unknown_status", 1),  # status word "teleported"
    ("talabat", "order_exploded"): ("unknown_event", 1),
    ("stripe", "customer.created"): ("unknown_event", 1),
    ("paypal", "PAYMENT.SALE.COMPLETED"): ("unknown_event", 1),
    ("pos", "order.teleported"): ("unknown_event", 1),
    ("deliverect", "121"): ("unknown_event", 1),
    # Mapped names, quarantined: the restaurant is another company's, or nobody's.
    ("stripe", "payment_intent.succeeded"): ("foreign_restaurant", 1),
    ("careem", "order.created"): ("foreign_restaurant", 1),
    ("paypal", "PAYMENT.CAPTURE.COMPLETED"): ("foreign_restaurant", 1),
    # Mapped names, but missing an id their type needs: left out of canonical_events.
    ("talabat", "order_created"): ("no_restaurant_id", 1),
    ("jahez", "order_received"): ("no_order_id", 1),
    ("stripe", "payment_intent.payment_failed"): ("no_restaurant_id", 1),
    ("pos", "order.item_added"): ("no_order_id", 1),
    ("pos", "table.seated"): ("no_table_id", 1),
}


def first_batch() -> list[RawEvent]:
    minute = iter(range(10_000))
    events = [webhook(p, name, word, order, next(minute)) for p, name, word, _, order in MAPPED]
    events += [
        webhook("careem", "order.refunded", "refunded", "u-1", next(minute)),
        webhook("careem", "order.refunded", "refunded", "u-2", next(minute)),
        webhook("careem", "order.updated", "teleported", "u-3", next(minute)),
        webhook("talabat", "order_exploded", "", "u-4", next(minute)),
        stripe("customer.created", next(minute)),
        paypal("PAYMENT.SALE.COMPLETED", next(minute)),
        pos("order.teleported", next(minute)),
        deliverect(121, next(minute)),
        webhook("talabat", "order_created", "NEW", "n-1", next(minute), restaurant=None),
        webhook("jahez", "order_received", "received", None, next(minute)),
        stripe("payment_intent.payment_failed", next(minute), restaurant=None),
        pos("order.item_added", next(minute), order_id=None),
        pos("table.seated", next(minute)),  # no table_id
        # Deliberately ignored: listed in the catalogue entry, or flagged not applied.
        stripe("charge.succeeded", next(minute)),
        paypal("CHECKOUT.ORDER.APPROVED", next(minute)),
        deliverect(40, next(minute)),
        deliverect(50, next(minute), ignored=True),
        # Signed for COMPANY, naming a restaurant that is not COMPANY's.
        stripe("payment_intent.succeeded", next(minute), restaurant=OTHER_RESTAURANT),
        webhook(
            "careem",
            "order.created",
            "created",
            "foreign-1",
            next(minute),
            restaurant=OTHER_RESTAURANT,
        ),
        paypal("PAYMENT.CAPTURE.COMPLETED", next(minute), GHOST_RESTAURANT),
    ]
    return events


@pytest.fixture(scope="module")
def built(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = new_database(server_url, "ps_vocab")
    try:
        with psycopg.connect(url) as conn:
            register(conn, COMPANY, RESTAURANT)
            register(conn, OTHER_COMPANY, OTHER_RESTAURANT)
            land(conn, COMPANY, first_batch())
        run_dbt(url, ["build", *UP_TO_UNMAPPED], tmp_path_factory.mktemp("v"))
        yield url
    finally:
        drop_database(server_url, url)


def unmapped_rows(url: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            select source, provider_event_type, reason, events, sample_raw_id,
                first_received_at, last_received_at, provider_statuses
            from marts.unmapped_events where company_id = %s
            """,
            (COMPANY,),
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def test_every_brief_and_catalogued_name_reaches_canonical_events(built: str) -> None:
    with psycopg.connect(built) as conn:
        rows = conn.execute(
            """
            select source, order_id, delivery_status, type, data ->> 'status'
            from canonical.canonical_events where company_id = %s and order_id like '_-%%'
            """,
            (COMPANY,),
        ).fetchall()
    got = {(r[0], r[1]): r[2] for r in rows}
    expected = {(platform, order): status for platform, _, _, status, order in MAPPED}
    assert got == expected
    assert {r[3] for r in rows} == {"delivery.status_changed"}
    assert all(r[4] == r[2] for r in rows)


def test_an_unmapped_event_is_counted_per_source_and_name(built: str) -> None:
    rows = unmapped_rows(built)
    assert {key: (r[0], r[1]) for key, r in rows.items()} == UNMAPPED_FIRST
    with psycopg.connect(built) as conn:
        refunds = conn.execute(
            """
            select max(id), min(received_at), max(received_at) from raw.webhook_events
            where company_id = %s and event_type = 'order.refunded'
            """,
            (COMPANY,),
        ).fetchone()
    assert refunds is not None
    assert rows[("careem", "order.refunded")][2:5] == refunds
    assert rows[("careem", "order.updated")][5] == ["teleported"]
    # What is ignored on purpose is neither counted nor in canonical_events.
    assert ("stripe", "charge.succeeded") not in rows and ("deliverect", "40") not in rows
    with psycopg.connect(built) as conn:
        # A counted event is never also in canonical_events, and every landed event is
        # one or the other, or ignored on purpose (the four the first batch ignores).
        both, neither = conn.execute(
            """
            select
                (select count(*) from canonical.canonical_events
                    join intermediate.int_unmapped_events using (raw_table, raw_id)),
                (select count(*) from raw.webhook_events) + (select count(*) from raw.order_events)
                - (select count(*) from canonical.canonical_events)
                - (select count(*) from intermediate.int_unmapped_events)
            """
        ).fetchone() or (None, None)
    assert (both, neither) == (0, 4)


def test_the_check_warns_with_counts_and_a_sample(built: str) -> None:
    result = no_unmapped_events(database=DatabaseResource(database_url=built))
    assert isinstance(result, dg.AssetCheckResult)
    assert result.passed is False
    assert result.severity == dg.AssetCheckSeverity.WARN
    metadata: dict[str, Any] = {k: v.value for k, v in result.metadata.items()}
    assert metadata["unmapped_events"] == sum(n for _, n in UNMAPPED_FIRST.values())
    assert metadata["unmapped_names"] == len(UNMAPPED_FIRST)
    assert metadata["by_source"]["careem"] == 4  # 3 unmapped names, 1 quarantined
    sample = metadata["sample"]
    assert (sample["source"], sample["provider_event_type"]) == ("careem", "order.refunded")
    assert (
        sample["raw_id"]
        == metadata["sample_raw_id"]
        == unmapped_rows(built)[("careem", "order.refunded")][2]
    )
    assert "order.refunded" in metadata["unmapped"] and "order.refunded" in str(result.description)


def test_a_foreign_restaurant_is_quarantined(built: str) -> None:
    """Landed (the sender got its 2xx) but in no canonical event, no signal input and no
    other company's data; counted in marts.unmapped_events with its reason."""
    with psycopg.connect(built) as conn:
        landed = conn.execute(
            """
            select count(*) from raw.webhook_events
            where company_id = %s and body like any (array[%s, %s])
            """,
            (COMPANY, f"%{OTHER_RESTAURANT}%", f"%{GHOST_RESTAURANT}%"),
        ).fetchone()
        leaked = conn.execute(
            """
            select count(*) from canonical.canonical_events
            where restaurant_id in (%s, %s) or company_id = %s
            """,
            (OTHER_RESTAURANT, GHOST_RESTAURANT, OTHER_COMPANY),
        ).fetchone()
        staged = conn.execute(
            """
            select count(*) from staging.stg_stripe__payment_events
            where restaurant_id = %s and event_type is null
                and unmapped_reason = 'foreign_restaurant'
            """,
            (OTHER_RESTAURANT,),
        ).fetchone()
    assert landed == (3,) and leaked == (0,) and staged == (1,)
    quarantined = {
        k: v[:2] for k, v in unmapped_rows(built).items() if v[0] == "foreign_restaurant"
    }
    assert quarantined == {k: v for k, v in UNMAPPED_FIRST.items() if v[0] == "foreign_restaurant"}


def test_the_check_passes_when_nothing_is_unmapped() -> None:
    result = unmapped_check_result([])
    assert result.passed is True
    assert {k: v.value for k, v in result.metadata.items()}["unmapped_events"] == 0


def test_the_cli_shows_the_table(built: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", built)
    # rich reads the width when the console is made (at import), not per command.
    monkeypatch.setattr("cli.unmapped.out", Console(width=200))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["unmapped"])
        assert result.exit_code == 0, result.output
        assert "order.refunded" in result.output and "teleported" in result.output
        assert "PAYMENT.SALE.COMPLETED" in result.output and "charge.succeeded" not in result.output
        assert "no_restaurant_id" in result.output and "no_table_id" in result.output
        other = runner.invoke(app, ["unmapped", "--company", "co-nobody"])
        assert other.exit_code == 0 and "No unmapped events" in other.output
    finally:
        get_settings.cache_clear()


def test_the_cli_says_when_the_model_is_not_built(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database(server_url, "ps_vocab_empty")
    try:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["unmapped"])
        assert result.exit_code == 1
        assert "not built yet" in result.output
        with sa.create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1)
        ).connect() as c:
            assert read_unmapped(c) is None
    finally:
        get_settings.cache_clear()
        drop_database(server_url, url)


def test_an_incremental_run_adds_only_what_landed_since(
    server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A first build, then a batch with one more refund and a new name read incrementally
    (the look-back re-reads the first batch): nothing is counted twice; runs without the
    look-back, one with nothing new and one with only mapped events, change nothing."""
    url = new_database(server_url, "ps_vocab_incr")
    try:
        with psycopg.connect(url) as conn:
            register(conn, COMPANY, RESTAURANT)
            land(conn, COMPANY, [
                webhook("careem", "order.refunded", "refunded", "u-1", 0),
                webhook("careem", "order.created", "created", "m-1", 1),
            ])  # fmt: skip
        run_dbt(url, ["build", *UP_TO_UNMAPPED], tmp_path_factory.mktemp("i1"))
        with psycopg.connect(url) as conn:
            land(conn, COMPANY, [
                webhook("careem", "order.refunded", "refunded", "u-2", 2),
                webhook("jahez", "order_teleported", "", "u-3", 3),
                webhook("jahez", "order_confirmed", "confirmed", "m-2", 4),
            ])  # fmt: skip
        # Without the look-back too, so the bound itself is what keeps counts right.
        run_dbt(url, ["build", *UNMAPPED_MODELS], tmp_path_factory.mktemp("i2"))
        run_dbt(
            url,
            ["build", *UNMAPPED_MODELS, *NO_LOOKBACK],
            tmp_path_factory.mktemp("i2b"),
        )
        rows = unmapped_rows(url)
        assert {key: r[:2] for key, r in rows.items()} == {
            ("careem", "order.refunded"): ("unknown_event", 2),
            ("jahez", "order_teleported"): ("unknown_event", 1),
        }
        with psycopg.connect(url) as conn:
            land(conn, COMPANY, [webhook("talabat", "order_confirmed", "", "m-3", 5)])
        run_dbt(
            url,
            ["build", *UNMAPPED_MODELS, *NO_LOOKBACK],
            tmp_path_factory.mktemp("i3"),
        )
        assert unmapped_rows(url) == rows
        with psycopg.connect(url) as conn:
            statuses = conn.execute(
                "select order_id, delivery_status from canonical.canonical_events order by 1"
            ).fetchall()
        assert statuses == [("m-1", "received"), ("m-2", "accepted"), ("m-3", "accepted")]
    finally:
        drop_database(server_url, url)


def test_a_sample_raw_id_leads_to_the_verbatim_body(built: str) -> None:
    with psycopg.connect(built) as conn:
        row = conn.execute(
            "select raw_table, sample_raw_id from marts.unmapped_events "
            "where source = 'pos' and provider_event_type = 'order.teleported' "
            "and company_id = %s",
            (COMPANY,),
        ).fetchone()
        assert row is not None and row[0] == "order_events"
        body = conn.execute("select body from raw.order_events where id = %s", (row[1],)).fetchone()
    assert body is not None and orjson.loads(body[0])["type"] == "order.teleported"


def test_every_sources_sensor_run_refreshes_the_count() -> None:
    """The sensor runs the stored models fed by the sources that landed: the unmapped
    rows and their count are among them for every source."""
    from partner_signals.catalogue.sources import sources
    from pipelines.signals.sensors import affected_models, load_manifest

    manifest = load_manifest()
    for s in sources():
        models = affected_models(manifest, [s.name])
        assert {
            "model.partner_signals.int_unmapped_events",
            "model.partner_signals.unmapped_events",
        } <= models, s.name


def test_the_check_is_on_the_asset_and_the_asset_in_the_ops_group() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.asset_check_keys}
    assert "marts/unmapped_events:no_unmapped_events" in keys
    node = graph.get(dg.AssetKey(["marts", "unmapped_events"]))
    assert node.group_name == "ops"
    assert node.description and "`sample_raw_id`" in node.description


def test_materialize_warns_through_the_check(
    server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`partner-signals materialize` (the signals job in Dagster): the check runs after the
    build, warns, and the run still succeeds."""
    from rich.console import Console

    from partner_signals.settings import Settings
    from pipelines.run import materialize_all

    url = new_database(server_url, "ps_vocab_dagster")
    data_dir = tmp_path_factory.mktemp("vocab-dagster")
    try:
        with psycopg.connect(url) as conn:
            register(conn, COMPANY, RESTAURANT)
            land(
                conn,
                COMPANY,
                [
                    pos("order.teleported", 0),
                    webhook("careem", "order.updated", "preparing", "m-1", 1),
                ],
            )
        settings = Settings(database_url=url, data_dir=data_dir, exports_dir=data_dir / "exports")
        output = data_dir / "progress.txt"
        with output.open("w") as fh:
            ok = materialize_all(settings, console=Console(file=fh, width=160), quiet=True)
        shown = output.read_text()
        assert ok, shown
        assert "warning marts/unmapped_events:no_unmapped_events" in shown
        assert unmapped_rows(url) and set(unmapped_rows(url)) == {("pos", "order.teleported")}
    finally:
        drop_database(server_url, url)
