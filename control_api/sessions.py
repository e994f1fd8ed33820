"""``/sessions``: stored login sessions over HTTP — metadata out, cookies in, never cookies out.

The API twin of ``roomwatch login --import`` and ``roomwatch sessions``: the same parser
(``sessions/imports.py``), the same encrypted store (``sessions/store.py``) and the same
logged-in probe. The store is synchronous (files and a short transaction), so it runs in a
worker thread on a connection of its own; the probe drives a headless Chromium in the loop.
An imported cookie file is checked against the site before it is kept, unless ``verify=false``:
cookies that are not logged in are refused (422) and nothing is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException

from control_api.problems import BAD_REQUEST_RESPONSES, PROBLEM_HANDLERS
from roomwatch.config import Config
from roomwatch.errors import SessionError
from sessions.imports import parse_cookies
from sessions.probe import ProbeResult, verify_state
from sessions.store import delete_session, load_session, record_status, save_session
from storage.database import connect
from storage.login_sessions import LoginSession, Status, list_login_sessions

MAX_COOKIE_FILE_BYTES = 1024 * 1024
SessionId = Annotated[int, PathParameter(description="the id `GET /sessions` lists")]
_STATUS: dict[ProbeResult, Status] = {ProbeResult.VALID: "valid", ProbeResult.EXPIRED: "expired"}


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """A probe's outcome for one session.

    Attributes:
        session: the session's metadata after the probe (status updated unless ``unknown``).
        result: ``valid``, ``expired`` or ``unknown`` (site unreachable: status unchanged).
        reason: how the probe decided, for people.
    """

    session: LoginSession
    result: str
    reason: str


def _problem(status: int, title: str, detail: str, field: str) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, extra={"field": field}
    )


def _not_found(exc: SessionError) -> ProblemDetailsException:
    return _problem(404, "Not Found", str(exc), "session_id")


async def stored_sessions(conninfo: str) -> list[LoginSession]:
    """Every stored session's metadata (never its cookies), oldest first."""

    def read() -> list[LoginSession]:
        with connect(conninfo, autocommit=True) as conn:
            return list_login_sessions(conn)

    return await to_thread.run_sync(read)


async def store_imported_cookies(
    config: Config,
    conninfo: str,
    data: bytes,
    *,
    verify: bool = True,
    account: str | None = None,
    field: str = "body",
) -> LoginSession:
    """Parses a cookie file, checks it against the site (unless ``verify`` is false) and
    stores it encrypted: ``POST /sessions`` and the Agent page's cookie import both call this.

    Raises:
        ProblemDetailsException: 400 for a file that is no cookie file (or has no session
            cookie), 422 for cookies that are not logged in; both name ``field`` (where the
            caller took ``data`` from). Nothing is stored then.
    """
    try:
        state = parse_cookies(data, site_url=config.chaturbate.url, source=f"the {field}")
    except SessionError as exc:
        raise _problem(400, "Bad Request", f"{field}: {exc}", field) from None
    status: Status = "unknown"
    if verify:
        outcome = await verify_state(config, state)
        if outcome.result is ProbeResult.EXPIRED:
            raise _problem(
                422,
                "Unprocessable Content",
                f"{field}: these cookies are not logged in ({outcome.reason}); nothing stored",
                field,
            )
        status = "valid" if outcome.result is ProbeResult.VALID else "unknown"
        account = account or outcome.account

    def store() -> LoginSession:
        with connect(conninfo, autocommit=True) as conn:
            return save_session(
                conn, config, state, account=account or "unknown", method="import", status=status
            )

    return await to_thread.run_sync(store)


async def probe_session(config: Config, conninfo: str, session_id: int) -> Verification:
    """Runs the logged-in probe on a stored session; records valid or expired (unknown, the
    site unreachable, leaves the status as it was).

    Raises:
        ProblemDetailsException: 404 naming ``session_id`` for no such session.
    """

    def load() -> tuple[LoginSession, Any]:
        with connect(conninfo, autocommit=True) as conn:
            return load_session(conn, config, session_id)

    try:
        row, state = await to_thread.run_sync(load)
    except SessionError as exc:
        raise _not_found(exc) from None
    outcome = await verify_state(config, state)
    if outcome.result in _STATUS:

        def record() -> LoginSession:
            with connect(conninfo, autocommit=True) as conn:
                return record_status(conn, session_id, _STATUS[outcome.result])

        row = await to_thread.run_sync(record)
    return Verification(session=row, result=outcome.result.value, reason=outcome.reason)


async def remove_session(config: Config, conninfo: str, session_id: int) -> None:
    """Deletes a session's row and its encrypted file.

    Raises:
        ProblemDetailsException: 404 naming ``session_id`` for no such session.
    """

    def remove() -> None:
        with connect(conninfo, autocommit=True) as conn:
            delete_session(conn, config, session_id)

    try:
        await to_thread.run_sync(remove)
    except SessionError as exc:
        raise _not_found(exc) from None


class SessionController(Controller):
    """Login sessions: list, import, verify, delete."""

    path = "/sessions"
    tags = ("sessions",)
    exception_handlers = PROBLEM_HANDLERS

    @get("/", summary="Stored sessions (metadata only)")
    async def list_sessions(self, conninfo: NamedDependency[str]) -> list[LoginSession]:
        return await stored_sessions(conninfo)

    @post(
        "/",
        status_code=201,
        request_max_body_size=MAX_COOKIE_FILE_BYTES,
        summary="Import cookies (extension JSON, Playwright storage state or cookies.txt)",
        responses=BAD_REQUEST_RESPONSES,
    )
    async def import_session(
        self,
        request: Request[Any, Any, Any],
        config: NamedDependency[Config],
        conninfo: NamedDependency[str],
        verify: Annotated[
            bool, QueryParameter(description="check the cookies against the site first")
        ] = True,
        account: Annotated[
            str | None, QueryParameter(max_length=100, description="account name, if known")
        ] = None,
    ) -> LoginSession:
        """Stores the cookies encrypted; answers with the new session's metadata."""
        return await store_imported_cookies(
            config, conninfo, await request.body(), verify=verify, account=account
        )

    @post("/{session_id:int}/verify", status_code=200, summary="Check a session against the site")
    async def verify_session(
        self, session_id: SessionId, config: NamedDependency[Config], conninfo: NamedDependency[str]
    ) -> Verification:
        """Runs the logged-in probe; records valid or expired (unknown leaves the status)."""
        return await probe_session(config, conninfo, session_id)

    @delete("/{session_id:int}", status_code=204, summary="Delete a session and its file")
    async def delete_session(
        self, session_id: SessionId, config: NamedDependency[Config], conninfo: NamedDependency[str]
    ) -> None:
        await remove_session(config, conninfo, session_id)
