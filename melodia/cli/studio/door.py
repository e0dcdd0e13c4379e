"""Who may drive the studio: only the musician, through the page the studio served.

What trusted local servers do (Jupyter is the model), as one ASGI layer in front of every route:

- **Host**: a request must name the address the studio listens on (``127.0.0.1``,
  ``localhost``, ``[::1]``, or the ``--host`` given). A page on another site whose name was
  made to point at this computer (DNS rebinding) names its own, and is refused.
- **Token**: a secret made at start, in the address the studio prints and opens. The page
  served for it sets a cookie (``SameSite=Strict``: no other site's request carries it) and
  holds the token for its own requests (``X-Melodia-Token``); every other request needs one of
  them. The page's own files (``/static/...``) need none.
- **Origin**: a request that changes something (any method but GET and HEAD) from a browser
  must come from the studio's own page; ``Origin: null`` and other sites are refused.

Each refusal is ``403`` with ``{"error": "one line"}`` (the page itself: one line of text).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Awaitable, Callable
from urllib.parse import parse_qs

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HEADER = "x-melodia-token"
OPEN = ("/static/",)  # the page's own files: nothing secret, no state

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this computer only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Door:
    """The studio's checks: the ``token``, the names a request may give in Host (besides an
    address literal, where ``open_addresses``: the studio listens beyond this computer) and the
    ``port`` the page's own origin carries."""

    port: int
    names: frozenset[str]
    open_addresses: bool = False
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @classmethod
    def for_host(cls, host: str, port: int) -> "Door":
        """The door of a studio listening on ``host``:``port``."""
        names = set(LOOPBACK) | {host.lower()}
        remote = not is_loopback(host)
        if remote:  # reached by this computer's own names too
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        return cls(port, frozenset(names), remote)

    @property
    def cookie(self) -> str:
        return f"melodia-studio-{self.port}"  # per port: two studios on one computer

    def host_ok(self, header: str) -> bool:
        name = _host_name(header)
        if name in self.names:
            return True
        if not self.open_addresses:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def origin_ok(self, origin: str) -> bool:
        scheme, _, rest = origin.partition("://")
        return scheme == "http" and self.host_ok(rest) and _port(rest) == self.port

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def set_cookie(self) -> str:
        return f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"


def _host_name(header: str) -> str:
    """``[::1]:8765`` -> ``::1``; ``Localhost:8765`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _port(hostport: str) -> int:
    tail = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    digits = tail.rpartition(":")[2] if ":" in tail else ""
    return int(digits) if digits.isdigit() else 80


class Guard:
    """The ASGI layer that applies a :class:`Door` before ``app`` sees a request."""

    def __init__(self, app, door: Door) -> None:
        self.app, self.door = app, door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await _drain(receive)  # so the client hears the refusal, not a reset
            return await _answer(send, 403, refusal, scope["path"].startswith("/api/"))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if scope["path"] == "/" and self.door.token_ok((query.get("token") or [None])[0]):
            # the address with the token: set the cookie, and show the page without it
            return await _redirect(send, "/", self.door.set_cookie())
        return await self.app(scope, receive, send)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Why the request is refused (None: let it in)."""
        door = self.door
        if not door.host_ok(headers.get("host", "")):
            return (f"this studio answers to its own address only, not to "
                    f"{headers.get('host', 'no Host')!r}")
        if scope["method"] not in ("GET", "HEAD") and "origin" in headers and \
                not door.origin_ok(headers["origin"]):
            return f"a request from another page ({headers['origin']}) is refused"
        if scope["path"].startswith(OPEN):
            return None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            cookie = SimpleCookie()
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = [headers.get(HEADER), cookie[door.cookie].value if door.cookie in cookie
                 else None]
        if scope["method"] in ("GET", "HEAD"):
            given += (query.get("token") or [None])[:1]
        if any(door.token_ok(g) for g in given):
            return None
        return ("this studio needs its token: open the address `melodia studio` printed "
                "(it ends in ?token=...)")


async def _drain(receive: Receive, limit: int = 64 * 2**20) -> None:
    """Read (and drop) a refused request's body, up to ``limit`` bytes."""
    size = 0
    while size <= limit:
        message = await receive()
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _answer(send: Send, status: int, message: str, as_json: bool) -> None:
    body = json.dumps({"error": message}).encode() if as_json else message.encode() + b"\n"
    kind = b"application/json" if as_json else b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, where: str, cookie: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", where.encode()), (b"set-cookie", cookie.encode()),
                            (b"content-length", b"0"), (b"referrer-policy", b"no-referrer")]})
    await send({"type": "http.response.body", "body": b""})


__all__ = ["Door", "Guard", "HEADER", "LOOPBACK", "is_loopback"]
