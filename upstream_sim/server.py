"""Run the simulator over real HTTP on loopback: in a background thread for tests, or blocking.

Tests get a real socket (the crawler under test speaks HTTP exactly as in production) without
a subprocess: :class:`SimulatorServer` binds 127.0.0.1 on a free port itself, hands the socket
to uvicorn in a daemon thread and reads the port back from that socket, so there is no window
in which another process could take the port.
"""

import socket
import threading
import time
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlencode

import uvicorn

from upstream_sim.affiliate.routes import LEGACY_ONLINE_ROOMS_PATH, ONLINE_ROOMS_PATH
from upstream_sim.app import create_app
from upstream_sim.cbhours.routes import CBHOURS_PATH
from upstream_sim.events.routes import EVENTS_PATH
from upstream_sim.state import SimulatorState
from upstream_sim.stats.routes import STATS_PATH
from upstream_sim.tokens import TokenBook, default_token

_STARTUP_TIMEOUT = 10.0
_SHUTDOWN_TIMEOUT = 10.0


class SimulatorServer:
    """The simulator served by uvicorn in a background thread, as a context manager.

    Example::

        with SimulatorServer(SimulatorState(affiliate=AffiliateFeed(1000, seed=1))) as sim:
            httpx.get(sim.affiliate_url, params={"wm": "x", "client_ip": "request_ip"})
            assert sim.state.requests.count(ONLINE_ROOMS_PATH) == 1
    """

    def __init__(self, state: SimulatorState | None = None, *, host: str = "127.0.0.1") -> None:
        """Prepare (but do not start) a server.

        Args:
            state: What to serve; an empty :class:`SimulatorState` when None.
            host: Loopback address to bind; the port is always picked by the OS.
        """
        self.state = state or SimulatorState()
        self._host = host
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._socket is None:
            raise RuntimeError("SimulatorServer is not running")
        return f"http://{self._host}:{self._port}"

    @property
    def affiliate_url(self) -> str:
        """URL of the current Affiliate online-rooms endpoint."""
        return self.base_url + ONLINE_ROOMS_PATH

    @property
    def legacy_affiliate_url(self) -> str:
        """URL of the legacy (2017) Affiliate online-rooms endpoint."""
        return self.base_url + LEGACY_ONLINE_ROOMS_PATH

    @property
    def cbhours_url(self) -> str:
        """URL of the CBHours ``api.php`` endpoint (all three actions)."""
        return self.base_url + CBHOURS_PATH

    def events_url(self, username: str, token: str | None = None) -> str:
        """The owner's Events API URL as the site shows it: ``.../events/<user>/<token>/``.

        Args:
            username: The site account (the broadcaster).
            token: The token to put in it; the account's first accepted token when None.
        """
        token = token if token is not None else self._token(self.state.events.tokens, username)
        return f"{self.base_url}{EVENTS_PATH}{quote(username)}/{quote(token)}/"

    def stats_url(self, username: str, token: str | None = None) -> str:
        """The owner's Stats API URL: ``.../statsapi/?username=<user>&token=<token>``.

        Args:
            username: The site account.
            token: The token to put in it; the account's first accepted token when None.
        """
        token = token if token is not None else self._token(self.state.stats.tokens, username)
        query = urlencode({"username": username, "token": token})
        return f"{self.base_url}{STATS_PATH}?{query}"

    @staticmethod
    def _token(book: TokenBook, username: str) -> str:
        tokens = book.tokens(username)
        return tokens[0] if tokens else default_token(username)

    def start(self) -> None:
        """Bind, start uvicorn in a daemon thread and wait until it accepts connections.

        Raises:
            RuntimeError: Already running, or uvicorn did not start within 10 s.
        """
        if self._socket is not None:
            raise RuntimeError("SimulatorServer is already running")
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are
        # TCP, and without it every small response stalls ~40 ms on Nagle + delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        self._port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="upstream-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("upstream simulator failed to start (see uvicorn's log)")
            time.sleep(0.005)

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for the thread and release the socket. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_SHUTDOWN_TIMEOUT)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(_SHUTDOWN_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> Self:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


def serve(host: str, port: int, state: SimulatorState) -> None:
    """Serve the simulator in the foreground until interrupted (for ``roomwatch simulate``).

    Args:
        host: Address to bind; keep it on loopback, the simulator has no authentication.
        port: Port to bind.
        state: What to serve.
    """
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
