"""A log of every request the simulated upstreams answered, so tests can count and pace them.

Tests assert things like "the spider sent one request per page" or "never more than N per
second"; both need arrival times on the test process's clock, so entries carry
``time.monotonic()`` taken when the request arrived (the simulator runs in the test process).
An entry is appended when the response starts, so it also carries the status the client saw,
including injected faults.
"""

import threading
import time

import msgspec
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Send

from upstream_sim.middleware import UpstreamMiddleware


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One answered request."""

    t: float
    """``time.monotonic()`` when the request arrived."""
    method: str
    path: str
    query: str
    """The raw query string, still percent-encoded."""
    status: int


class RequestLog:
    """Thread-safe, append-only list of :class:`RequestRecord` (cleared only on demand)."""

    def __init__(self) -> None:
        """Create an empty log."""
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def record(self, entry: RequestRecord) -> None:
        """Append one entry."""
        with self._lock:
            self._records.append(entry)

    def entries(self, prefix: str = "") -> list[RequestRecord]:
        """Entries whose path starts with ``prefix``, oldest response first."""
        with self._lock:
            return [entry for entry in self._records if entry.path.startswith(prefix)]

    def count(self, prefix: str = "") -> int:
        """How many requests under ``prefix`` were answered."""
        return len(self.entries(prefix))

    def clear(self) -> None:
        """Forget everything, e.g. between phases of one test."""
        with self._lock:
            self._records.clear()


class RequestLogMiddleware(UpstreamMiddleware):
    """ASGI middleware that records each HTTP request into a :class:`RequestLog`.

    It sits outermost, so requests answered by the fault middleware are logged too. Paths
    under ``exclude_prefix`` (the simulator's own control routes) are not logged, so reading
    the log does not change it.
    """

    def __init__(self, app: ASGIApp, *, log: RequestLog, exclude_prefix: str) -> None:
        """Wrap ``app``, recording into ``log`` (arguments as :class:`UpstreamMiddleware`'s)."""
        super().__init__(app, exclude_prefix=exclude_prefix)
        self._log = log

    async def handle(self, scope: HTTPScope, receive: Receive, send: Send, path: str) -> None:
        """Record the request when its response starts, then pass everything through."""
        arrived = time.monotonic()

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._log.record(
                    RequestRecord(
                        t=arrived,
                        method=scope["method"],
                        path=path,
                        query=scope["query_string"].decode("latin-1"),
                        status=message["status"],
                    )
                )
            await send(message)

        await self.app(scope, receive, send_and_record)
