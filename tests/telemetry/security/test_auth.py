"""BearerAuth: constant-time token checks and session cookies that expire."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from telemetry.security import auth as auth_module
from telemetry.security.auth import SESSION_SECONDS, BearerAuth
from telemetry.security.config import AuthConfig

TOKEN = "5eed0ddba11c0ffee0123456789abcde"
NOW = 1_790_000_000.0


@pytest.fixture
def auth() -> BearerAuth:
    return BearerAuth(AuthConfig(TOKEN))


def test_the_token_is_accepted_in_the_header_or_bare_and_nothing_else(auth: BearerAuth) -> None:
    assert auth.allows(f"Bearer {TOKEN}") and auth.allows(f"bearer  {TOKEN} ")
    assert not auth.allows(f"Basic {TOKEN}") and not auth.allows(None) and not auth.allows(f"Bearer {TOKEN}x")
    assert auth.matches(TOKEN) and not auth.matches(TOKEN[:-1]) and not auth.matches("")


def test_tokens_are_compared_as_digests_of_equal_length(auth: BearerAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    # compare_digest leaks the length of what it compares: it must only ever see two SHA-256 digests.
    seen: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    for sent in ("x", TOKEN, "y" * 500):
        auth.matches(sent)
        auth.allows(f"Bearer {sent}")
    assert seen and set(seen) == {(hashlib.sha256().digest_size,) * 2}


def test_a_session_cookie_hides_the_token_and_expires_after_its_max_age(auth: BearerAuth) -> None:
    value = auth.session_value(NOW)
    assert TOKEN not in value
    assert auth.matches_session(value, NOW) and auth.matches_session(value, NOW + SESSION_SECONDS)
    assert not auth.matches_session(value, NOW + SESSION_SECONDS + 1)
    assert not auth.matches_session(value, NOW - 3600)  # issued in the future


def test_a_forged_or_altered_session_cookie_is_refused(auth: BearerAuth) -> None:
    issued, _, signature = auth.session_value(NOW).partition(".")
    assert not auth.matches_session(f"{int(issued) + 100}.{signature}", NOW + 200)  # a later issue time
    for forged in ("forged", "", ".", f"{issued}.", "1e9.abc", f"{issued}.{signature[:-1]}0"):
        assert not auth.matches_session(forged, NOW)
    assert not BearerAuth(AuthConfig("another-token-0123456789")).matches_session(auth.session_value(NOW), NOW)


def test_without_a_token_everything_passes() -> None:
    open_auth = BearerAuth(AuthConfig())
    assert open_auth.allows(None) and open_auth.matches("") and open_auth.matches_session("x")


def test_a_token_shorter_than_16_characters_is_refused_without_showing_it() -> None:
    (error,) = AuthConfig("short-tok-123").validate()
    assert error.startswith("bearer_token: must be at least 16 characters") and "short-tok" not in error
    assert AuthConfig("0123456789abcdef").validate() == []
