"""The control API's app factory: config in, Litestar app out; the lifespan owns the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsPlugin,
)
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from control_api.auth import BearerTokenMiddleware
from control_api.crawls import CrawlController
from control_api.exports import ExportController
from control_api.follow_events import FollowEventController
from control_api.images import ImageController
from control_api.imports import ImportController
from control_api.metrics import HTTP_METRICS, METRICS_PATH, MetricsController
from control_api.person_cache import PersonCache
from control_api.person_filters import FOLLOW_ACCOUNT, PERSON_FILTER
from control_api.persons import PersonController
from control_api.problems import PROBLEM_HANDLERS, internal_problem, refuse_nul
from control_api.room import RoomController
from control_api.schedules import ScheduleController
from control_api.sessions import SessionController
from control_api.system import SystemController
from control_api.watch import WatchController
from roomwatch import __version__
from roomwatch.config import Config
from storage.database import make_async_pool
from web.auth import SignInThrottle, WebSessions
from web.headers import SecurityHeadersMiddleware
from web.routes import PAGE_PATHS, page_or_problem, web_router
from web.templating import template_config


async def _connection(state: State) -> AsyncIterator[AsyncConnection[Any]]:
    async with state.pool.connection() as conn:
        yield conn


def _pool(state: State) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = state.pool
    return pool


def _person_cache(state: State) -> PersonCache:
    cache: PersonCache = state.person_cache
    return cache


def create_app(config: Config, conninfo: str, token: str, database_label: str) -> Litestar:
    """Builds the API.

    Args:
        config: the agent's configuration.
        conninfo: where the database is (the pool is opened by the app's lifespan).
        token: the bearer token every route but ``/health`` requires.
        database_label: how ``/status`` names the database (never the URL: it may hold a password).
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = make_async_pool(conninfo, config.database)
        await pool.open(wait=True)
        app.state.pool = pool
        cache = PersonCache(pool, conninfo, config.api.person_cache_size)
        app.state.person_cache = cache
        await cache.start()
        try:
            yield
        finally:
            await cache.stop()
            await pool.close()

    api = Router(
        path="/api/v1",
        route_handlers=[
            SystemController,
            PersonController,
            WatchController,
            FollowEventController,
            RoomController,
            ExportController,
            CrawlController,
            ScheduleController,
            ImportController,
            ImageController,
            SessionController,
        ],
    )
    # The bearer check leaves the pages to their own sign-in, and /metrics to no one when the
    # config makes it public (loopback only: roomwatch.config refuses it otherwise).
    not_bearer = PAGE_PATHS + (f"|^{METRICS_PATH}$" if config.metrics.public else "")
    return Litestar(
        route_handlers=[api, web_router(), MetricsController],
        dependencies={
            "db": Provide(_connection),
            "pool": Provide(_pool, sync_to_thread=False),
            "person_filter": PERSON_FILTER,
            "follow_account": FOLLOW_ACCOUNT,
            "persons": Provide(_person_cache, sync_to_thread=False),
            "database_label": Provide(lambda: database_label, sync_to_thread=False),
            "config": Provide(lambda: config, sync_to_thread=False),
        },
        template_config=template_config(),
        state=State(
            {
                "api_token": token,
                "web_sessions": WebSessions(config.api.session_hours * 3600),
                "sign_in_throttle": SignInThrottle(),
            }
        ),
        lifespan=[lifespan],
        before_request=refuse_nul,
        # Anything no handler expected: logged (redacted, with its traceback), answered as a
        # problem that tells the client nothing of the internals.
        exception_handlers={
            # Every refusal becomes problem details by one set of rules (the pages' router
            # renders the same rules as HTML pages).
            **PROBLEM_HANDLERS,
            Exception: internal_problem,
            # No route, wrong method: before any router, so an HTML page only on page paths.
            NotFoundException: page_or_problem,
            MethodNotAllowedException: page_or_problem,
        },
        middleware=[
            SecurityHeadersMiddleware,
            DefineMiddleware(BearerTokenMiddleware, token=token, exclude=not_bearer),
            # Inside the bearer check: a refusal it raises is answered outside every route
            # middleware, where this one would have counted it as a 200.
            HTTP_METRICS.middleware,
        ],
        plugins=[ProblemDetailsPlugin(ProblemDetailsConfig(enable_for_all_http_exceptions=True))],
        openapi_config=OpenAPIConfig(
            title="roomwatch control API", version=__version__, path="/schema"
        ),
        debug=False,
        # Litestar would otherwise replace the root logger's handlers, and with them the
        # redaction filter that roomwatch.logs installs (secrets must never reach a log).
        logging_config=None,
    )
