"""``/sessions``: stored login sessions over HTTP — metadata out, cookies in, never cookies out.

The API twin of ``roomwatch login --import`` and ``roomwatch sessions``: the same parser
(``sessions/imports.py``), the same encrypted store (``sessions/store.py``) and the same
logged-in probe. Every database step is an ``_async`` store function on a connection of the
app's pool; the probe drives a headless Chromium in the loop, holding no connection meanwhile.
An imported cookie file is checked against the site before it is kept, unless ``verify=false``:
cookies that are not logged in are refused (422) and nothing is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from psycopg import AsyncConnection

from control_api.params import Db, Pool
from control_api.problems import BAD_REQUEST_RESPONSES
from roomwatch.config import Config
from roomwatch.errors import InvalidInput, NotFound, NotLoggedIn, SessionError
from sessions.imports import parse_cookies
from sessions.probe import ProbeResult, verify_state
from sessions.store import (
    delete_session_async,
    load_session_async,
    record_status_async,
    save_session_async,
)
from storage.login_sessions import LoginSession, Status, list_login_sessions_async

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


async def store_imported_cookies(
    pool: Pool,
    config: Config,
    data: bytes,
    *,
    verify: bool = True,
    account: str | None = None,
    field: str = "body",
) -> LoginSession:
    """Parses a cookie file, checks it against the site (unless ``verify`` is false) and
    stores it encrypted: ``POST /sessions`` and the Agent page's cookie import both call this.

    Raises:
        InvalidInput: a file that is no cookie file (or has no session cookie), naming
            ``field`` (where the caller took ``data`` from). Nothing is stored then.
        NotLoggedIn: the cookies are not logged in (naming ``field``); nothing is stored.
    """
    try:
        state = parse_cookies(data, site_url=config.chaturbate.url, source=f"the {field}")
    except SessionError as exc:
        raise InvalidInput(field, str(exc)) from None
    status: Status = "unknown"
    if verify:
        outcome = await verify_state(config, state)
        if outcome.result is ProbeResult.EXPIRED:
            raise NotLoggedIn(
                field,
                f"{field}: these cookies are not logged in ({outcome.reason}); nothing stored",
            )
        status = "valid" if outcome.result is ProbeResult.VALID else "unknown"
        account = account or outcome.account
    async with pool.connection() as db:
        return await save_session_async(
            db, config, state, account=account or "unknown", method="import", status=status
        )


async def probe_session(pool: Pool, config: Config, session_id: int) -> Verification:
    """Runs the logged-in probe on a stored session; records valid or expired (unknown, the
    site unreachable, leaves the status as it was). No connection is held while the browser
    runs.

    Raises:
        NotFound: naming ``session_id`` for no such session (or one whose file is unusable).
    """
    try:
        async with pool.connection() as db:
            row, state = await load_session_async(db, config, session_id)
    except SessionError as exc:
        raise NotFound("session_id", str(exc)) from None
    outcome = await verify_state(config, state)
    if outcome.result in _STATUS:
        try:
            async with pool.connection() as db:
                row = await record_status_async(db, session_id, _STATUS[outcome.result])
        except SessionError as exc:  # deleted while the probe ran
            raise NotFound("session_id", str(exc)) from None
    return Verification(session=row, result=outcome.result.value, reason=outcome.reason)


async def remove_session(db: AsyncConnection[Any], config: Config, session_id: int) -> None:
    """Deletes a session's row and its encrypted file.

    Raises:
        NotFound: naming ``session_id`` for no such session.
    """
    try:
        await delete_session_async(db, config, session_id)
    except SessionError as exc:
        raise NotFound("session_id", str(exc)) from None


class SessionController(Controller):
    """Login sessions: list, import, verify, delete."""

    path = "/sessions"
    tags = ("sessions",)

    @get("/", summary="Stored sessions (metadata only)")
    async def list_sessions(self, db: Db) -> list[LoginSession]:
        return await list_login_sessions_async(db)

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
        pool: Pool,
        verify: Annotated[
            bool, QueryParameter(description="check the cookies against the site first")
        ] = True,
        account: Annotated[
            str | None, QueryParameter(max_length=100, description="account name, if known")
        ] = None,
    ) -> LoginSession:
        """Stores the cookies encrypted; answers with the new session's metadata."""
        return await store_imported_cookies(
            pool, config, await request.body(), verify=verify, account=account
        )

    @post("/{session_id:int}/verify", status_code=200, summary="Check a session against the site")
    async def verify_session(
        self, session_id: SessionId, config: NamedDependency[Config], pool: Pool
    ) -> Verification:
        """Runs the logged-in probe; records valid or expired (unknown leaves the status)."""
        return await probe_session(pool, config, session_id)

    @delete("/{session_id:int}", status_code=204, summary="Delete a session and its file")
    async def delete_session(
        self, session_id: SessionId, config: NamedDependency[Config], db: Db
    ) -> None:
        await remove_session(db, config, session_id)
