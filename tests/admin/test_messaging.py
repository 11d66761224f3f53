"""Messaging over real HTTP and from the CLI: templates per restaurant and language,
opt-ins and opt-outs, a STOP reply signed by Twilio; roles, bad values and the trail."""

from __future__ import annotations

import httpx
import orjson
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from partner_signals.adapters.messaging import twilio_signature
from partner_signals.registry import enable_adapter
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer

runner = CliRunner()
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-admin-7f3e9a1c"
GUEST = "+971501234567"


def run(*args: str, code: int = 0, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == code, result.output
    return result.output


def test_templates_language_and_preview_over_http(
    admin: httpx.Client, tokens: Tokens, ids: str
) -> None:
    base = f"/admin/v1/companies/{tokens.company_id}/restaurants/{tokens.restaurant_id}"
    op, viewer = bearer(tokens.operator), bearer(tokens.company_viewer)

    listed = admin.get(f"{base}/message-templates", headers=viewer).json()
    assert {(t["kind"], t["language"], t["source"], t["audience"]) for t in listed} == {
        ("nudge", "en", "default", "staff"),
        ("receipt", "en", "default", "guest"),
    }
    assert admin.post(f"{base}/message-language", json={"language": "ar"}, headers=op).json() == {
        "restaurant_id": tokens.restaurant_id,
        "language": "ar",
    }
    body = "شكراً {restaurant_name}، الطلب {order_id}: {amount} {currency}"
    saved = admin.post(f"{base}/message-templates/receipt", json={"body": body}, headers=op)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["language"], saved.json()["source"]) == ("ar", "restaurant")
    # A new kind, in English.
    thanks = admin.post(
        f"{base}/message-templates/table_ready",
        json={"body": "Your table {table_id} is ready.", "language": "en"},
        headers=op,
    )
    assert thanks.json()["audience"] == "guest"
    kinds = {(t["kind"], t["language"], t["source"]) for t in admin.get(f"{base}/message-templates", headers=viewer).json()}  # fmt: skip
    assert kinds == {
        ("nudge", "ar", "default"),
        ("receipt", "ar", "restaurant"),
        ("table_ready", "en", "restaurant"),
    }

    preview = admin.post(
        f"{base}/message-templates/receipt/preview",
        json={"values": {"order_id": "o-1", "amount": 45, "currency": "AED"}},
        headers=viewer,
    ).json()
    assert preview["text"] == (
        f"شكراً {tokens.restaurant_id}، الطلب o-1: 45 AED أرسل STOP لإلغاء الاشتراك"
    )

    # Bad values name their field; a viewer may not change; unknown and foreign are 404.
    bad = admin.post(
        f"{base}/message-templates/receipt", json={"body": "Hi {guest_name}"}, headers=op
    )
    assert "{guest_name}" in str(assert_problem(bad, 422, "validation_failed")["detail"])
    assert bad.json()["errors"][0]["field"] == "body"
    bad_kind = admin.post(f"{base}/message-templates/Receipt!", json={"body": "x"}, headers=op)
    assert bad_kind.json()["errors"][0]["field"] == "kind"
    bad_language = admin.post(f"{base}/message-language", json={"language": "arabic"}, headers=op)
    assert bad_language.json()["errors"][0]["field"] == "language"
    assert_problem(
        admin.post(f"{base}/message-templates/receipt", json={"body": "x"}, headers=viewer),
        403,
        "forbidden",
    )
    assert_problem(
        admin.get(
            f"/admin/v1/companies/{tokens.company_id}/restaurants/nope/message-templates",
            headers=viewer,
        ),
        404,
        "not_found",
    )
    assert_problem(
        admin.get(
            f"/admin/v1/companies/{tokens.other_company_id}/restaurants/"
            f"adm-or-{ids}/message-templates",
            headers=viewer,
        ),
        404,
        "not_found",
    )

    trail = admin.get(
        "/admin/v1/audit",
        params={"company_id": tokens.company_id, "action": "messaging."},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [(e["action"], e["actor"]) for e in reversed(trail)] == [
        ("messaging.language_set", f"operator-{ids}"),
        ("messaging.template_set", f"operator-{ids}"),
        ("messaging.template_set", f"operator-{ids}"),
    ]
    assert trail[-2]["after"] == {"body": body}


def test_templates_from_the_cli(cli_env: None, tokens: Tokens) -> None:
    where = ("--company", tokens.company_id, "--restaurant", tokens.restaurant_id)
    assert "set" in run("messaging", "templates", "set", "nudge", *where, "--body", "-",
                        input="Table {table_id}: {minutes_unpaid} min unpaid\n")  # fmt: skip
    rows = orjson.loads(run("messaging", "templates", "list", *where, "--json"))
    nudge = next(r for r in rows if r["kind"] == "nudge")
    assert (nudge["body"], nudge["source"], nudge["language"]) == (
        "Table {table_id}: {minutes_unpaid} min unpaid",
        "restaurant",
        "en",
    )
    shown = run("messaging", "templates", "preview", "nudge", *where,
                "--value", "table_id=T4", "--value", "minutes_unpaid=25")  # fmt: skip
    assert shown.strip() == "Table T4: 25 min unpaid"  # staff: no opt-out line
    error = run("messaging", "templates", "set", "nudge", *where, "--body", "{nope}", code=1)
    assert error.startswith("error: body: unknown variable {nope}")


def test_opt_in_opt_out_and_a_signed_stop_reply(
    cli_env: None,
    admin: httpx.Client,
    admin_url: str,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
) -> None:
    company = tokens.company_id
    consents = f"/admin/v1/companies/{company}/message-consents"
    op = bearer(tokens.operator)
    made = admin.post(consents, json={"contact": GUEST, "source": "booking-form"}, headers=op)
    assert made.status_code == 201, made.text
    assert (made.json()["active"], made.json()["restaurant_id"]) == (True, None)
    bad = admin.post(consents, json={"contact": "0501234567", "source": "pos"}, headers=op)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "contact"
    run("messaging", "consents", "add", "+971509999999", "--company", company,
        "--source", "pos", "--restaurant", tokens.restaurant_id)  # fmt: skip
    assert "opted out" in run("messaging", "opt-out", "+971509999999", "--company", company)

    with engine.begin() as conn:
        conn.execute(
            sa.text("update ops.companies set plan = 'enterprise' where company_id = :c"),
            {"c": company},
        )
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=company,
            adapter="messaging",
            config={"from": "+97140000000"},
            secrets={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
        )
    url = f"{admin_url}/admin/v1/companies/{company}/messaging/replies"
    form = {"From": GUEST, "To": "+97140000000", "Body": "STOP", "AccountSid": ACCOUNT_SID}
    forged = httpx.post(
        url,
        data=form,
        headers={"x-twilio-signature": twilio_signature("x" * 20, url, list(form.items()))},
    )
    assert_problem(forged, 401, "bad_signature")
    assert admin.get(consents, params={"contact": GUEST}, headers=op).json()[0]["active"]
    signed = httpx.post(
        url,
        data=form,
        headers={"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, list(form.items()))},
    )
    assert signed.status_code == 200 and signed.headers["content-type"].startswith("text/xml")
    (after,) = admin.get(consents, params={"contact": GUEST}, headers=op).json()
    assert (after["active"], after["opt_out_source"]) == (False, "reply:STOP")
    # Any other reply changes nothing.
    chat = {**form, "Body": "Thanks, lovely dinner"}
    answered = httpx.post(
        url,
        data=chat,
        headers={"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, list(chat.items()))},
    )
    assert answered.status_code == 200
    assert not admin.get(consents, params={"contact": GUEST}, headers=op).json()[0]["active"]
    listed = orjson.loads(run("messaging", "consents", "list", "--company", company, "--json"))
    assert {r["contact"]: r["opted_out_at"] is not None for r in listed} == {
        GUEST: True,
        "+971509999999": True,
    }
    # The trail has every change, and never the AuthToken.
    trail = admin.get(
        "/admin/v1/audit",
        params={"company_id": company, "action": "messaging."},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [e["action"] for e in reversed(trail)] == [
        "messaging.opt_in",
        "messaging.opt_in",
        "messaging.opt_out",
        "messaging.opt_out",
    ]
    # START: the guest opts back in themselves.
    again = {**form, "Body": "start"}
    httpx.post(
        url,
        data=again,
        headers={"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, list(again.items()))},
    ).raise_for_status()
    (back,) = admin.get(consents, params={"contact": GUEST}, headers=op).json()
    assert (back["active"], back["source"]) == (True, "reply:START")
    assert trail[0]["actor"] == "system:messaging-reply"
    assert AUTH_TOKEN not in orjson.dumps(trail).decode() + forged.text + signed.text
