"""The ``/crawls`` routes: queue a crawl, follow it, cancel it, read the tail of its log.

The API only writes job rows; a worker of an agent on the same database runs them (the API
never imports the crawl machinery). At most one job per spider is queued or running: a second
request gets 409 problem details carrying the id of the one that exists.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from psycopg import AsyncConnection

from control_api.cursors import decode_cursor, encode_cursor
from control_api.node_logs import node_log_tail
from control_api.params import Cursor, Db, Limit
from control_api.problems import ConflictProblem, problem_spec
from roomwatch.catalog import (
    MAX_ARG_LENGTH,
    SPIDERS,
    arg_error,
    check_spider_args,
    with_account,
)
from roomwatch.config import Config
from roomwatch.errors import InvalidInput, JobEnded, NotFound
from storage.job_queries import list_jobs
from storage.jobs import (
    FINAL_STATUSES,
    Job,
    Status,
    create_job_async,
    get_job_async,
    is_remote_log,
    request_cancel_async,
)

_CURSOR_KIND = "crawls"
_TAIL_BLOCK = 64 * 1024


def _args_description() -> str:
    """The allow-list of ``roomwatch.catalog``, spider by spider, for the OpenAPI schema."""
    lines = [
        "Spider arguments. Each spider takes only the ones listed for it; any other name, or "
        "a value of the wrong kind, is a 400 naming `args.<name>`. Values reach the spider as "
        "strings (`true`, not `True`).",
        "",
    ]
    for info in SPIDERS.values():
        takes = "; ".join(f"`{arg.name}` ({arg.kind}): {arg.description}" for arg in info.args)
        lines.append(f"- `{info.name}`: {takes or 'none'}")
    return "\n".join(lines)


ArgName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ArgValue = Annotated[str, msgspec.Meta(max_length=MAX_ARG_LENGTH)] | bool
Args = Annotated[
    dict[ArgName, ArgValue],
    msgspec.Meta(
        description=_args_description(),
        examples=[{"usernames": "alice,bob"}, {"confirm_loss": "true"}],
    ),
]
_BAD = problem_spec("A parameter or body field is invalid; `field` names it")
_NOT_FOUND = problem_spec("No such job, or no log for it here; `field` names it")
_BAD_GATEWAY = problem_spec("The Scrapyd node that ran the job did not answer, or failed")
_CONFLICT = problem_spec("The job is already active or already ended", ConflictProblem)
JobId = Annotated[int, PathParameter(ge=1, le=2**63 - 1, description="the job's id")]


class CrawlRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A crawl to queue.

    Attributes:
        spider: one of ``affiliate``, ``cbhours_live``, ``cbhours_activity``,
            ``followed_cams``, ``followers``.
        args: spider arguments: only those the spider takes (an allow-list per spider, in
            ``roomwatch/catalog.py``; the schema of this field lists them).
    """

    spider: str
    args: Args = msgspec.field(default_factory=dict)


class CrawlJob(msgspec.Struct, frozen=True, kw_only=True):
    """A crawl job: what it is, where it stands, and what it did so far."""

    job_id: int
    spider: str
    args: dict[str, Any]
    trigger: str
    status: Status
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    items: dict[str, int]
    pages: int
    requests: int
    retries: int
    errors: int
    finish_reason: str | None
    error_message: str | None
    cancel_requested_at: dt.datetime | None
    heartbeat_at: dt.datetime | None


class CrawlDetail(CrawlJob, frozen=True, kw_only=True):
    """A crawl job with the crawler's full statistics."""

    stats: dict[str, Any]


class CrawlPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of jobs, newest first; pass ``next_cursor`` back as ``cursor`` (null: done)."""

    items: list[CrawlJob]
    next_cursor: str | None


def _summary(job: Job) -> dict[str, Any]:
    fields = {name: getattr(job, name) for name in CrawlJob.__struct_fields__ if name != "pages"}
    return {**fields, "pages": int(job.stats.get("response_received_count", 0))}


def as_crawl(job: Job) -> CrawlJob:
    """A job as the API lists it (and the Agent page shows it): ``pages`` from its stats."""
    return CrawlJob(**_summary(job))


def as_detail(job: Job) -> CrawlDetail:
    return CrawlDetail(**_summary(job), stats=job.stats)


def found_job(job: Job | None, job_id: int) -> Job:
    """``job``, read by its id; a 404 naming ``job_id`` when there was none.

    Raises:
        NotFound: no job has that id.
    """
    if job is None:
        raise NotFound("job_id", f"no crawl job #{job_id}")
    return job


def tail_lines(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file, read from its end (logs can be large)."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            position = max(0, position - _TAIL_BLOCK)
            handle.seek(position)
            data = handle.read(end - position)
    text = data.decode("utf-8", errors="replace")
    return "".join(text.splitlines(keepends=True)[-lines:])


async def submit_crawl(db: AsyncConnection[Any], data: CrawlRequest, config: Config) -> Job:
    """The one way a crawl is queued over HTTP: ``POST /crawls`` and the Agent page's Run now
    buttons both call this (trigger ``api``: a worker of an agent runs it).

    Raises:
        InvalidInput: an unknown spider, or an argument it does not take (naming ``spider``
            or ``args.<name>``).
        JobConflict: one of that spider is already queued or running (``existing`` is its id).
    """
    if data.spider not in SPIDERS:
        raise InvalidInput("spider", f"unknown spider; known: {', '.join(SPIDERS)}", "body")
    for key, value in data.args.items():
        if (problem := arg_error(data.spider, key, value)) is not None:
            raise InvalidInput(f"args.{key}", problem, "body")
    args = check_spider_args(data.spider, with_account(data.spider, data.args, config))
    return await create_job_async(db, data.spider, args, "api")


async def cancel_crawl(db: AsyncConnection[Any], job_id: int) -> Job:
    """Cancels a queued job at once, asks a running one's runner to stop it.

    Raises:
        NotFound: no such job.
        JobEnded: it has already ended.
    """
    job = found_job(await request_cancel_async(db, job_id), job_id)
    if job.done and job.cancel_requested_at is None:
        raise JobEnded(job_id, job.status)
    return job


async def log_tail(job: Job, lines: int, config: Config) -> str:
    """The last ``lines`` lines of a job's log (redacted when written): a file of this machine,
    read off the loop, or the log of a job run on a Scrapyd node, read from that node
    (``control_api/node_logs.py``: only from a node of ``scrapyd.urls``).

    Raises:
        NotFound: naming ``job_id`` when the job has no log yet, or its log is neither on this
            agent's machine nor on a configured node that has it.
        ScrapydError: the job's node did not answer, or failed (a 502).
    """
    if job.log_path is None:
        # A finished job without one never started, or its log went with the job retention.
        yet = "" if job.status in FINAL_STATUSES else " yet"
        raise NotFound("job_id", f"crawl job #{job.job_id} has no log{yet} ({job.status})")
    if is_remote_log(job.log_path):
        return await node_log_tail(config.scrapyd, job.job_id, job.log_path, lines)
    try:
        return await anyio.to_thread.run_sync(tail_lines, Path(job.log_path), lines)
    except FileNotFoundError:
        raise NotFound(
            "job_id", f"the log of crawl job #{job.job_id} is not on this agent's machine"
        ) from None


class CrawlController(Controller):
    """Crawl jobs, whoever triggered them (schedule, API, CLI)."""

    path = "/crawls"
    tags = ("crawls",)

    @post(
        "/",
        status_code=202,
        summary="Queue a crawl; a worker of the agent runs it",
        responses={400: _BAD, 409: _CONFLICT},
    )
    async def create(
        self, db: Db, data: JSONBody[CrawlRequest], config: NamedDependency[Config]
    ) -> CrawlDetail:
        """202 with the queued job; 409 if one of that spider is already queued or running."""
        return as_detail(await submit_crawl(db, data, config))

    @get("/", summary="Crawl jobs, newest first, one page", responses={400: _BAD})
    async def index(
        self,
        db: Db,
        spider: Annotated[
            str | None, QueryParameter(max_length=40, description="only this spider's jobs")
        ] = None,
        status: Annotated[Status | None, QueryParameter(description="only this status")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> CrawlPage:
        """Jobs matching the filters; resumes after ``cursor`` when given."""
        if spider is not None and spider not in SPIDERS:
            raise InvalidInput("spider", f"unknown spider; known: {', '.join(SPIDERS)}", "query")
        before = None
        if cursor is not None:
            _, before = decode_cursor(cursor, _CURSOR_KIND, int)
        rows = await list_jobs(db, spider=spider, status=status, before=before, limit=limit + 1)
        items = [as_crawl(job) for job in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(_CURSOR_KIND, None, items[-1].job_id)
        return CrawlPage(items=items, next_cursor=next_cursor)

    @get(
        "/{job_id:int}",
        summary="One crawl job with its counts and statistics",
        responses={400: _BAD, 404: _NOT_FOUND},
    )
    async def detail(self, db: Db, job_id: JobId) -> CrawlDetail:
        """Status, items per kind, requests, retries, errors, finish reason, error message."""
        return as_detail(found_job(await get_job_async(db, job_id), job_id))

    @post(
        "/{job_id:int}/cancel",
        status_code=202,
        summary="Cancel a queued or running crawl",
        responses={400: _BAD, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    async def cancel(self, db: Db, job_id: JobId) -> CrawlDetail:
        """A queued job ends ``cancelled`` at once; a running one is stopped by its runner."""
        return as_detail(await cancel_crawl(db, job_id))

    @get(
        "/{job_id:int}/log",
        summary="The tail of a crawl job's log",
        media_type="text/plain; charset=utf-8",
        responses={400: _BAD, 404: _NOT_FOUND, 502: _BAD_GATEWAY},
    )
    async def log(
        self,
        db: Db,
        config: NamedDependency[Config],
        job_id: JobId,
        lines: Annotated[
            int, QueryParameter(ge=1, le=5000, description="how many lines (1-5000)")
        ] = 200,
    ) -> Response[str]:
        """The last ``lines`` lines (redacted at write time), as plain text; a job run on a
        Scrapyd node's, read from that node (502 when it does not answer)."""
        job = found_job(await get_job_async(db, job_id), job_id)
        text = await log_tail(job, lines, config)
        return Response(text, media_type="text/plain; charset=utf-8")
