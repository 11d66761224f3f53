"""Companies, plans and the audit trail over real HTTP, and the trail's append-only rule."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from partner_signals.control.actor import Actor
from partner_signals.registry import enable_adapter
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer


def test_a_company_bound_token_sees_only_its_company(admin: httpx.Client, tokens: Tokens) -> None:
    listed = admin.get("/admin/v1/companies", headers=bearer(tokens.company_viewer)).json()
    assert [c["company_id"] for c in listed] == [tokens.company_id]
    mine = admin.get(
        f"/admin/v1/companies/{tokens.company_id}", headers=bearer(tokens.company_viewer)
    )
    assert mine.json()["restaurants"] == 1
    # another company is "not found", so a token cannot probe which companies exist
    other = admin.get(
        f"/admin/v1/companies/{tokens.other_company_id}", headers=bearer(tokens.company_viewer)
    )
    assert_problem(other, 404, "not_found")
    assert_problem(
        admin.get("/admin/v1/companies/no-such-company", headers=bearer(tokens.admin)),
        404,
        "not_found",
    )


def test_set_plan_is_for_unbound_admins_and_is_audited(admin: httpx.Client, tokens: Tokens) -> None:
    url = f"/admin/v1/companies/{tokens.company_id}/set-plan"
    for token in (tokens.operator, tokens.company_admin):
        assert_problem(
            admin.post(url, json={"plan": "enterprise"}, headers=bearer(token)), 403, "forbidden"
        )
    bad = admin.post(url, json={"plan": "gold"}, headers=bearer(tokens.admin))
    assert assert_problem(bad, 422, "validation_failed")["errors"] == [
        {"field": "plan", "message": "one of starter, standard, enterprise"}
    ]
    done = admin.post(url, json={"plan": "enterprise"}, headers=bearer(tokens.admin))
    assert done.json()["plan"] == "enterprise"
    trail = admin.get(
        "/admin/v1/audit",
        params={"company_id": tokens.company_id, "action": "companies.set_plan"},
        headers=bearer(tokens.company_viewer),
    ).json()["items"]
    assert [(e["before"], e["after"]) for e in trail] == [
        ({"plan": "standard"}, {"plan": "enterprise"})
    ]


def test_a_plan_is_not_lowered_under_an_enabled_adapter(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine, settings: Settings
) -> None:
    url = f"/admin/v1/companies/{tokens.company_id}/set-plan"
    assert (
        admin.post(url, json={"plan": "standard"}, headers=bearer(tokens.admin)).status_code == 200
    )
    with engine.begin() as conn:
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=tokens.company_id,
            adapter="workforce",
            secrets={"api_key": "wf-secret-value-0123456789abcdef"},
            config={"url": "http://127.0.0.1:9/workforce", "location_id": "loc-1"},
        )
    refused = admin.post(url, json={"plan": "starter"}, headers=bearer(tokens.admin))
    assert "workforce" in assert_problem(refused, 409, "conflict")["detail"]  # type: ignore[operator]


def test_the_audit_trail_pages_with_a_cursor_and_filters(
    admin: httpx.Client, tokens: Tokens
) -> None:
    url = f"/admin/v1/companies/{tokens.company_id}/set-plan"
    for plan in ("enterprise", "standard", "enterprise", "standard"):
        assert admin.post(url, json={"plan": plan}, headers=bearer(tokens.admin)).status_code == 200
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, "action": "companies.", **({"cursor": cursor} if cursor else {})}
        page = admin.get(
            f"/admin/v1/companies/{tokens.company_id}/audit",
            params=params,
            headers=bearer(tokens.viewer),
        ).json()
        seen += [e["audit_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and seen == sorted(seen, reverse=True)
    bad = admin.get("/admin/v1/audit", params={"cursor": "nonsense"}, headers=bearer(tokens.viewer))
    assert_problem(bad, 422, "validation_failed")
    # a company-bound viewer asking for another company's trail is told it does not exist
    other = admin.get(
        "/admin/v1/audit",
        params={"company_id": tokens.other_company_id},
        headers=bearer(tokens.company_viewer),
    )
    assert_problem(other, 404, "not_found")


def test_the_audit_log_refuses_updates_and_deletes(engine: sa.Engine, tokens: Tokens) -> None:
    for statement in ("update ops.audit_log set actor = 'x'", "delete from ops.audit_log"):
        with pytest.raises(sa.exc.ProgrammingError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))


def test_secret_named_fields_never_reach_the_trail(engine: sa.Engine, ids: str) -> None:
    from partner_signals.control import audit

    with engine.begin() as conn:
        audit.record(
            conn,
            Actor.cli(),
            action="test.record",
            target=f"test/{ids}",
            company_id=None,
            after={"webhook_secret": "s3cr3t-value", "nested": {"api_token": "t0k3n"}, "ok": 1},
        )
        stored = conn.execute(
            sa.text("select after::text from ops.audit_log where target = :t"), {"t": f"test/{ids}"}
        ).scalar()
    assert "s3cr3t-value" not in stored and "t0k3n" not in stored and '"ok": 1' in stored
