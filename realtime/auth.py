"""The shared token (server.auth_token): who may connect, stream, read the plate log and the metrics.

Socket.IO clients give it on connect (auth: {token}); HTTP scripts as `Authorization: Bearer
<token>`; the dashboard trades it once (POST /session) for an HttpOnly cookie, so its plate
crops and event list load like any page. An address that keeps presenting a wrong token is
refused for a minute (too_many_attempts), even with the right one: guessing costs a minute per
server.max_auth_failures tries, not a millisecond.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from time import monotonic

COOKIE = "plates_session"
WINDOW_S = 60.0  # failed attempts are counted over this long
MAX_ADDRESSES = 10_000  # addresses remembered at most (a flood of them cannot grow memory)


class Refused(Exception):
    """A client the server will not take; `code` tells it why (unauthorized, too_many_attempts,
    too_many_clients)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Gatekeeper:
    token: str  # empty: everyone is let in
    max_failures: int  # wrong tokens an address may present in WINDOW_S
    failures: dict[str, list[float]] = field(default_factory=dict)  # address -> times of its wrong tokens

    @property
    def session(self) -> str:
        """The cookie's value: derived from the token, so the cookie is no Socket.IO or Bearer token."""
        return hmac.new(self.token.encode(), b"plates dashboard session", hashlib.sha256).hexdigest()

    def check(self, address: str | None, token: str | None = None, session: str | None = None) -> None:
        """Let the caller in, or raise Refused; a wrong token counts against its address."""
        if not self.token:
            return
        now, key = monotonic(), address or "?"
        recent = [t for t in self.failures.get(key, ()) if now - t < WINDOW_S]
        if len(recent) >= self.max_failures:
            raise Refused("too_many_attempts", f"too many wrong tokens from here; wait {WINDOW_S:g} s")
        if token is not None and hmac.compare_digest(token.encode(), self.token.encode()):
            return
        if session is not None and hmac.compare_digest(session.encode(), self.session.encode()):
            return
        if token or session:  # nothing presented is not a guess
            if key not in self.failures and len(self.failures) >= MAX_ADDRESSES:
                self.failures.pop(next(iter(self.failures)))
            self.failures[key] = [*recent, now]
        raise Refused("unauthorized", "a valid token is required")


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None
