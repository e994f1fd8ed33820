"""The ``scrapyd`` runner backend: each job runs on one of the Scrapyd nodes of ``scrapyd.urls``.

The agent keeps the role the local runner has (``agent/runner.py``): it holds the job lock while
the crawl runs and keeps the row truthful; the node only runs the project's egg (deployed with
``roomwatch deploy``, agent/deploy.py, or ``scrapyd-deploy``: docs/scaling.md), whose ``scrapy
crawl`` writes to the shared PostgreSQL through the same pipelines and reports progress to the
row (crawler/commands/crawl.py).

- **Dispatch**: ``daemonstatus.json`` on every node; the one with the fewest running and
  pending jobs (the most free slots: Scrapyd does not report its ``max_proc``, so nodes are
  taken as equal; ties go to the first in ``scrapyd.urls``) gets ``schedule.json`` with the job
  row's id as Scrapyd's ``jobid`` and the job's arguments, checked against the spider's
  allow-list. Nothing else travels: settings and secrets (database URL, session key, the Events
  and Stats URLs) come from each node's own environment.
- **Following**: every ``scrapyd.poll_seconds`` the row (progress, a cancel request, the end the
  crawl recorded) and the node's ``status.json``. A node that answers nothing for
  :data:`LOST_AFTER_POLLS` polls in a row (killed, unreachable), or no longer knows the job
  (restarted: Scrapyd's default job storage is in memory, configure ``SqliteJobStorage``),
  ends the row ``interrupted``; a job the node finished without a recorded end ends
  ``failed`` (crashed). The crawl on a node that only lost touch sees the row and stops itself.
- **Stopping** (cancel, timeout, an agent's shutdown): ``cancel.json`` with SIGTERM (Scrapy's
  graceful stop), then SIGKILL after :data:`agent.runner.GRACE_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgspec
import psycopg

from agent.runner import GRACE_SECONDS, Runner, relock, wait_for_connection
from roomwatch.catalog import SPIDERS, check_spider_args
from roomwatch.config import Config, ScrapydConfig
from roomwatch.errors import ScrapydError
from roomwatch.scrapyd_nodes import node_address
from storage.database import connect
from storage.jobs import Job, Status, enforce_end, finish_job, get_job, lock_job, start_job

log = logging.getLogger(__name__)
LOST_AFTER_POLLS = 5
STOP_POLL_SECONDS = 0.5


class DaemonStatus(msgspec.Struct, frozen=True):
    """``daemonstatus.json``: jobs waiting and running on a node."""

    pending: int
    running: int


class ScrapydNode:
    """One Scrapyd node's JSON API, with basic auth; named by host and port only."""

    def __init__(self, url: str, settings: ScrapydConfig) -> None:
        # One line per request (several a second with crawls under way) is not an operator's.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        address = node_address(url, settings)
        self.address = address
        self.name = address.name
        self.url = address.url
        self._client = httpx.Client(
            base_url=address.url,
            auth=address.auth,
            timeout=settings.timeout_seconds,
            follow_redirects=False,
        )

    def daemon_status(self) -> DaemonStatus:
        try:
            return msgspec.convert(self._call("GET", "daemonstatus.json"), DaemonStatus)
        except msgspec.ValidationError as exc:
            raise ScrapydError(
                f"Scrapyd node {self.name} answered daemonstatus.json without its counts ({exc})",
                answered=True,
            ) from None

    def schedule(self, project: str, spider: str, job_id: int, args: dict[str, str]) -> None:
        """Queues the crawl on the node as Scrapyd job ``job_id``."""
        answer = self._call(
            "POST",
            "schedule.json",
            {**args, "project": project, "spider": spider, "jobid": str(job_id)},
        )
        if answer.get("jobid") != str(job_id):
            raise ScrapydError(f"Scrapyd node {self.name} took another job id", answered=True)

    def state(self, project: str, job_id: int) -> str | None:
        """``pending``, ``running``, ``finished``, or None: the node does not know the job."""
        answer = self._call("GET", "status.json", {"project": project, "job": str(job_id)})
        state = answer.get("currstate")
        return state if isinstance(state, str) else None

    def cancel(self, project: str, job_id: int, signal: str) -> None:
        self._call(
            "POST", "cancel.json", {"project": project, "job": str(job_id), "signal": signal}
        )

    def has_project(self, project: str) -> bool:
        return project in self._call("GET", "listprojects.json").get("projects", [])

    def log_url(self, project: str, spider: str, job_id: int) -> str:
        """Where the node serves the crawl's log (Scrapyd's ``logs_dir``)."""
        return self.address.log_url(project, spider, job_id)

    def add_version(self, project: str, version: str, egg: bytes, timeout: float) -> None:
        """Uploads the project's egg as ``version`` (``addversion.json``, as ``scrapyd-deploy``
        does); the node lists the egg's spiders while it answers, hence its own ``timeout``."""
        self._call(
            "POST",
            "addversion.json",
            {"project": project, "version": version},
            files={"egg": ("project.egg", egg)},
            timeout=timeout,
        )

    def spiders(self, project: str, timeout: float | None = None) -> list[str]:
        """The spiders the node lists for the project's newest version."""
        answer = self._call("GET", "listspiders.json", {"project": project}, timeout=timeout)
        spiders = answer.get("spiders")
        if not isinstance(spiders, list):
            raise ScrapydError(
                f"Scrapyd node {self.name} answered listspiders.json without spiders",
                answered=True,
            )
        return [str(name) for name in spiders]

    def _call(
        self,
        method: str,
        endpoint: str,
        params: dict[str, str] | None = None,
        *,
        files: dict[str, tuple[str, bytes]] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the answer's JSON object if its ``status`` is ``ok``. ``timeout``:
        this request's, instead of ``scrapyd.timeout_seconds``.

        Raises:
            ScrapydError: no answer (``answered`` False), or an error answer.
        """
        try:
            limit = self._client.timeout if timeout is None else httpx.Timeout(timeout)
            if method == "GET":
                response = self._client.get(endpoint, params=params, timeout=limit)
            else:
                response = self._client.post(endpoint, data=params, files=files, timeout=limit)
        except httpx.HTTPError as exc:
            raise ScrapydError(
                f"Scrapyd node {self.name} did not answer {endpoint} ({type(exc).__name__})",
                answered=False,
            ) from None
        if response.status_code == 401:
            raise ScrapydError(
                f"Scrapyd node {self.name} refused the credentials (HTTP 401): check "
                "scrapyd.username/password or the node URL",
                answered=True,
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict):
            raise ScrapydError(
                f"Scrapyd node {self.name} answered {endpoint} with HTTP {response.status_code}",
                answered=response.status_code < 500,
            )
        if answer.get("status") != "ok":
            message = str(answer.get("message", "no message")).strip().splitlines()
            raise ScrapydError(
                f"Scrapyd node {self.name} refused {endpoint}: {message[0] if message else ''}",
                answered=True,
            )
        return answer


class ScrapydRunner(Runner):
    """Runs jobs on the Scrapyd nodes of ``scrapyd.urls`` (see the module docstring)."""

    # The browsers run on the nodes, not beside the agent: only one per account applies.
    one_browser_at_a_time = False

    def __init__(self, config: Config, conninfo: str) -> None:
        super().__init__(config, conninfo)
        self.project = config.scrapyd.project
        self.poll_seconds = config.scrapyd.poll_seconds
        self.nodes = [ScrapydNode(url, config.scrapyd) for url in config.scrapyd.urls]

    def check_nodes(self) -> list[str]:
        """One line per node that cannot take jobs now (down, refusing, without the project);
        the agent logs them at start."""
        problems = []
        for node in self.nodes:
            try:
                if not node.has_project(self.project):
                    problems.append(
                        f"Scrapyd node {node.name} has no project {self.project!r}: deploy it "
                        "with roomwatch deploy (docs/scaling.md)"
                    )
            except ScrapydError as exc:
                problems.append(str(exc))
        return problems

    def pick_node(self) -> ScrapydNode | None:
        """The answering node with the fewest running and pending jobs; None if none answers."""

        def load(node: ScrapydNode) -> int | None:
            try:
                status = node.daemon_status()
            except ScrapydError as exc:
                log.warning("%s", exc)
                return None
            return status.running + status.pending

        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            loads = list(pool.map(load, self.nodes))
        answering = [(n, i) for i, n in enumerate(loads) if n is not None]
        return self.nodes[min(answering)[1]] if answering else None

    def run(self, job_id: int, on_progress: Callable[[Job], None] | None = None) -> Job:
        """Dispatches a queued job to a node and follows it to its end; the final job row."""
        conn = connect(self.conninfo, autocommit=True)
        try:
            job = get_job(conn, job_id) if lock_job(conn, job_id) else None
            if job is None or job.status != "queued":
                return _current(conn, job_id)
            node = self.pick_node()
            if node is None:
                names = ", ".join(n.name for n in self.nodes)
                finish_job(
                    conn,
                    job_id,
                    "failed",
                    finish_reason="not started",
                    error_message=f"no Scrapyd node answered ({names})",
                )
                return _current(conn, job_id)
            log_url = node.log_url(self.project, job.spider, job_id)
            if not start_job(conn, job_id, os.getpid(), log_url):
                return _current(conn, job_id)
            try:
                node.schedule(
                    self.project, job.spider, job_id, check_spider_args(job.spider, job.args)
                )
            except ScrapydError as exc:
                finish_job(
                    conn, job_id, "failed", finish_reason="not started", error_message=str(exc)
                )
                return _current(conn, job_id)
            log.info("job %d: %s crawl scheduled on Scrapyd node %s", job_id, job.spider, node.name)
            following = NodeSupervision(self, node, conn, job)
            try:
                return following.run(on_progress)
            finally:
                conn = following.conn
        finally:
            conn.close()


class NodeSupervision:
    """Follows one job on its node to its end, holding the job lock on ``conn``."""

    def __init__(
        self, runner: ScrapydRunner, node: ScrapydNode, conn: psycopg.Connection[Any], job: Job
    ) -> None:
        self.runner = runner
        self.node = node
        self.conn = conn
        self.job_id = job.job_id
        self.timeout_seconds = SPIDERS[job.spider].timeout_seconds

    def run(self, on_progress: Callable[[Job], None] | None) -> Job:
        deadline = time.monotonic() + self.timeout_seconds
        unanswered = 0
        while True:
            time.sleep(self.runner.poll_seconds)
            try:
                job = _current(self.conn, self.job_id)
            except psycopg.OperationalError:
                if not self._reconnect():
                    break
                continue
            if on_progress is not None:
                on_progress(job)
            timed_out = time.monotonic() > deadline
            if enforce_end(
                self.conn, job, timeout_seconds=self.timeout_seconds if timed_out else None
            ):
                self.stop()
                break
            if job.done:
                break  # the crawl recorded its end
            try:
                state = self.node.state(self.runner.project, self.job_id)
            except ScrapydError as exc:
                unanswered += 1
                log.warning("job %d: %s (%d in a row)", self.job_id, exc, unanswered)
                if unanswered >= LOST_AFTER_POLLS:
                    self._end(
                        "interrupted",
                        f"Scrapyd node {self.node.name} stopped answering during this crawl",
                    )
                    break
                continue
            unanswered = 0
            if state in ("pending", "running"):
                continue
            if _current(self.conn, self.job_id).done:
                break  # it recorded its end between the two looks
            if state == "finished":
                self._end(
                    "failed",
                    f"the crawl on Scrapyd node {self.node.name} ended without recording its "
                    f"result (see its log)",
                    reason="crashed",
                )
            else:
                self._end(
                    "interrupted",
                    f"Scrapyd node {self.node.name} no longer knows this job (it restarted; "
                    "with its default in-memory job storage it also forgets finished jobs)",
                )
            break
        return _current(self.conn, self.job_id)

    def stop(self) -> None:
        """Stops the crawl on its node: SIGTERM, then SIGKILL if it still runs after the grace."""
        project = self.runner.project
        try:
            self.node.cancel(project, self.job_id, "TERM")
            deadline = time.monotonic() + GRACE_SECONDS
            while self.node.state(project, self.job_id) in ("pending", "running"):
                if time.monotonic() > deadline:
                    self.node.cancel(project, self.job_id, "KILL")
                    return
                time.sleep(STOP_POLL_SECONDS)
        except ScrapydError as exc:
            # The crawl still sees its row (ended) and the lock, and stops on its own.
            log.warning("job %d: could not stop it on its node: %s", self.job_id, exc)

    def _end(self, status: Status, message: str, reason: str | None = None) -> None:
        finish_job(
            self.conn, self.job_id, status, finish_reason=reason or status, error_message=message
        )
        log.warning("job %d: %s", self.job_id, message)

    def _reconnect(self) -> bool:
        """A new connection with the job lock; False (crawl stopped, row left to the next
        sweep if the database stays away) if that fails."""
        self.conn.close()
        conn = relock(self.runner.conninfo, self.job_id, alive=lambda: True)
        if conn is not None:
            self.conn = conn
            return True
        self.stop()
        self.conn = wait_for_connection(self.runner.conninfo)
        self._end("interrupted", "the agent lost the database during this crawl")
        return False


def _current(conn: psycopg.Connection[Any], job_id: int) -> Job:
    job = get_job(conn, job_id)
    assert job is not None  # job rows are never deleted
    return job
