"""Dead letters over real HTTP: listed with filters and a cursor, credentials never shown,
replayed one by one or as a selection and delivered to a real local partner, audited."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from cli.main import app
from partner_signals.pushes import enqueue_events
from partner_signals.pushes.worker import RunSummary, WorkerOptions, deliver_due_sync
from partner_signals.registry import add_restaurant, enable_adapter, ensure_company
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer
from tests.pushes.conftest import (  # noqa: F401 - the partners fixture
    API_KEY,
    WEBHOOK_SECRET,
    Partner,
    Tenant,
    event,
    partners,
)

runner = CliRunner()


def url(company_id: str, tail: str = "") -> str:
    return f"/admin/v1/companies/{company_id}/dead-letters{tail}"


def deliver(engine: sa.Engine, settings: Settings, company_id: str) -> RunSummary:
    return deliver_due_sync(
        engine, key=settings.master_key(), company_id=company_id, options=WorkerOptions()
    )


def refused_pushes(
    engine: sa.Engine, settings: Settings, company_id: str, restaurant_id: str, partner: Partner
) -> None:
    """A webhook and a workforce adapter to a partner that answers 400: three pushes go
    straight to dead letters (a 4xx is not retried)."""
    with engine.begin() as conn:
        ensure_company(conn, company_id=company_id, plan="standard")
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=company_id,
            adapter="webhook",
            config={"url": partner.url + "/hooks"},
            secrets={"secrets": [WEBHOOK_SECRET]},
        )
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=company_id,
            adapter="workforce",
            config={"url": partner.url + "/workforce", "events": ["order.created"]},
            secrets={"api_key": API_KEY},
        )
        tenant = Tenant(company_id, restaurant_id, restaurant_id)
        enqueue_events(conn, [event(tenant, "order.created"), event(tenant, "order.paid")])
    assert deliver(engine, settings, company_id).dead == 3


def test_list_filters_pages_and_never_shows_a_credential(
    admin: httpx.Client,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    # the partner echoes the bearer key it was sent into its error body
    partner = partners(
        respond=lambda r: (400, {}, f"bad key {r.headers.get('authorization')}".encode())
    )
    refused_pushes(engine, settings, tokens.company_id, tokens.restaurant_id, partner)
    # and a credential somehow in a stored reason and payload (a stale worker, an old row)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update ops.outbox set last_error = :e, payload = payload || "
                "cast(:p as jsonb) where company_id = :c and adapter = 'webhook'"
            ),
            {
                "e": f"partner said {WEBHOOK_SECRET}",
                "p": orjson.dumps({"api_token": "tok-123456", "note": API_KEY}).decode(),
                "c": tokens.company_id,
            },
        )

    page = admin.get(url(tokens.company_id), headers=bearer(tokens.company_viewer))
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert len(items) == 3 and page.json()["next_cursor"] is None
    assert {(i["adapter"], i["event_type"]) for i in items} == {
        ("webhook", "order.created"),
        ("webhook", "order.paid"),
        ("workforce", "order.created"),
    }
    assert all(i["fault"] == "partner" and "400" in i["reason"] for i in items)
    for secret in (API_KEY, WEBHOOK_SECRET, "tok-123456"):
        assert secret not in page.text
    webhook = next(i for i in items if i["adapter"] == "webhook")
    assert webhook["payload"]["api_token"] == "[redacted]"
    assert webhook["last_error"] == "partner said [redacted]"

    only = admin.get(
        url(tokens.company_id),
        params={"adapter": "webhook", "event_type": "order.paid"},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [(i["adapter"], i["event_type"]) for i in only] == [("webhook", "order.paid")]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        got = admin.get(url(tokens.company_id), params=params, headers=bearer(tokens.viewer))
        seen += [i["dead_letter_id"] for i in got.json()["items"]]
        cursor = got.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((i["dead_letter_id"] for i in items), reverse=True)

    assert_problem(
        admin.get(url(tokens.company_id), params={"cursor": "nope"}, headers=bearer(tokens.viewer)),
        422,
        "validation_failed",
    )
    assert_problem(
        admin.get(
            url(tokens.company_id), params={"adapter": "telex"}, headers=bearer(tokens.viewer)
        ),
        422,
        "validation_failed",
    )
    assert_problem(
        admin.get(url(tokens.other_company_id), headers=bearer(tokens.company_viewer)),
        404,
        "not_found",
    )
    assert admin.get(url(tokens.other_company_id), headers=bearer(tokens.viewer)).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_replay_one_and_a_selection_reach_the_real_partner(
    admin: httpx.Client,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    partner = partners(respond=lambda r: (400, {}, b"not today"))
    refused_pushes(engine, settings, tokens.company_id, tokens.restaurant_id, partner)
    items = admin.get(url(tokens.company_id), headers=bearer(tokens.viewer)).json()["items"]
    paid = next(i for i in items if i["event_type"] == "order.paid")
    partner.respond = lambda r: (200, {}, b"")
    partner.received.clear()

    one = url(tokens.company_id, f"/{paid['dead_letter_id']}/replay")
    assert_problem(admin.post(one, headers=bearer(tokens.viewer)), 403, "forbidden")
    assert_problem(
        admin.post(
            url(tokens.other_company_id, f"/{paid['dead_letter_id']}/replay"),
            headers=bearer(tokens.operator),
        ),
        404,
        "not_found",
    )
    assert_problem(
        admin.post(url(tokens.company_id, "/999999999/replay"), headers=bearer(tokens.operator)),
        404,
        "not_found",
    )
    replayed = admin.post(one, headers=bearer(tokens.operator))
    assert replayed.json() == {"requeued": 1, "skipped_disabled": 0}, replayed.text
    # twice is harmless: it is no longer waiting
    assert admin.post(one, headers=bearer(tokens.operator)).json()["requeued"] == 0

    assert deliver(engine, settings, tokens.company_id).delivered == 1
    (sent,) = partner.received
    assert Webhook(WEBHOOK_SECRET).verify(sent.body, sent.headers)["type"] == "order.paid"
    assert sent.headers["webhook-id"] == paid["idempotency_key"]  # the same message again

    # a selection needs ids, a filter or all
    selection = url(tokens.company_id, "/replay")
    nothing = admin.post(selection, json={}, headers=bearer(tokens.operator))
    assert assert_problem(nothing, 422, "validation_failed")["errors"][0]["field"] == "ids"  # type: ignore[index]
    by_filter = admin.post(
        selection, json={"adapter": "workforce"}, headers=bearer(tokens.operator)
    ).json()
    assert by_filter == {"requeued": 1, "skipped_disabled": 0}
    rest = admin.post(selection, json={"all": True}, headers=bearer(tokens.operator)).json()
    assert rest["requeued"] == 1
    assert deliver(engine, settings, tokens.company_id).delivered == 2
    assert sorted(r.path for r in partner.received) == ["/hooks", "/hooks", "/workforce"]
    assert admin.get(url(tokens.company_id), headers=bearer(tokens.viewer)).json()["items"] == []

    entries = admin.get(
        "/admin/v1/audit",
        params={"company_id": tokens.company_id, "action": "dead_letters.replay"},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [e["details"]["requeued"] for e in reversed(entries)] == [1, 1, 1]
    assert entries[-1]["details"]["ids"] == [paid["dead_letter_id"]]
    assert {e["actor"] for e in entries} == {f"operator-{tokens.company_id.removeprefix('adm-')}"}


def test_a_disabled_adapters_dead_letters_wait(
    admin: httpx.Client,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    partner = partners(respond=lambda r: (400, {}, b"no"))
    refused_pushes(engine, settings, tokens.company_id, tokens.restaurant_id, partner)
    admin.post(
        f"/admin/v1/companies/{tokens.company_id}/adapters/workforce/disable",
        headers=bearer(tokens.operator),
    )
    result = admin.post(
        url(tokens.company_id, "/replay"), json={"all": True}, headers=bearer(tokens.operator)
    ).json()
    assert result == {"requeued": 2, "skipped_disabled": 1}


def test_the_dead_letters_cli(
    cli_env: None,
    engine: sa.Engine,
    settings: Settings,
    ids: str,
    caplog: pytest.LogCaptureFixture,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    caplog.set_level(logging.DEBUG)
    company, restaurant = f"clid-{ids}", f"clid-r-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=restaurant, timezone="UTC")
    partner = partners(respond=lambda r: (400, {}, b"no"))
    refused_pushes(engine, settings, company, restaurant, partner)

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    listed = orjson.loads(run("dead-letters", "list", "--company", company, "--json"))
    assert len(listed["items"]) == 3
    first = listed["items"][0]["dead_letter_id"]
    assert "webhook" in run("dead-letters", "list", "--company", company)  # a table
    assert run("dead-letters", "replay", "--company", company, str(first)).startswith(
        "1 dead letters re-queued"
    )
    created = [
        i for i in listed["items"][1:] if i["event_type"] == "order.created"
    ]  # still waiting
    assert run(
        "dead-letters", "replay", "--company", company, "--event-type", "order.created"
    ).startswith(f"{len(created)} dead letters re-queued")
    out = run("dead-letters", "replay", "--company", company, code=1)
    assert out.startswith("error: ids:")
    out = run("dead-letters", "replay", "--company", company, "424242424", code=1)
    assert out.startswith("error: no dead letter 424242424")
    assert API_KEY not in caplog.text and WEBHOOK_SECRET not in caplog.text
