"""``/follow``: who the owner follows and who follows the owner, what ended, and uploads.

Four tabs of person rows (the Users page's columns, :file:`_person_row.html`) with **since /
until / how long** each:

* Following / Followers: one page of the person list (:func:`control_api.persons.person_page`)
  with ``following`` / ``follower`` true; since is the newest ``followed`` / ``new_follower``
  event (the list rows' ``following_since`` / ``follower_since``), how long is until now.
* Unfollowed / Lost followers: :func:`storage.follow_lists.list_ended`: since and until are the
  follow's start and end events, how long the time between.

Above the tabs, each list's size now and its last complete check with the changes it
concluded (:func:`storage.follow_lists.list_checks`: the events that check wrote, i.e. what
changed since the check before it), and the newest follow events. ``POST /follow/upload`` runs
the API's HTML import (:func:`control_api.imports.import_pages`, the same function) on a saved
page and shows this page with what it read and changed, or why nothing was concluded.
``GET /follow/export`` streams a tab as CSV or JSON with the export routes' writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.response import Stream, Template

from control_api.cursors import decode_cursor, encode_cursor
from control_api.export_formats import ExportFormat
from control_api.exports import stream_export
from control_api.imports import (
    MAX_BODY_BYTES,
    ImportResult,
    Kind,
    import_pages,
    uploaded_pages,
)
from control_api.params import Db, Persons
from control_api.persons import person_page
from control_api.problems import status_of
from roomwatch.config import Config
from roomwatch.errors import (
    FollowLossHeld,
    HtmlImportError,
    HtmlTooLargeError,
    InvalidInput,
    SavedAtError,
)
from storage.accounts import AccountChoice
from storage.exports import export_ended, export_persons
from storage.follow_lists import EndedFollow, EndedList, list_checks, list_ended
from storage.person_list import PersonFilter, PersonSort, PersonSummary
from storage.person_queries import list_follow_events, sources_of
from web.account_choice import page_account
from web.pages import query
from web.pages.users import PAGE_SIZE
from web.person_rows import PersonRow, person_rows
from web.templating import page

Tab = Literal["following", "followers", "unfollowed", "lost_followers"]
TABS: dict[Tab, str] = {
    "following": "Following",
    "followers": "Followers",
    "unfollowed": "Unfollowed",
    "lost_followers": "Lost followers",
}
# Tab of the person list -> its filter and the list row's field that says since when.
_CURRENT: dict[str, tuple[PersonFilter, str]] = {
    "following": (PersonFilter(following=True), "following_since"),
    "followers": (PersonFilter(follower=True), "follower_since"),
}
# What an upload of each kind changes: the tab it shows, words for what it added and removed.
_KINDS: dict[Kind, tuple[Tab, str, str]] = {
    "following": ("following", "newly followed", "unfollowed"),
    "followers": ("followers", "new followers", "lost followers"),
}
RECENT_EVENTS = 20


@dataclass(frozen=True)
class Upload:
    """What the page says about an upload: a headline, the details, and the import's result."""

    kind: Kind
    concluded: bool
    headline: str
    detail: str
    result: ImportResult | None = None


def _span(since: dt.datetime | None, until: dt.datetime | None) -> dict[str, Any]:
    """A row's since / until / how long (until now while the follow lasts)."""
    seconds = None
    if since is not None:
        seconds = ((until or dt.datetime.now(dt.UTC)) - since).total_seconds()
    return {"since": since, "until": until, "seconds": seconds}


def _of(filters: PersonFilter, choice: AccountChoice) -> PersonFilter:
    """A tab's filter, on the follow state of the chosen account."""
    return msgspec.structs.replace(filters, account=choice.account, per_account=choice.several)


async def _tab_rows(
    db: Db, tab: Tab, params: Mapping[str, str], choice: AccountChoice
) -> tuple[list[PersonRow], str | None, PersonSort | None]:
    """The tab's rows, the next page's cursor, and the sort (None: the tab has one order)."""
    cursor = query.text(params, "cursor", max_length=200)
    if tab in _CURRENT:
        filters, since_field = _CURRENT[tab]
        filters = _of(filters, choice)
        sort: PersonSort = query.choice(params, "sort", get_args(PersonSort), "followers")
        result = await person_page(db, filters, sort, PAGE_SIZE, cursor)
        provenance = await sources_of(db, [p.person_id for p in result.items])
        spans = {p.person_id: _span(getattr(p, since_field), None) for p in result.items}
        return person_rows(result.items, provenance, spans), result.next_cursor, sort
    which: EndedList = "unfollowed" if tab == "unfollowed" else "lost_followers"
    kind = f"follow:{which}"
    after = None
    if cursor is not None:
        until, person_id = decode_cursor(cursor, kind, dt.datetime)
        if until is None:
            raise InvalidInput("cursor", "not a cursor this page issued")
        after = (until, person_id)
    ended = await list_ended(db, which, choice.account, limit=PAGE_SIZE + 1, after=after)
    items: list[EndedFollow] = ended[:PAGE_SIZE]
    next_cursor = None
    if len(ended) > PAGE_SIZE:
        next_cursor = encode_cursor(kind, items[-1].until, items[-1].person_id)
    provenance = await sources_of(db, [p.person_id for p in items])
    spans = {p.person_id: _span(p.since, p.until) for p in items}
    return person_rows(list(items), provenance, spans), next_cursor, None


async def _follow_page(
    request: Request[Any, Any, Any],
    db: Db,
    tab: Tab,
    params: Mapping[str, str],
    upload: Upload | None = None,
    status_code: int = 200,
) -> Template:
    choice = await page_account(request, db, query.text(params, "account"))
    rows, next_cursor, sort = await _tab_rows(db, tab, params, choice)
    kept = {k: v for k, v in params.items() if k in ("tab", "sort", "account") and v}
    kept["tab"] = tab
    return page(
        request,
        "follow.html",
        status_code=status_code,
        accounts=choice.known,
        account=choice.account,
        tab=tab,
        tabs=TABS,
        rows=rows,
        filters=kept,
        sort=sort,
        next_cursor=next_cursor,
        first_page=params.get("cursor") is None,
        checks=await list_checks(db, choice.account),
        events=await list_follow_events(db, choice.account, limit=RECENT_EVENTS),
        upload=upload,
    )


def _saved_at(form: Mapping[str, str]) -> dt.datetime | None:
    """The optional "saved at" field (a browser's ``datetime-local``: no zone, read as UTC)."""
    text = query.text(form, "saved_at", max_length=40)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("saved_at", "expected a date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _concluded(kind: Kind, result: ImportResult) -> Upload:
    _, added, removed = _KINDS[kind]
    read = f"Read {result.recorded} persons from {result.documents} page(s)"
    if not result.complete:
        return Upload(
            kind,
            False,
            f"{read}; follow state unchanged.",
            f"They were kept as observations, but the pages are not the whole list: "
            f"{result.reason}",
            result,
        )
    if result.baseline:
        detail = (
            "This was the list's first complete check: follow state is set from it, with no "
            "events (there is nothing earlier to compare with)."
        )
    else:
        detail = f"{result.added} {added}, {result.removed} {removed}."
    return Upload(kind, True, f"{read}: the whole list.", detail, result)


class FollowController(Controller):
    """The Follow page, its upload form, and its exports."""

    include_in_schema = False

    @get("/follow")
    async def follow(self, request: Request[Any, Any, Any], db: Db) -> Template:
        params = request.query_params
        tab: Tab = query.choice(params, "tab", get_args(Tab), "following")
        return await _follow_page(request, db, tab, params)

    @get("/follow/export")
    async def export(self, request: Request[Any, Any, Any], state: State) -> Stream:
        """The tab's every row as CSV or JSON: the body of ``GET /api/v1/exports/persons`` with
        the tab's filter (Following, Followers), or the ended list's rows (with since, until
        and seconds) through the same writer; streamed, a batch at a time."""
        params = request.query_params
        tab: Tab = query.choice(params, "tab", get_args(Tab), "following")
        export_format: ExportFormat = query.choice(params, "format", get_args(ExportFormat), "csv")
        async with state.pool.connection() as db:
            choice = await page_account(request, db, query.text(params, "account"))
        if tab in _CURRENT:
            filters = _of(_CURRENT[tab][0], choice)
            sort: PersonSort = query.choice(params, "sort", get_args(PersonSort), "followers")
            return stream_export(
                state.pool,
                tab,
                export_format,
                PersonSummary.__struct_fields__,
                lambda conn: export_persons(conn, filters, sort=sort),
            )
        which: EndedList = "unfollowed" if tab == "unfollowed" else "lost_followers"
        return stream_export(
            state.pool,
            tab,
            export_format,
            EndedFollow.__struct_fields__,
            lambda conn: export_ended(conn, which, choice.account),
        )

    @post("/follow/upload", status_code=200, request_max_body_size=MAX_BODY_BYTES)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        persons: Persons,
        config: NamedDependency[Config],
    ) -> Template:
        """Imports a saved page as ``POST /api/v1/imports/html`` does; the page says the result.

        The status is the API's for the same outcome (400 unreadable page, 409 too old or
        held, 413 too large), so scripts and tests can tell them apart too.
        """
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not fields.get("kind"):  # the API requires it too: never guess which list it is
            raise InvalidInput("kind", "choose followers or following")
        kind: Kind = query.choice(fields, "kind", get_args(Kind), "followers")
        confirm = query.flag(fields, "confirm_loss") or False
        saved_at = _saved_at(fields)
        documents = [(name, body) for name, body in await uploaded_pages(request) if body]
        account = query.text(fields, "account") or query.text(request.query_params, "account")
        status, upload, shown = 200, None, account
        try:
            result = await import_pages(
                db,
                persons,
                config,
                kind,
                documents,
                saved_at=saved_at,
                account=account,
                confirm_loss=confirm,
            )
            upload = _concluded(kind, result)
            shown = result.account or account  # the page then shows whose pages they were
        except HtmlTooLargeError as exc:
            status, upload = status_of(exc), Upload(kind, False, "The page is too large.", str(exc))
        except SavedAtError as exc:
            headline = "The page is older than the list's last check." if exc.stale else ""
            status = status_of(exc)
            upload = Upload(kind, False, headline or "The saved time is unusable.", str(exc))
        except HtmlImportError as exc:
            status = status_of(exc)
            upload = Upload(kind, False, "The page could not be read.", str(exc))
        except FollowLossHeld as exc:
            status = status_of(exc)
            upload = Upload(
                kind,
                False,
                "Held: this upload would remove many people at once, so nothing was concluded.",
                f"{exc}. If the loss is real, tick \u201cconfirm a large loss\u201d and upload "
                "the page again.",
            )
        return await _follow_page(
            request,
            db,
            _KINDS[kind][0],
            {"account": shown} if shown else {},
            upload=upload,
            status_code=status,
        )
