"""The ``/imports/html`` route: follow state from saved followed-cams or followers pages.

The API twin of ``roomwatch import-html``: same parser, same rules (``formats/html_import.py``).
The body is one saved page (``Content-Type: text/html``) or a multipart form whose file parts
are the pages (several pages of one list). What the pages show is always recorded; follow
state changes only when they are the whole list, and the answer says which it was and why
(followers pages without a count: only when the Stats API's follower count confirms them).
Bad input is 400 problem details naming ``body`` (or ``kind``, ``saved_at``), a wrong content
type 415, and a body or page over the size or element limit 413. A conflict with what is stored
is 409: pages saved (``saved_at``) before the list's last check, or a change the mass-change
guard holds until ``confirm_loss=true``.

The import itself is :func:`import_pages`, which the Follow page's upload calls too; its errors
become problem details by the rules of :mod:`control_api.problems`.

Parsing a big page takes seconds of CPU, so it runs in a worker thread: the event loop, and
with it every other route (``/health`` first), keeps answering meanwhile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from psycopg import AsyncConnection

from control_api.params import Db, Persons
from control_api.person_cache import PersonCache
from control_api.problems import BAD_REQUEST_RESPONSES, problem_spec
from formats.html_import import MAX_DOCUMENT_BYTES, ImportPlan, observation_time, plan_import
from formats.html_import import Kind as Kind  # re-exported: web/ does not import sessions/
from roomwatch.config import Config
from roomwatch.errors import CountUnconfirmed, InvalidInput, UnsupportedMediaType
from storage.accounts import account_of_pages, list_accounts_async
from storage.follow_guard import last_check_async
from storage.follow_state import reconcile_async, record_observations_async

MAX_BODY_BYTES = 3 * MAX_DOCUMENT_BYTES
"""Room for a few saved pages in one multipart body; each page is checked on its own too."""
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain"})
_CONFLICT = problem_spec(
    "Saved before the list's last check (`saved_at`), or a mass change held until "
    "`confirm_loss=true`; `field` names which"
)


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an import kept and changed.

    Attributes:
        kind: ``following`` or ``followers``.
        documents: pages received.
        recorded: persons the pages list (kept as observations, source ``html_import``).
        complete: the pages are the whole list, so follow state was set from them.
        reason: why complete, or why partial (then follow state is unchanged).
        added: follows or followers new since the last complete check (null if partial).
        removed: follows or followers gone since then (null if partial).
        baseline: this was the list's first complete check: state set, no events.
        account: whose pages they were (null when that cannot be known: partial pages that
            do not show it, on an install without one account).
    """

    kind: Kind
    documents: int
    recorded: int
    complete: bool
    reason: str
    added: int | None = None
    removed: int | None = None
    baseline: bool | None = None
    account: str | None = None


async def import_pages(
    db: AsyncConnection[Any],
    persons: PersonCache,
    config: Config,
    kind: Kind,
    documents: Sequence[tuple[str, bytes]],
    *,
    saved_at: dt.datetime | None = None,
    account: str | None = None,
    confirm_loss: bool = False,
) -> ImportResult:
    """Records what saved pages show; sets follow state only if they are the whole list.

    The one import of the control API: ``POST /imports/html`` and the Follow page's upload
    (``web/pages/follow.py``) both call it and only differ in how they answer its errors.

    Args:
        db: the request's connection.
        persons: the person cache, forgotten after each write (the caller reads at once).
        config: the count tolerances, the selectors and the mass-change limits.
        kind: which list the pages are from.
        documents: (name, content) of each page.
        saved_at: when the pages were saved (time-zone aware); None: now, by the database.
        account: whose pages they are; None: their header's account, else the only one.
        confirm_loss: the user confirmed a loss past the mass-change limits.

    Raises:
        HtmlTooLargeError: a page over the byte or element limit.
        SavedAtError: ``saved_at`` is unusable; ``stale`` when it predates the last check.
        HtmlImportError: no page, or not such a page (the message names the file).
        FollowLossHeld: the list would remove too many; nothing about follow state changed.
        InvalidInput: whose pages they are is unknown, or ``account`` contradicts them.
    """
    plan = await anyio.to_thread.run_sync(partial(plan_import, kind, documents, config))
    owner = account_of_pages(
        await list_accounts_async(db), account, plan.account, required=plan.concludes
    )
    plan = msgspec.structs.replace(plan, account=owner or "")
    db_now, last_check = await last_check_async(db, plan.relation, owner)
    # Without saved_at, the pages are as of now by the database's clock (this process's
    # may run ahead of an external database's and make every import "in the future").
    observed_at = observation_time(kind, saved_at or db_now, db_now, last_check)
    try:
        await record_observations_async(
            db, plan.observations, source="html_import", observed_at=observed_at
        )
    finally:
        persons.forget()  # the caller reads its import at once, not after the NOTIFY
    if not plan.concludes:
        return _result(plan, documents)
    try:
        changes = await reconcile_async(
            db,
            plan.relation,
            plan.usernames,
            account=owner or "",  # known: required when the plan concludes
            checked_at=observed_at,
            source="html_import",
            limits=config.follow,
            confirm_loss=confirm_loss,
            count_check=plan.count_check(config, observed_at),
        )
    except CountUnconfirmed as exc:
        return _result(plan.unconfirmed(str(exc)), documents)
    finally:
        persons.forget()
    return msgspec.structs.replace(
        _result(plan.confirmed(), documents),
        added=changes.added,
        removed=changes.removed,
        baseline=changes.baseline,
    )


def _result(plan: ImportPlan, documents: Sequence[tuple[str, bytes]]) -> ImportResult:
    return ImportResult(
        kind=plan.kind,
        documents=len(documents),
        recorded=len(plan.observations),
        complete=plan.complete,
        reason=plan.reason,
        account=plan.account or None,
    )


async def uploaded_pages(request: Request[Any, Any, Any]) -> list[tuple[str, bytes]]:
    """The file parts of a multipart form, as (file name, content)."""
    form = await request.form()
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    return [(upload.filename or "a form file", await upload.read()) for upload in files]


async def _documents(request: Request[Any, Any, Any]) -> list[tuple[str, bytes]]:
    media_type = request.content_type[0]
    if media_type in _HTML_TYPES:
        return [("the request body", await request.body())]
    if media_type == "multipart/form-data":
        files = await uploaded_pages(request)
        if not files:
            raise InvalidInput("body", "the form has no file part (send each saved page as a file)")
        return files
    raise UnsupportedMediaType(
        "body", f"send text/html or multipart/form-data, not {media_type or 'nothing'}"
    )


class ImportController(Controller):
    """Saved pages of the logged-in lists, for when a crawl is not possible."""

    path = "/imports"
    tags = ("imports",)

    @post(
        "/html",
        status_code=200,
        request_max_body_size=MAX_BODY_BYTES,
        summary="Import saved followed-cams or followers pages",
        responses={**BAD_REQUEST_RESPONSES, 409: _CONFLICT},
    )
    async def html(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        persons: Persons,
        config: NamedDependency[Config],
        kind: Annotated[
            Kind,
            QueryParameter(description="following: /followed-cams/ pages; followers: followers"),
        ],
        saved_at: Annotated[
            dt.datetime | None,
            QueryParameter(
                description="when the pages were saved (ISO 8601 with a time zone); default: now"
            ),
        ] = None,
        confirm_loss: Annotated[
            bool,
            QueryParameter(description="confirm a change removing more than follow.max_loss_share"),
        ] = False,
        account: Annotated[
            str | None,
            QueryParameter(
                max_length=100,
                description="whose pages they are; default: the account their header shows, "
                "else the only one",
            ),
        ] = None,
    ) -> ImportResult:
        """Records what the pages show; sets follow state only if they are the whole list."""
        documents = await _documents(request)
        return await import_pages(
            db,
            persons,
            config,
            kind,
            documents,
            saved_at=saved_at,
            account=account,
            confirm_loss=confirm_loss,
        )
