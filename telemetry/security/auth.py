"""Bearer-token authentication (RFC 6750), shared by every server: one token, compared in constant time.

Tokens are compared as SHA-256 digests with ``hmac.compare_digest``: equal lengths whatever was sent,
so the time taken says nothing about the token's length either. A browser's session cookie is
``<issued-at>.<HMAC-SHA256 keyed with the token over it>``: it expires ``SESSION_SECONDS`` after it was
issued, does not reveal the token, and stops working when the token changes.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from telemetry.security.config import AuthConfig

REALM = "meshscope"
UNAUTHENTICATED = "unauthenticated"  # the parse-error reason refused requests are counted under


SESSION_SECONDS = 12 * 3600
_CLOCK_SKEW = 60  # a cookie "issued" this far in the future still counts (a clock stepped back)


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` values against the configured token (none: all pass)."""

    def __init__(self, config: AuthConfig) -> None:
        self._token = config.bearer_token.encode()
        self._digest = hashlib.sha256(self._token).digest()

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def allows(self, authorization: str | None) -> bool:
        if not self._token:
            return True
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and self._equal(credentials.strip())

    def matches(self, token: str) -> bool:
        """A bare token (from a query parameter): the same constant-time comparison."""
        return not self._token or self._equal(token)

    def _equal(self, token: str) -> bool:
        return hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest)

    def session_value(self, now: float | None = None) -> str:
        """A cookie value that stands for the token, without revealing it, until SESSION_SECONDS from now."""
        issued = str(int(time.time() if now is None else now))
        return f"{issued}.{self._sign(issued)}"

    def matches_session(self, value: str, now: float | None = None) -> bool:
        if not self._token:
            return True
        issued, _, signature = value.partition(".")
        if not issued.isascii() or not issued.isdigit() or len(issued) > 12:
            return False
        age = (time.time() if now is None else now) - int(issued)
        if not -_CLOCK_SKEW <= age <= SESSION_SECONDS:
            return False
        return hmac.compare_digest(signature.encode(), self._sign(issued).encode())

    def _sign(self, issued: str) -> str:
        return hmac.new(self._token, f"meshscope-ui-session:{issued}".encode(), hashlib.sha256).hexdigest()


def challenge(authorization: str | None) -> str:
    """The WWW-Authenticate value of a 401: ``invalid_token`` when a token was sent and was wrong."""
    if authorization:
        return f'Bearer realm="{REALM}", error="invalid_token"'
    return f'Bearer realm="{REALM}"'


def refusal(authorization: str | None) -> str:
    """What a refused request is told, the same words on every transport."""
    if authorization:
        return "unauthenticated: the bearer token is not valid"
    return "unauthenticated: send the header 'authorization: Bearer <token>'"
