"""The base of the simulator's ASGI middlewares: they see upstream requests, never the controls.

The request log and the fault plan both act on HTTP requests to the simulated upstreams
only: lifespan events and the ``/_sim/`` control routes pass straight through, so steering a
run neither shows in its log nor trips its faults.
"""

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send


def client_path(scope: Scope) -> str:
    """The path as the client sent it.

    Litestar rewrites ``scope["path"]`` to its normalized form (no trailing slash) before
    route middleware runs, but ``/onlinerooms/`` and ``/onlinerooms`` are different requests
    to a crawler test, so logs and fault prefixes use the raw path.
    """
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


class UpstreamMiddleware:
    """Calls :meth:`handle` for HTTP requests outside ``exclude_prefix``; passes the rest on."""

    def __init__(self, app: ASGIApp, *, exclude_prefix: str) -> None:
        """Wrap ``app``.

        Args:
            app: The next ASGI app.
            exclude_prefix: Path prefix passed straight on (the simulator's control routes).
        """
        self.app = app
        self._exclude = exclude_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand an upstream request to :meth:`handle` with its raw path."""
        path = client_path(scope)
        if scope["type"] != ScopeType.HTTP or path.startswith(self._exclude):
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send, path)

    async def handle(self, scope: HTTPScope, receive: Receive, send: Send, path: str) -> None:
        """Answer one upstream request (``path`` as the client sent it); subclasses override."""
        await self.app(scope, receive, send)
