"""The outbound platform adapter: one order status call, shaped as the platform declares it.

One adapter per platform that declares `delivery.outbound` (partner_signals.platforms.shapes),
named `<platform>-api` like the integration that holds its credentials. The outbox worker
sends its messages as any adapter's: retried with back-off, dead-lettered. Two things differ
from a partner adapter: OAuth platforms get a bearer token first (cached until it expires,
dropped when the platform answers 401), and a 401/403 is a `credentials` fault (ours to
fix in the stored credentials, then replay), not the platform's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from partner_signals.adapters.base import (
    Adapter,
    ConnectionCheck,
    Message,
    Outgoing,
    Target,
    basic_auth,
    dumps,
)
from partner_signals.platforms.shapes import PlatformShape, shapes

USER_AGENT = "partner-signals-platforms/1"
# A token is renewed this long before the platform says it expires.
TOKEN_MARGIN = 30.0
DEFAULT_TOKEN_SECONDS = 300.0


def api_base_url(shape: PlatformShape, config: Mapping[str, Any]) -> str:
    """The integration's configured base URL, else the platform's production URL."""
    return str(config.get("api_base_url") or shape.api_base_url).rstrip("/")


def token_url(shape: PlatformShape, config: Mapping[str, Any]) -> str:
    url = str(config.get("token_url") or shape.auth.token_url)
    return api_base_url(shape, config) + url if url.startswith("/") else url


class PlatformAdapter(Adapter):
    """Sends an order's status to its delivery platform (subscribes to no event or signal:
    the platforms step enqueues its messages)."""

    shape: ClassVar[PlatformShape]
    description: ClassVar[str] = "Order status back to a delivery platform"
    credentials_fault: ClassVar[str] = "credentials"

    def __init__(self) -> None:
        # (integration id, client id) -> (access token, monotonic expiry)
        self._tokens: dict[tuple[int, str], tuple[str, float]] = {}

    def plan_event(self, config: Mapping[str, Any], event: Mapping[str, Any]) -> list[Any]:
        return []

    def auth_headers(self, target: Target, token: str | None) -> dict[str, str]:
        auth = self.shape.auth
        if auth.kind == "oauth_client_credentials":
            return {"authorization": f"Bearer {token}"}
        return {auth.header.lower(): f"{auth.prefix}{target.secrets['api_key']}"}

    def build_request(
        self, target: Target, message: Message, *, now: float, token: str | None = None
    ) -> Outgoing:
        payload = message.payload
        call = self.shape.status_calls[str(payload["status"])]
        method, path, body = call.render(payload)
        return Outgoing(
            method=method,
            url=api_base_url(self.shape, target.config) + path,
            headers={
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                # The same on every retry and replay: a platform that honours it drops the
                # repeat; one that does not gets the same status twice, which it tolerates.
                "idempotency-key": message.idempotency_key,
                **self.auth_headers(target, token),
            },
            content=dumps(body),
        )

    async def token(self, client: httpx.AsyncClient, target: Target) -> str | httpx.Response:
        """A bearer token for this integration, or the token endpoint's refusal."""
        client_id = str(target.secrets.get("client_id", ""))
        key = (target.integration_id, client_id)
        cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        response = await client.post(
            token_url(self.shape, target.config),
            headers={
                "authorization": basic_auth(client_id, str(target.secrets.get("client_secret"))),
                "user-agent": USER_AGENT,
                "accept": "application/json",
            },
            data={"grant_type": "client_credentials"},
        )
        if not 200 <= response.status_code < 300:
            return response
        answer = response.json()
        token = str(answer["access_token"])
        lifetime = float(answer.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        self._tokens[key] = (token, time.monotonic() + max(lifetime - TOKEN_MARGIN, 1.0))
        return token

    async def deliver(
        self, client: httpx.AsyncClient, target: Target, message: Message, *, now: float
    ) -> httpx.Response:
        token: str | None = None
        if self.shape.auth.kind == "oauth_client_credentials":
            got = await self.token(client, target)
            if isinstance(got, httpx.Response):
                return got  # judged as the call's answer: a 401 there is a credentials fault
            token = got
        req = self.build_request(target, message, now=now, token=token)
        response = await client.request(
            req.method, req.url, headers=req.headers, content=req.content
        )
        if response.status_code == 401 and token is not None:
            # Revoked or expired early: the retry asks for a new one.
            self._tokens.pop((target.integration_id, str(target.secrets.get("client_id"))), None)
        return response

    async def test_connection(self, client: httpx.AsyncClient, target: Target) -> ConnectionCheck:
        """OAuth: a token is granted. An API key has no harmless call to try it with."""
        if self.shape.auth.kind != "oauth_client_credentials":
            return ConnectionCheck(True, None, "API key stored; the platform has no test call")
        try:
            got = await self.token(client, target)
        except httpx.HTTPError as exc:
            return ConnectionCheck(False, None, type(exc).__name__)
        if isinstance(got, httpx.Response):
            return ConnectionCheck(False, got.status_code, got.reason_phrase)
        return ConnectionCheck(True, 200, "token granted")


def _make(shape: PlatformShape) -> PlatformAdapter:
    cls = type(
        f"{shape.platform.title()}Adapter",
        (PlatformAdapter,),
        {"name": shape.integration, "shape": shape},
    )
    adapter: PlatformAdapter = cls()
    return adapter


# `<platform>-api` -> its adapter; the outbox worker looks names up here after ADAPTERS.
PLATFORM_ADAPTERS: dict[str, PlatformAdapter] = {s.integration: _make(s) for s in shapes().values()}
