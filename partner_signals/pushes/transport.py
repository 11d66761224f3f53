"""How the worker sends: its own HTTP sender for direct connections, httpx otherwise.

`Transport.send` is the one entry. A request an adapter builds (`build_request`) goes
through the worker's sender below unless a client was given or a proxy is set; an adapter
that overrides `deliver` sends itself through an httpx client.

The sender keeps keep-alive HTTP/1.1 connections per endpoint, one request per connection
at a time. httpx's pool (httpcore's AsyncConnectionPool) walks every connection it holds on
each request, twice, checking each idle one's socket through anyio, and counts idle
connections quadratically: at 16 connections a request cost about 1 ms of CPU, most of a
push's budget. The worker already bounds each endpoint's requests in flight with its own
semaphore, so it needs no pool logic at all: a LIFO list of idle httpcore connections per
endpoint, popped for a request and pushed back when the answer is read, never holds more
connections than the endpoint's limit and costs the same at 1 or 64 connections.

It is used for direct connections only. With a proxy in the environment (HTTP_PROXY,
HTTPS_PROXY, ALL_PROXY) the worker sends through httpx, whose proxy rules apply as before.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import httpcore
import httpx

from partner_signals.adapters import Adapter, Message, Outgoing, Target

# What is kept of a refused message's answer for the error text (itself cut to 300).
ANSWER_CHARS = 1000
# A request body bigger than this is written as it comes instead of held for one send.
HOLD_BYTES = 64 * 1024


_OriginKey = tuple[bytes, bytes, int]


@dataclass(frozen=True)
class Answer:
    """The part of a partner's answer the worker judges and records."""

    status_code: int
    retry_after: str | None
    text: str  # the start of the body, only for answers that are not 2xx

    @classmethod
    def from_httpx(cls, response: httpx.Response) -> Answer:
        ok = 200 <= response.status_code < 300
        return cls(
            response.status_code,
            response.headers.get("retry-after"),
            "" if ok else response.text[:ANSWER_CHARS],
        )


def proxies_in_environment() -> bool:
    """True when httpx (trust_env) would send some request through a proxy."""
    found = urllib.request.getproxies()
    return any(found.get(scheme) for scheme in ("http", "https", "all"))


def _readable(sock: socket.socket | None) -> bool:
    # An idle keep-alive socket with something to read has been closed by the server.
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's anyio stream with two changes: the writes of one request (h11 hands over
    the head and the body separately) go out as one send when the answer is first read,
    which saves a system call per request on both sides; and the keep-alive check polls the
    socket kept from the start instead of building anyio's attribute table each time."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._write_timeout: float | None = None
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._held.append(buffer)
        self._held_bytes += len(buffer)
        self._write_timeout = timeout
        if self._held_bytes >= HOLD_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        data = b"".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        await self._inner.write(data, self._write_timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            # As httpcore does when it writes itself: a server may answer (413, 401)
            # and close before it took the whole request; read what it said.
            with contextlib.suppress(httpcore.WriteError):
                await self._flush()
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held.clear()
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._held:
            await self._flush()
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class Sender:
    """Send one request at a time per connection; connections are kept per (endpoint key,
    origin), so each endpoint's keep-alive connections are its own, as its limit is."""

    def __init__(
        self,
        *,
        timeout: float,
        connect_timeout: float,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # As httpx's defaults: 5 s keep-alive, no redirects followed (httpcore has none).
        self.keepalive_expiry = keepalive_expiry
        self.extensions = {
            "timeout": {
                "connect": connect_timeout,
                "read": timeout,
                "write": timeout,
                "pool": timeout,
            }
        }
        self.backend = _Backend()
        self.idle: dict[tuple[Hashable, _OriginKey], list[httpcore.AsyncHTTPConnection]] = {}
        self.urls: dict[str, tuple[httpcore.URL, httpcore.Origin, _OriginKey]] = {}
        self._ssl = ssl_context
        self.swept_at = time.monotonic()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # httpx's own context: certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set.
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def _url(self, url: str) -> tuple[httpcore.URL, httpcore.Origin, _OriginKey]:
        parsed = self.urls.get(url)
        if parsed is None:
            full = httpcore.URL(url)
            origin = full.origin  # built anew on each access, and not hashable
            parsed = (full, origin, (origin.scheme, origin.host, origin.port))
            if len(self.urls) > 10_000:
                self.urls.clear()
            self.urls[url] = parsed
        return parsed

    async def send(self, key: Hashable, request: Outgoing) -> Answer:
        url, origin, where = self._url(request.url)
        idle = self.idle.setdefault((key, where), [])
        connection = None
        while idle:
            candidate = idle.pop()
            if not candidate.has_expired():
                connection = candidate
                break
            await candidate.aclose()
        if connection is None:
            connection = httpcore.AsyncHTTPConnection(
                origin,
                ssl_context=self._ssl_context() if origin.scheme == b"https" else None,
                keepalive_expiry=self.keepalive_expiry,
                network_backend=self.backend,
            )
        # On an exception (a timeout's cancellation included) httpcore has already closed
        # the connection; it is simply not put back.
        response = await connection.request(
            request.method,
            url,
            headers=list(request.headers.items()),
            content=request.content,
            extensions=self.extensions,
        )
        if connection.is_idle():
            # Looked up again: a sweep may have dropped the list while the request ran.
            self.idle.setdefault((key, where), []).append(connection)
        else:
            await connection.aclose()
        status = response.status
        retry_after = None
        for name, value in response.headers:
            if name.lower() == b"retry-after":
                retry_after = value.decode("latin-1")
        text = ""
        if not 200 <= status < 300:
            text = response.content[: ANSWER_CHARS * 4].decode("utf-8", "replace")[:ANSWER_CHARS]
        return Answer(status, retry_after, text)

    async def sweep(self, every: float = 5.0) -> None:
        """Close idle connections past their keep-alive (a long-running worker's quiet
        endpoints would otherwise keep theirs open until used again)."""
        now = time.monotonic()
        if now - self.swept_at < every:
            return
        self.swept_at = now
        expired: list[httpcore.AsyncHTTPConnection] = []
        for key, idle in list(self.idle.items()):
            keep: list[httpcore.AsyncHTTPConnection] = []
            for connection in idle:
                (expired if connection.has_expired() else keep).append(connection)
            # In place, and before any await: a send may hold this very list.
            idle[:] = keep
            if not keep:
                del self.idle[key]
        for connection in expired:
            await connection.aclose()

    async def aclose(self) -> None:
        idle, self.idle = self.idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()


def connect_timeout(timeout: float) -> float:
    return min(timeout, 5.0)


def make_client(*, timeout: float, connections: int) -> httpx.AsyncClient:
    """A client with `connections` keep-alive connections, no redirects followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout(timeout)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        follow_redirects=False,
    )


def sends_itself(adapter: Adapter) -> bool:
    """An adapter that overrides `deliver` sends its own way (through httpx); the others
    are one `build_request` each, which the worker's sender posts."""
    return type(adapter).deliver is not Adapter.deliver


class Transport:
    """One worker's ways to send, chosen per adapter; endpoint keys are integration ids."""

    def __init__(
        self, *, client: httpx.AsyncClient | None, timeout: float, per_endpoint: int
    ) -> None:
        # A given client serves every endpoint. Otherwise requests go through the
        # worker's sender (no pool scan, a fraction of httpx's CPU per request), except
        # with a proxy in the environment or for an adapter that sends itself: those get
        # an httpx client per endpoint, sized to per_endpoint, since httpx's pool costs
        # more the more connections it holds.
        self.client = client
        self.clients: dict[int, httpx.AsyncClient] = {}
        self.timeout = timeout
        self.per_endpoint = per_endpoint
        self.sender = (
            Sender(timeout=timeout, connect_timeout=connect_timeout(timeout))
            if client is None and not proxies_in_environment()
            else None
        )

    async def send(
        self, integration_id: int, adapter: Adapter, target: Target, message: Message
    ) -> Answer:
        if self.sender is not None and not sends_itself(adapter):
            request = adapter.build_request(target, message, now=time.time())
            return await self.sender.send(integration_id, request)
        client = self._client(integration_id)
        response = await adapter.deliver(client, target, message, now=time.time())
        return Answer.from_httpx(response)

    def _client(self, integration_id: int) -> httpx.AsyncClient:
        if self.client is not None:
            return self.client
        client = self.clients.get(integration_id)
        if client is None:
            client = make_client(timeout=self.timeout, connections=self.per_endpoint)
            self.clients[integration_id] = client
        return client

    async def sweep(self) -> None:
        if self.sender is not None:
            await self.sender.sweep()

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.aclose()
        if self.sender is not None:
            await self.sender.aclose()
