"""Every route needs the token (but /health), and the served OpenAPI is what the server does."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from roomwatch.logs import register_secret, setup_logging
from storage.records import ActivitySegment, DailyActivity
from storage.writers import write_affiliate_poll, write_cbhours_activity, write_cbhours_live
from tests.factories import AUTH, live, room
from tests.web.pages_support import csrf_of, sign_in
from web.routes import PAGE_PATHS

Client = TestClient[Litestar]
PUBLIC = {"/api/v1/health"}
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def _concrete(path: str) -> str:
    """A request path for a route template: ints become 1, anything else "x"."""
    return _PARAM.sub(lambda m: "1" if m.group(2) == "int" else "x", path)


def test_every_route_but_health_needs_the_token(app: Litestar) -> None:
    """...or is a page, which needs a signed-in session instead (tests/web/test_sign_in.py)."""
    checked: list[str] = []
    pages: list[str] = []
    with TestClient(app) as client:
        for route in app.routes:
            for method in sorted(getattr(route, "methods", {"GET"}) - {"HEAD", "OPTIONS"}):
                path = _concrete(route.path)
                if route.path in PUBLIC:
                    assert client.request(method, path).status_code == 200
                    continue
                if re.match(PAGE_PATHS, route.path):
                    pages.append(f"{method} {route.path}")
                    continue
                response = client.request(method, path)
                assert response.status_code == 401, f"{method} {route.path}"
                wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401, f"{method} {route.path}"
                checked.append(f"{method} {route.path}")
    assert "GET /api/v1/persons" in checked
    assert "GET /api/v1/follow-events" in checked
    assert any(c.startswith("GET /schema") for c in checked)
    assert "GET /users" in pages
    assert "GET /metrics" in checked
    outside = ("/api/v1/", "/schema", "/metrics")
    assert not [c for c in checked if not c.split()[1].startswith(outside)]


def test_every_page_needs_a_session(app: Litestar) -> None:
    """A page answers a bearer token like no credential at all: sign in first."""
    open_paths = {"/login", "/static"}
    with TestClient(app) as client:
        for route in app.routes:
            if not re.match(PAGE_PATHS, route.path) or route.path.startswith(tuple(open_paths)):
                continue
            for method in sorted(getattr(route, "methods", {"GET"}) - {"HEAD", "OPTIONS"}):
                answer = client.request(
                    method, _concrete(route.path), headers=AUTH, follow_redirects=False
                )
                expected = 303 if method == "GET" else 403
                assert answer.status_code == expected, f"{method} {route.path}"


@pytest.fixture
def schema(client: Client) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _params(schema: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in schema["paths"][path]["get"].get("parameters", [])}


def _enum(param: dict[str, Any]) -> list[str]:
    spec = param["schema"]
    for option in [spec, *spec.get("oneOf", [])]:
        if "enum" in option:
            return [value for value in option["enum"] if value is not None]
    return []


def test_schema_lists_the_allowed_values(schema: dict[str, Any]) -> None:
    persons = _params(schema, "/api/v1/persons")
    assert _enum(persons["sort"]) == ["followers", "viewers", "rank", "grank", "last_seen"]
    # A set: equal Literal types share typing's cache, so the order depends on import order.
    assert set(_enum(persons["gender"])) == {"f", "m", "c", "t"}
    assert persons["limit"]["schema"]["minimum"] == 1
    assert persons["limit"]["schema"]["maximum"] == 200
    history = _params(schema, "/api/v1/persons/{username}/history")
    assert _enum(history["metric"]) == ["followers", "rank", "grank", "viewers"]
    assert history["metric"]["required"] is True
    assert "from" in history and "from_" not in history
    assert _enum(_params(schema, "/api/v1/follow-events")["kind"]) == [
        "followed", "unfollowed", "new_follower", "lost_follower",
    ]  # fmt: skip
    history_body = schema["components"]["schemas"]["History"]["properties"]
    assert "from" in history_body and "from_" not in history_body


# A GET route of ours with its enum-valued parameters: the server must accept exactly the values
# the schema lists (and the problem details must name anything else).
ROUTES = [
    ("/api/v1/persons", "/api/v1/persons", {}),
    ("/api/v1/persons/{username}/history", "/api/v1/persons/alice/history", {"metric": "rank"}),
    ("/api/v1/persons/{username}/snapshots", "/api/v1/persons/alice/snapshots", {}),
    ("/api/v1/follow-events", "/api/v1/follow-events", {}),
]


@pytest.mark.parametrize(("template", "path", "base"), ROUTES)
def test_server_accepts_what_the_schema_lists(
    client: Client,
    conn: psycopg.Connection[Any],
    schema: dict[str, Any],
    template: str,
    path: str,
    base: dict[str, str],
) -> None:
    write_affiliate_poll(conn, [room("alice")], observed_at=dt.datetime.now(dt.UTC))
    for name, param in _params(schema, template).items():
        values = _enum(param)
        for value in values:
            response = client.get(path, params={**base, name: value})
            assert response.status_code == 200, (name, value, response.text)
        if values:
            response = client.get(path, params={**base, name: "not-a-listed-value"})
            assert response.status_code == 400
            assert response.json()["field"] == name


def test_schema_needs_the_token(app: Litestar) -> None:
    with TestClient(app) as client:
        assert client.get("/schema/openapi.json").status_code == 401
        assert client.get("/schema/openapi.json", headers=AUTH).status_code == 200


def _conforms(value: Any, spec: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    """Asserts that ``value`` is an instance of the OpenAPI ``spec`` (the subset we emit)."""
    if "$ref" in spec:
        spec = schema["components"]["schemas"][spec["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in spec:
        errors = []
        for option in spec["oneOf"]:
            try:
                _conforms(value, option, schema, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: {value!r} matches no option: {errors}")
    kind = spec.get("type")
    if "enum" in spec:
        assert value in spec["enum"], where
    if kind == "object" and "properties" in spec:
        assert isinstance(value, dict), where
        assert set(value) <= set(spec["properties"]), f"{where}: undocumented {set(value)}"
        assert set(spec.get("required", [])) <= set(value), f"{where}: missing fields"
        for key, item in value.items():
            _conforms(item, spec["properties"][key], schema, f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            _conforms(item, spec.get("items", {}), schema, f"{where}[{index}]")
    elif kind in _JSON_TYPES:
        assert isinstance(value, _JSON_TYPES[kind]), f"{where}: {value!r} is not {kind}"
        if isinstance(value, bool):
            assert kind == "boolean", where
        if spec.get("format") == "date-time":
            dt.datetime.fromisoformat(str(value))
        elif spec.get("format") == "date":
            dt.date.fromisoformat(str(value))


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def test_responses_match_the_schema(
    client: Client, conn: psycopg.Connection[Any], schema: dict[str, Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    write_affiliate_poll(conn, [room("alice", tags=["x"])], observed_at=now - dt.timedelta(hours=1))
    write_cbhours_live(conn, [live("alice"), live("bob", online=False)], observed_at=now)
    write_cbhours_activity(
        conn,
        [
            ActivitySegment(
                username="alice",
                segment_at=now,
                type="_public",
                rank=1,
                grank=1,
                followers=1,
                viewers=1,
                gender="f",
            )
        ],
        [DailyActivity(username="alice", day=now.date(), online_minutes=3, tzo=0)],
        observed_at=now,
    )
    conn.execute(
        "WITH a AS (INSERT INTO accounts (account) VALUES ('owner')) "
        "INSERT INTO follow_events (account, person_id, kind, occurred_at, source) "
        "SELECT 'owner', person_id, 'followed', now(), 'followed_cams' FROM persons"
    )
    requests = [
        ("/api/v1/persons", "/api/v1/persons", {"limit": "1"}),
        ("/api/v1/persons/{username}", "/api/v1/persons/alice", {}),
        ("/api/v1/persons/{username}", "/api/v1/persons/bob", {}),
        ("/api/v1/persons/{username}/history", "/api/v1/persons/alice/history",
         {"metric": "followers", "from": (now - dt.timedelta(days=1)).isoformat()}),
        ("/api/v1/persons/{username}/activity", "/api/v1/persons/alice/activity", {}),
        ("/api/v1/persons/{username}/snapshots", "/api/v1/persons/alice/snapshots", {}),
        ("/api/v1/follow-events", "/api/v1/follow-events", {"limit": "1"}),
        ("/api/v1/persons/{username}", "/api/v1/persons/nobody", {}),
        ("/api/v1/persons", "/api/v1/persons", {"cursor": "x"}),
        ("/api/v1/persons/{username}/history", "/api/v1/persons/alice/history", {}),
    ]  # fmt: skip
    for template, path, params in requests:
        response = client.get(path, params=params)
        documented = schema["paths"][template]["get"]["responses"][str(response.status_code)]
        media_type = response.headers["content-type"].split(";")[0]
        _conforms(response.json(), documented["content"][media_type]["schema"], schema, path)
    assert client.get("/api/v1/persons", params={"limit": "1"}).json()["next_cursor"]


def test_a_nul_in_any_path_parameter_is_a_400_naming_it(app: Litestar, client: Client) -> None:
    """Every route, every method: a NUL in a path parameter never reaches the database (pages:
    once signed in, with the form's token; a stranger is turned away before that)."""
    sign_in(client)
    page_headers = {"X-CSRF-Token": csrf_of(client)}
    probed = []
    for route in app.routes:
        params = _PARAM.findall(route.path)
        if not params or route.path.startswith("/schema"):
            continue
        for method in sorted(getattr(route, "methods", {"GET"}) - {"HEAD", "OPTIONS"}):
            for name, kind in params:
                if kind == "int":
                    continue  # not a string: "1%00" does not even match the route
                path = _PARAM.sub(
                    lambda m, name=name: (
                        "a%00b" if m.group(1) == name else "1" if m.group(2) == "int" else "x"
                    ),
                    route.path,
                )
                headers = page_headers if re.match(PAGE_PATHS, route.path) else None
                response = client.request(method, path, json={}, headers=headers)
                assert response.status_code == 400, f"{method} {path}: {response.text}"
                if re.match(PAGE_PATHS, route.path):  # a page: an HTML page naming the field
                    assert f"{name}: NUL characters are not accepted" in response.text
                    probed.append(f"{method} {route.path}")
                    continue
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["field"] == name, f"{method} {path}"
                probed.append(f"{method} {route.path}")
    assert "GET /api/v1/persons/{username:str}" in probed
    assert "PATCH /api/v1/schedules/{name:str}" in probed
    assert "POST /agent/schedules/{name:str}" in probed


def test_nul_or_junk_in_any_path_never_ends_in_a_500(app: Litestar, client: Client) -> None:
    sign_in(client)  # the pages too, past their sign-in and CSRF checks
    page_headers = {"X-CSRF-Token": csrf_of(client)}
    for route in app.routes:
        for method in sorted(getattr(route, "methods", {"GET"}) - {"HEAD", "OPTIONS"}):
            for junk in ("a%00b", "1%00", "%00", "%ff%fe"):
                path = _PARAM.sub(junk, route.path)
                headers = page_headers if re.match(PAGE_PATHS, route.path) else None
                response = client.request(method, path, json={}, headers=headers)
                assert response.status_code < 500, f"{method} {path}: {response.text}"


def test_an_unexpected_error_is_logged_redacted_and_answered_as_a_bare_problem(
    client: Client, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # A real fault, not a mock: the view the person routes read is gone from this test's database.
    conn.execute("DROP VIEW v_person_current_state CASCADE")
    log_file = tmp_path / "agent.log"
    setup_logging("INFO", log_file)
    register_secret("unexpected-secret-value-9")
    try:
        # The path names a registered secret: the log line must mask it.
        response = client.get("/api/v1/persons/unexpected-secret-value-9")
    finally:
        for handler in logging.getLogger().handlers:
            handler.flush()
        setup_logging("WARNING")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 500 and body["title"] == "Internal Server Error"
    assert "v_person_current_state" not in response.text and "psycopg" not in response.text
    text = log_file.read_text()
    errors = [line for line in text.splitlines() if " ERROR control_api.problems: " in line]
    assert len(errors) == 1, text
    assert "GET /api/v1/persons/*** failed: UndefinedTable" in errors[0]
    assert "Traceback" in text and "unexpected-secret-value-9" not in text
