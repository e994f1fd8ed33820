"""Bearer-token auth for the control API: the token file, and the middleware that checks it.

The token comes from ``api.token`` (ROOMWATCH_API_TOKEN) or is generated on first start into
``data_dir/api-token`` with mode 0600. It is compared in constant time and only ever read from
the ``Authorization`` header: a token in the query string is refused even when it is right (in
any spelling: ``?Token=``), so it never ends up in access logs or browser history.

A token shorter than :data:`MIN_TOKEN_LENGTH` is refused wherever it comes from: an empty token
file (a crash between creating and writing it) once let ``Authorization: Bearer `` in.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from roomwatch.config import MIN_TOKEN_LENGTH, Config
from roomwatch.errors import ConfigError
from roomwatch.logs import register_secret

TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)
PUBLIC_PATHS = frozenset({"/api/v1/health"})
_QUERY_TOKEN_NAMES = frozenset({"token", "access_token", "api_token", "auth"})


def token_path(config: Config) -> Path:
    """Where the generated token is kept."""
    return config.data_path / TOKEN_FILE


def load_or_create_token(config: Config) -> str:
    """The configured token, else the one in the data dir, generated (0600) on first use.

    Raises:
        ConfigError: the token file holds no usable token. It is not replaced: a token that
            clients already use must not change behind the operator's back, so only a missing
            file is generated.
    """
    if config.api.token:
        register_secret(config.api.token)
        return config.api.token
    path = token_path(config)
    if not path.exists():
        _create_token_file(path, secrets.token_urlsafe(32))
    token = path.read_text(encoding="utf-8", errors="replace").strip()
    if len(token) < MIN_TOKEN_LENGTH or any(char.isspace() for char in token):
        raise ConfigError(
            f"{path}: no valid API token in it (expected one line of at least "
            f"{MIN_TOKEN_LENGTH} characters); delete the file to have a new one generated"
        )
    register_secret(token)
    return token


def _create_token_file(path: Path, token: str) -> None:
    """Writes ``token`` to ``path`` so that no reader ever sees the file empty or half written.

    The token goes to a temporary file in the same folder (0600), is flushed to disk, and the
    file is then linked into place; ``link`` (unlike ``rename``) fails if another process
    created the token file meanwhile, and that process's token is kept. The folder is synced
    last so that the name survives a crash too.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Rejects every request but the public paths unless it carries ``Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str, exclude: str | None = None) -> None:
        """``exclude``: a pattern of further paths left to another check (the web pages')."""
        super().__init__(
            app, exclude=[f"^{path}$" for path in PUBLIC_PATHS] + ([exclude] if exclude else [])
        )
        if len(token) < MIN_TOKEN_LENGTH:
            # Never serve with a token an empty or short credential could match.
            raise ConfigError(f"api.token: expected at least {MIN_TOKEN_LENGTH} characters")
        self._token = token.encode()

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        if _QUERY_TOKEN_NAMES & {name.lower() for name in connection.query_params}:
            raise NotAuthorizedException(
                "send the API token in the Authorization header, not the URL"
            )
        scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
        given = credentials.strip().encode()
        if (
            scheme.lower() != "bearer"
            or len(given) < MIN_TOKEN_LENGTH
            or not hmac.compare_digest(given, self._token)
        ):
            raise NotAuthorizedException("missing or wrong API token")
        return AuthenticationResult(user="owner", auth=None)
