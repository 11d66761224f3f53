"""Operator tokens and roles over real HTTP: who may do what, and what the trail keeps."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from tests.admin.conftest import Tokens, assert_problem, bearer


def test_no_token_or_a_made_up_one_is_401(admin: httpx.Client) -> None:
    assert_problem(admin.get("/admin/v1/me"), 401, "unauthenticated")
    response = admin.get("/admin/v1/me", headers=bearer("pso_not-a-token"))
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_me_names_the_token_holder(admin: httpx.Client, tokens: Tokens) -> None:
    me = admin.get("/admin/v1/me", headers=bearer(tokens.company_viewer)).json()
    assert me["role"] == "viewer"
    assert me["company_id"] == tokens.company_id


def test_an_admin_creates_an_operator_whose_token_works_once_shown(
    admin: httpx.Client, tokens: Tokens, ids: str, engine: sa.Engine
) -> None:
    created = admin.post(
        "/admin/v1/operators",
        json={"name": f"new-{ids}", "role": "operator"},
        headers={**bearer(tokens.admin), "X-Request-ID": f"req-{ids}"},
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["token_prefix"] == token[:10]
    assert admin.get("/admin/v1/me", headers=bearer(token)).json()["name"] == f"new-{ids}"
    listed = admin.get("/admin/v1/operators", headers=bearer(tokens.admin)).json()
    mine = [o for o in listed if o["name"] == f"new-{ids}"]
    assert mine and "token" not in mine[0] and mine[0]["last_used_at"] is not None
    # the same name again is a clear refusal, not a second holder
    again = admin.post(
        "/admin/v1/operators",
        json={"name": f"new-{ids}", "role": "viewer"},
        headers=bearer(tokens.admin),
    )
    assert_problem(again, 409, "conflict")
    with engine.connect() as conn:
        trail = conn.execute(
            sa.text(
                "select actor, action, request_id, after::text from ops.audit_log where target = :t"
            ),
            {"t": f"operator/new-{ids}"},
        ).one()
        stored = conn.execute(
            sa.text("select string_agg(t::text, ' ') from ops.operators t")
        ).scalar()
    assert trail.actor == f"admin-{ids}"
    assert trail.action == "operators.create"
    assert trail.request_id == f"req-{ids}"
    # the token itself is nowhere: not in the trail, not in the table
    assert token not in trail.after and token not in (stored or "")


def test_a_revoked_token_is_refused_on_the_next_request(
    admin: httpx.Client, tokens: Tokens, ids: str
) -> None:
    assert admin.get("/admin/v1/me", headers=bearer(tokens.viewer)).status_code == 200
    revoked = admin.post(f"/admin/v1/operators/viewer-{ids}/revoke", headers=bearer(tokens.admin))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert_problem(admin.get("/admin/v1/me", headers=bearer(tokens.viewer)), 401, "unauthenticated")
    again = admin.post(f"/admin/v1/operators/viewer-{ids}/revoke", headers=bearer(tokens.admin))
    assert_problem(again, 404, "not_found")


def test_roles_below_admin_cannot_manage_operators(admin: httpx.Client, tokens: Tokens) -> None:
    for token in (tokens.viewer, tokens.operator, tokens.company_viewer):
        assert_problem(admin.get("/admin/v1/operators", headers=bearer(token)), 403, "forbidden")
        made = admin.post(
            "/admin/v1/operators", json={"name": "x", "role": "admin"}, headers=bearer(token)
        )
        assert_problem(made, 403, "forbidden")


def test_a_company_admin_makes_tokens_only_for_its_company(
    admin: httpx.Client, tokens: Tokens, ids: str
) -> None:
    made = admin.post(
        "/admin/v1/operators",
        json={"name": f"cv-{ids}", "role": "viewer"},
        headers=bearer(tokens.company_admin),
    )
    assert made.status_code == 201 and made.json()["company_id"] == tokens.company_id
    elsewhere = admin.post(
        "/admin/v1/operators",
        json={"name": f"cv2-{ids}", "role": "viewer", "company_id": tokens.other_company_id},
        headers=bearer(tokens.company_admin),
    )
    assert_problem(elsewhere, 404, "not_found")
    listed = admin.get("/admin/v1/operators", headers=bearer(tokens.company_admin)).json()
    assert {o["company_id"] for o in listed} == {tokens.company_id}


def test_invalid_values_name_their_field(admin: httpx.Client, tokens: Tokens) -> None:
    bad_role = admin.post(
        "/admin/v1/operators", json={"name": "x", "role": "root"}, headers=bearer(tokens.admin)
    )
    body = assert_problem(bad_role, 422, "validation_failed")
    assert body["errors"][0]["field"] == "role"  # type: ignore[index]
    bad_name = admin.post(
        "/admin/v1/operators", json={"name": "a b", "role": "viewer"}, headers=bearer(tokens.admin)
    )
    assert assert_problem(bad_name, 422, "validation_failed")["errors"][0]["field"] == "name"  # type: ignore[index]
