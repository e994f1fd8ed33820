"""Bearer-token auth for the control API: the token file, and the middleware that checks it.

The token comes from ``api.token`` (ROOMWATCH_API_TOKEN) or is generated on first start into
``data_dir/api-token`` with mode 0600. It is compared in constant time and only ever read from
the ``Authorization`` header: a token in the query string is refused even when it is right, so
it never ends up in access logs or browser history.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from roomwatch.config import Config
from roomwatch.logs import register_secret

TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)
PUBLIC_PATHS = frozenset({"/api/v1/health"})
_QUERY_TOKEN_NAMES = frozenset({"token", "access_token", "api_token", "auth"})


def token_path(config: Config) -> Path:
    """Where the generated token is kept."""
    return config.data_path / TOKEN_FILE


def load_or_create_token(config: Config) -> str:
    """The configured token, else the one in the data dir, generated (0600) on first use."""
    if config.api.token:
        register_secret(config.api.token)
        return config.api.token
    path = token_path(config)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    token = path.read_text().strip()
    register_secret(token)
    return token


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Rejects every request but the public paths unless it carries ``Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app, exclude=[f"^{path}$" for path in PUBLIC_PATHS])
        self._token = token.encode()

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        if _QUERY_TOKEN_NAMES & set(connection.query_params):
            raise NotAuthorizedException(
                "send the API token in the Authorization header, not the URL"
            )
        scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), self._token
        ):
            raise NotAuthorizedException("missing or wrong API token")
        return AuthenticationResult(user="owner", auth=None)
