"""An operator's whole day with one integration, over real HTTP: enable Deliveroo for a
restaurant, test it, see a real signed webhook through a real ingest arrive in its
status, disable it, see the next webhook refused 404, and find all of it in the trail."""

from __future__ import annotations

import time
import uuid

import httpx
import orjson

from partner_signals.providers import PROVIDERS
from tests.admin.conftest import Tokens, bearer

SECRET = "whsec_e2e_" + uuid.uuid4().hex


def deliveroo_webhook(ingest: httpx.Client, company: str, restaurant: str) -> httpx.Response:
    guid = str(uuid.uuid4())
    body = orjson.dumps(
        {
            "event": "order.status_update",
            "body": {
                "order": {"id": f"o-{guid[:8]}", "location_id": restaurant, "status": "accepted"},
                "occurred_at": "2026-12-04T12:00:00Z",
            },
        }
    )
    headers = PROVIDERS["deliveroo"].sign(body, SECRET, time.time(), guid)
    return ingest.post(
        f"/webhooks/deliveroo/{company}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


def test_enable_test_receive_disable_refuse_and_audit(
    admin: httpx.Client, ingest_url: str, tokens: Tokens
) -> None:
    company, restaurant = tokens.company_id, tokens.restaurant_id
    op = bearer(tokens.operator)
    base = f"/admin/v1/companies/{company}/integrations/deliveroo"

    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        # never enabled: refused as unknown
        before = deliveroo_webhook(ingest, company, restaurant)
        assert before.status_code == 404, before.text

        enabled = admin.post(
            f"{base}/enable", json={"secret": SECRET, "restaurant_id": restaurant}, headers=op
        )
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["enabled"] is True
        assert enabled.json()["restaurants"] == [restaurant]

        tested = admin.post(f"{base}/test", json={"restaurant_id": restaurant}, headers=op)
        assert tested.status_code == 200, tested.text
        result = tested.json()
        assert result["verified"] is True and result["accepted"] is True
        assert result["landed"] is False
        assert result["mapping"] == "mapped" and result["canonical_status"] == "received"

        sent = deliveroo_webhook(ingest, company, restaurant)
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "accepted"

        status = admin.get(f"{base}/status", headers=bearer(tokens.company_viewer)).json()
        # the test landed nothing: the one event is the real webhook
        assert status["events_last_hour"] == 1
        assert status["last_event_at"] is not None
        # the refusal before enabling is counted by its reason
        assert {r["reason"]: r["last_hour"] for r in status["rejections"]} == {"unknown_company": 1}

        disabled = admin.post(f"{base}/disable", headers=op)
        assert disabled.json()["enabled"] is False
        # ingest hears the change by NOTIFY: refused within a second
        deadline = time.monotonic() + 1.0
        while True:
            refused = deliveroo_webhook(ingest, company, restaurant)
            if refused.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert refused.status_code == 404, refused.text

        # exactly as for a company that never enabled it (but its own request id)
        def same(answer: httpx.Response) -> dict[str, object]:
            body = dict(answer.json())
            body.pop("request_id")
            return body

        assert same(refused) == same(before)

    trail = admin.get(
        "/admin/v1/audit",
        params={"company_id": company, "action": "integrations."},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [(e["action"], e["actor"]) for e in reversed(trail)] == [
        ("integrations.enable", f"operator-{tokens.company_id.removeprefix('adm-')}"),
        ("integrations.test", f"operator-{tokens.company_id.removeprefix('adm-')}"),
        ("integrations.disable", f"operator-{tokens.company_id.removeprefix('adm-')}"),
    ]
    assert all(e["target"].endswith(f"restaurant/{restaurant}/provider/deliveroo") for e in trail)
    assert SECRET not in orjson.dumps(trail).decode()
