"""``/agent``: schedules, recent jobs, Run now per spider, login sessions and the active alerts.

Every form here calls the function its API route calls (:mod:`control_api.schedules`,
:mod:`control_api.crawls`, :mod:`control_api.sessions`), so a page and a script can never
disagree about what is stored or refused. A refused change is shown on the page, naming the
field, with the status code the API would give; a change that worked redirects back (a reload
never repeats it). The overview reads the schedules and alerts through the status report
(:func:`storage.status.read_status_async`), the very read of ``GET /status``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from control_api.crawls import CrawlRequest, submit_crawl
from control_api.params import Db
from control_api.problems import status_of
from control_api.schedules import ScheduleChange, change_schedule
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config
from roomwatch.errors import InvalidInput, JobConflict
from storage.job_queries import list_jobs
from storage.login_sessions import list_login_sessions_async
from storage.status import read_status_async
from web.auth import take_flashes
from web.pages.agent_jobs import job_view
from web.templating import page

RECENT_JOBS = 25
_ACTIVE = frozenset({"queued", "running"})
_AT = re.compile(r"\s*-\s*at `\$\.?(?P<path>[^`]*)`$")
ScheduleName = Annotated[str, PathParameter(max_length=100)]


class PageMessage(msgspec.Struct, frozen=True, kw_only=True):
    """What a form's answer says on the page.

    Attributes:
        section: the part of the page it belongs to (``schedules``, ``run``, ``sessions``).
        text: one line for people; a refusal names the field.
        error: a refusal (shown as an alert) rather than a confirmation.
        target: the schedule or spider it is about, if any.
        job_id: a job to link to (the active one a Run now ran into).
    """

    section: str
    text: str
    error: bool = False
    target: str | None = None
    job_id: int | None = None


def form_fields(form: FormMultiDict) -> dict[str, str]:
    """The non-empty text fields of a form, stripped (an empty field means "not given").

    Raises:
        InvalidInput: a field holds a NUL, which no PostgreSQL text can (400 naming it).
    """
    fields = {
        key: value.strip()
        for key, value in form.items()
        if isinstance(value, str) and value.strip() and key != "csrf_token"
    }
    for key, value in fields.items():
        if "\x00" in value:
            raise InvalidInput(key, "NUL characters are not accepted")
    return fields


def convert_form(fields: Mapping[str, Any], kind: type[msgspec.Struct]) -> Any:
    """Form strings into the API's request Struct, with the same constraints (``strict=False``
    reads ``"600"`` as 600 and ``"true"`` as true).

    Raises:
        InvalidInput: a value the API would refuse too, naming the field.
    """
    try:
        return msgspec.convert(dict(fields), kind, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _AT.search(message)
        field = found.group("path").replace("[...]", "") if found else "form"
        reason = _AT.sub("", message)
        raise InvalidInput(field, reason) from None


async def overview(
    request: Request[Any, Any, Any],
    db: Db,
    config: Config,
    database_label: str,
    *,
    message: PageMessage | None = None,
    status_code: int = 200,
) -> Template:
    """The Agent page, with the answer to a form if there was one (given, or kept for this
    page by a form that redirected here)."""
    if message is None:
        message = next(iter(take_flashes(request)), None)
    status = await read_status_async(db, database_label, config)
    jobs = await list_jobs(db, limit=RECENT_JOBS)
    active = {job.spider: job.job_id for job in status.last_jobs if job.status in _ACTIVE}
    return page(
        request,
        "agent.html",
        status_code=status_code,
        scheduler=status.scheduler,
        alerts=status.alerts,
        jobs=[job_view(job) for job in jobs],
        spiders=list(SPIDERS.values()),
        active=active,
        sessions=await list_login_sessions_async(db),
        message=message,
    )


# overview() bound to the request: show(message=..., status_code=...) renders the page.
ShowAgent = Callable[..., Awaitable[Template]]


def show_agent(
    request: Request[Any, Any, Any],
    db: Db,
    config: NamedDependency[Config],
    database_label: NamedDependency[str],
) -> ShowAgent:
    """The dependency ``show``: the Agent page of this request, ready to render."""
    return functools.partial(overview, request, db, config, database_label)


SHOW_AGENT = {"show": Provide(show_agent, sync_to_thread=False)}
Show = NamedDependency[ShowAgent]


class AgentController(Controller):
    """The Agent page and its schedule and Run now forms."""

    path = "/agent"
    include_in_schema = False
    dependencies = SHOW_AGENT

    @get("/")
    async def index(self, show: Show) -> Template:
        return await show()

    @post("/schedules/{name:str}", status_code=303)
    async def change(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        config: NamedDependency[Config],
        show: Show,
        name: ScheduleName,
    ) -> Redirect | Template:
        """Pause, resume, or set the interval or cron: the same change as ``PATCH
        /schedules/{name}``; a refused one is shown on the page (400) and nothing is stored."""
        fields = form_fields(await request.form())
        try:
            change: ScheduleChange = convert_form(fields, ScheduleChange)
            await change_schedule(db, config, name, change)
        except InvalidInput as exc:  # a ScheduleError too
            refused = PageMessage(section="schedules", text=str(exc), error=True, target=name)
            return await show(message=refused, status_code=status_of(exc))
        return Redirect(f"/agent#schedule-{name}", status_code=303)

    @post("/crawls", status_code=303)
    async def run_now(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        show: Show,
        config: NamedDependency[Config],
    ) -> Redirect | Template:
        """Queues a crawl as ``POST /crawls`` does and shows its job page; one of that spider
        already queued or running is a 409 page linking it."""
        fields = form_fields(await request.form())
        spider = fields.pop("spider", "")
        args = {
            key.removeprefix("args."): value
            for key, value in fields.items()
            if key.startswith("args.")
        }
        try:
            crawl: CrawlRequest = convert_form({"spider": spider, "args": args}, CrawlRequest)
            job = await submit_crawl(db, crawl, config)
        except InvalidInput as exc:
            refused = PageMessage(section="run", text=str(exc), error=True, target=spider)
            return await show(message=refused, status_code=status_of(exc))
        except JobConflict as conflict:
            busy = PageMessage(
                section="run",
                text=str(conflict),
                error=True,
                target=spider,
                job_id=conflict.existing or None,
            )
            return await show(message=busy, status_code=status_of(conflict))
        return Redirect(f"/agent/jobs/{job.job_id}", status_code=303)
