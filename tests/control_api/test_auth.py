"""The API token: written atomically, never empty or short, only ever read from the header."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.auth import BearerTokenMiddleware, load_or_create_token, token_path
from roomwatch.config import MIN_TOKEN_LENGTH, load_config
from roomwatch.errors import ConfigError
from tests.factories import AUTH, TOKEN

Client = TestClient[Litestar]


def test_a_missing_token_file_is_generated_whole_and_private(tmp_path: Path) -> None:
    config = load_config({"ROOMWATCH_DATA_DIR": str(tmp_path / "data")})
    token = load_or_create_token(config)
    path = token_path(config)
    assert len(token) >= MIN_TOKEN_LENGTH
    assert path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["api-token"]  # no temporary file left
    assert load_or_create_token(config) == token  # kept, not regenerated


@pytest.mark.parametrize(
    "content", ["", "\n", "   \n", "short-token\n", "a b c d e f g h i j k l m n o p"]
)
def test_a_token_file_without_a_usable_token_is_refused_not_replaced(
    tmp_path: Path, content: str
) -> None:
    config = load_config({"ROOMWATCH_DATA_DIR": str(tmp_path)})
    path = token_path(config)
    path.write_text(content)
    with pytest.raises(ConfigError) as failure:
        load_or_create_token(config)
    message = str(failure.value)
    assert str(path) in message and "\n" not in message
    assert path.read_text() == content  # clients may hold a token: never silently replaced


@pytest.mark.parametrize("token", ["", " ", "x" * (MIN_TOKEN_LENGTH - 1)])
def test_the_middleware_refuses_to_guard_with_an_empty_or_short_token(token: str) -> None:
    async def app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
        raise AssertionError("never reached")

    with pytest.raises(ConfigError, match="at least 32 characters"):
        BearerTokenMiddleware(app, token)  # type: ignore[arg-type]


@pytest.mark.parametrize("header", ["Bearer ", "Bearer", "bearer  ", "Bearer x", ""])
def test_an_empty_or_short_credential_never_passes(client: Client, header: str) -> None:
    response = client.get("/api/v1/status", headers={"Authorization": header})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "name", ["token", "Token", "TOKEN", "access_token", "ACCESS_TOKEN", "Api_Token", "AUTH"]
)
def test_a_token_in_the_query_string_is_refused_in_any_spelling(client: Client, name: str) -> None:
    # Even with the right header and the right token in the URL: the URL must not carry it.
    response = client.get(f"/api/v1/status?{name}={TOKEN}", headers=AUTH)
    assert response.status_code == 401
    assert "Authorization header" in response.text
