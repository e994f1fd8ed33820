"""The owner's API tokens (Events API, Stats API): a deterministic default per account.

The site lets a broadcaster create tokens at ``/statsapi/authtoken/`` and revoke them
(FORMATS.md §6); the simulator gives every account one token from the start, derived from the
username alone, so a test or the demo can compute it (:func:`default_token`) without asking.
A test replaces an account's tokens (several may be valid at once, none revokes them all)
through the owning upstream's state or its ``/_sim/.../token`` control route.
"""

import hashlib
import hmac
import string
import threading
from collections.abc import Iterable

TOKEN_LENGTH = 24
_ALPHABET = string.ascii_letters + string.digits


def default_token(username: str) -> str:
    """The token an account has until a test sets others: 24 letters and digits from its name."""
    digest = int.from_bytes(hashlib.sha256(f"upstream_sim:{username.lower()}".encode()).digest())
    chars = []
    for _ in range(TOKEN_LENGTH):
        digest, index = divmod(digest, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


class TokenBook:
    """Which tokens each account accepts now; thread-safe (tests steer from their own thread)."""

    def __init__(self) -> None:
        """Every account accepts its :func:`default_token` only."""
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, ...]] = {}

    def set(self, username: str, tokens: Iterable[str]) -> None:
        """Replace an account's tokens; an empty list revokes every token of the account."""
        with self._lock:
            self._tokens[username.lower()] = tuple(tokens)

    def tokens(self, username: str) -> tuple[str, ...]:
        """The tokens the account accepts now."""
        with self._lock:
            return self._tokens.get(username.lower(), (default_token(username),))

    def accepts(self, username: str, token: str) -> bool:
        """Whether ``token`` is one of the account's tokens (compared in constant time)."""
        given = token.encode()
        return any(hmac.compare_digest(t.encode(), given) for t in self.tokens(username))

    def reset(self) -> None:
        """Back to the default token for every account."""
        with self._lock:
            self._tokens.clear()
