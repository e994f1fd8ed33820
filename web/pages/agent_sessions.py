"""The Agent page's login-session forms: import cookies, verify a session, delete one.

Each calls the function of ``/api/v1/sessions`` (:mod:`control_api.sessions`): the same
parser, encrypted store and logged-in probe, on the app's connection pool. Only metadata is
ever shown; cookie values go into the store and never come back out.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from control_api.params import Db, Pool
from control_api.problems import status_of
from control_api.sessions import (
    MAX_COOKIE_FILE_BYTES,
    probe_session,
    remove_session,
    store_imported_cookies,
)
from roomwatch.config import Config
from roomwatch.errors import RequestError
from web.auth import flash
from web.pages import query
from web.pages.agent import SHOW_AGENT, PageMessage, Show, form_fields

SessionId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
COOKIES_FIELD = "cookies"


class SessionPagesController(Controller):
    """Login sessions, from the Agent page."""

    path = "/agent/sessions"
    include_in_schema = False
    dependencies = SHOW_AGENT

    @post("/", request_max_body_size=MAX_COOKIE_FILE_BYTES)
    async def import_cookies(
        self,
        request: Request[Any, Any, Any],
        config: NamedDependency[Config],
        pool: Pool,
        show: Show,
    ) -> Template | Redirect:
        """Pasted text or an uploaded file (extension JSON, storage state, cookies.txt), checked
        against the site unless ``verify`` is unticked; a refusal stores nothing."""
        form = await request.form()
        upload = form.get("cookie_file")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        if not data.strip():
            pasted = form.get(COOKIES_FIELD)
            data = pasted.encode() if isinstance(pasted, str) else b""
        fields = form_fields(form)
        account = query.text(fields, "account")
        answer: PageMessage
        status_code = 200
        if not data.strip():
            answer = PageMessage(
                section="sessions",
                text=f"{COOKIES_FIELD}: paste the cookies or choose a file",
                error=True,
            )
            status_code = 400
        else:
            try:
                row = await store_imported_cookies(
                    pool,
                    config,
                    data,
                    verify=fields.get("verify") == "true",
                    account=account,
                    field=COOKIES_FIELD,
                )
            except RequestError as refused:  # not a cookie file, or not logged in
                answer = PageMessage(section="sessions", text=str(refused), error=True)
                status_code = status_of(refused)
            else:
                flash(
                    request,
                    PageMessage(
                        section="sessions",
                        text=f"Session {row.session_id} stored: account {row.account}, "
                        f"{row.status}.",
                    ),
                )
                # Stored: answered by a redirect, so that a reload cannot store it twice.
                return Redirect("/agent#sessions", status_code=303)
        return await show(message=answer, status_code=status_code)

    @post("/{session_id:int}/verify", status_code=303)
    async def verify(
        self,
        request: Request[Any, Any, Any],
        config: NamedDependency[Config],
        pool: Pool,
        session_id: SessionId,
    ) -> Redirect:
        """Runs the logged-in probe (a headless Chromium: a few seconds); the Agent page it
        redirects to shows the verdict."""
        outcome = await probe_session(pool, config, session_id)
        flash(
            request,
            PageMessage(
                section="sessions",
                text=f"Session {session_id}: {outcome.result} ({outcome.reason}).",
                error=outcome.result == "expired",
            ),
        )
        return Redirect("/agent#sessions", status_code=303)

    @post("/{session_id:int}/delete", status_code=303)
    async def delete(
        self, config: NamedDependency[Config], db: Db, session_id: SessionId
    ) -> Redirect:
        await remove_session(db, config, session_id)
        return Redirect("/agent#sessions", status_code=303)
