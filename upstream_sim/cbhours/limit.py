"""The global request-rate limiter of the simulated CBHours API ("1 request per second").

The docs say the API is "limited to one API request per second. Exceeding this limit may
result in a temporary block" (FORMATS.md §2.1) but not how the block looks. The simulator
answers HTTP 429 with ``Retry-After``, so a client that does not pace itself fails in tests
instead of in production.
"""

import math
import threading
import time

import msgspec


class RateLimitView(msgspec.Struct, frozen=True, kw_only=True):
    """The limiter's settings and counters (``GET /_sim/cbhours``)."""

    enabled: bool
    interval: float
    tolerance: float
    accepted: int
    refused: int


class RateLimit:
    """One global "1 request per second" clock over every CBHours request; thread-safe.

    The docs say the API is "limited to one API request per second" (FORMATS.md §2.1) but
    not whether it answers 429; the simulator does, so clients must pace themselves. A request
    is refused when it comes less than ``interval - tolerance`` seconds after the last
    *accepted* one: refusals do not restart the clock (a client hammering at 10 rps still gets
    one answer per second), and the tolerance lets a client that paces at exactly ``interval``
    through despite scheduling jitter between its clock and the server's.
    """

    def __init__(
        self, *, interval: float = 1.0, tolerance: float = 0.02, enabled: bool = True
    ) -> None:
        """Create the limiter; see :meth:`configure` for the arguments."""
        self._lock = threading.Lock()
        self._last: float | None = None
        self._accepted = 0
        self._refused = 0
        self.enabled = True
        self.interval = 1.0
        self.tolerance = 0.0
        self.configure(enabled=enabled, interval=interval, tolerance=tolerance)

    def configure(
        self,
        *,
        enabled: bool | None = None,
        interval: float | None = None,
        tolerance: float | None = None,
    ) -> None:
        """Change settings; None keeps the current value.

        Args:
            enabled: False lets every request through (still counted as accepted).
            interval: Minimum seconds between accepted requests.
            tolerance: Slack subtracted from ``interval`` when checking.
        """
        with self._lock:
            if interval is not None:
                if interval < 0:
                    raise ValueError(f"interval must be >= 0, got {interval}")
                self.interval = interval
            if tolerance is not None:
                if tolerance < 0:
                    raise ValueError(f"tolerance must be >= 0, got {tolerance}")
                self.tolerance = tolerance
            if enabled is not None:
                self.enabled = enabled

    @property
    def retry_after(self) -> int:
        """Whole seconds for the ``Retry-After`` header: never less than a full interval."""
        return max(1, math.ceil(self.interval))

    def admit(self, now: float | None = None) -> bool:
        """Decide one request and count it.

        Args:
            now: ``time.monotonic()`` of the request; taken here when None.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if (
                self.enabled
                and self._last is not None
                and now - self._last < self.interval - self.tolerance
            ):
                self._refused += 1
                return False
            self._last = now
            self._accepted += 1
            return True

    def reset(self) -> None:
        """Zero the counters and forget the last request (settings stay)."""
        with self._lock:
            self._last = None
            self._accepted = 0
            self._refused = 0

    def view(self) -> RateLimitView:
        """Settings and counters, as one consistent snapshot."""
        with self._lock:
            return RateLimitView(
                enabled=self.enabled,
                interval=self.interval,
                tolerance=self.tolerance,
                accepted=self._accepted,
                refused=self._refused,
            )
