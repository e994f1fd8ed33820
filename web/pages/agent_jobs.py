"""``/agent/jobs/{id}``: one crawl job, live until it ends; its fragment, and its cancel button.

The job's block (``_job.html``) carries ``data-refresh`` pointing at its fragment, which
``static/app.js`` fetches every second until the fragment says ``data-done="true"``, so a
crawl started with Run now is followed to its end with no reload. Without JavaScript the job
page refreshes itself every two seconds while the job is active. Counts are the API's
(:func:`control_api.crawls.as_crawl`) and the log tail is the read of
``GET /crawls/{id}/log`` (:func:`control_api.crawls.log_tail`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from control_api.crawls import as_crawl, cancel_crawl, found_job, log_tail
from control_api.params import Db
from roomwatch.config import Config
from roomwatch.errors import NotFound, ScrapydError
from storage.jobs import Job, get_job_async
from web.templating import page

LOG_LINES = 40
REFRESH_MS = 1000
JobId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]


def job_view(job: Job, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the templates show of a job: the API's summary, whether it ended, how long it ran
    (so far, while running)."""
    end = job.finished_at or (None if job.done else now or dt.datetime.now(dt.UTC))
    seconds = (end - job.started_at).total_seconds() if job.started_at and end else None
    return {"j": as_crawl(job), "done": job.done, "duration": seconds}


async def _job_context(db: Db, config: Config, job_id: int) -> dict[str, Any]:
    job = found_job(await get_job_async(db, job_id), job_id)
    try:
        log, log_note = await log_tail(job, LOG_LINES, config), None
    except (NotFound, ScrapydError) as missing:
        log, log_note = None, str(missing)
    return {**job_view(job), "log": log, "log_note": log_note, "interval": REFRESH_MS}


class JobController(Controller):
    """One crawl job: its page, its live fragment, cancelling it."""

    path = "/agent/jobs"
    include_in_schema = False

    @get("/{job_id:int}")
    async def job(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        config: NamedDependency[Config],
        job_id: JobId,
    ) -> Template:
        return page(request, "agent_job.html", **await _job_context(db, config, job_id))

    @get("/{job_id:int}/fragment")
    async def fragment(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        config: NamedDependency[Config],
        job_id: JobId,
    ) -> Template:
        """Just the job's block, for ``app.js`` to swap in."""
        return page(request, "_job.html", **await _job_context(db, config, job_id))

    @post("/{job_id:int}/cancel", status_code=303)
    async def cancel(self, db: Db, job_id: JobId) -> Redirect:
        """As ``POST /crawls/{id}/cancel``: 404 or 409 (already ended) is an error page."""
        await cancel_crawl(db, job_id)
        return Redirect(f"/agent/jobs/{job_id}", status_code=303)
