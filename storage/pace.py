"""Request paces shared by every crawl on every machine: one row of ``request_paces`` per API.

A row holds ``next_at``, the earliest time (the database's clock, the one clock every machine
shares) the next request to that API may leave. :func:`take_slot` takes the slot if it is due,
under the row's lock, and moves ``next_at`` one interval on from the moment it was taken; when
it is not due it says how long is left, and the caller waits and asks again
(``roomwatch_take_slot``, migration 0018). :func:`hold_off` pushes ``next_at`` later when the
API asks everyone to wait (a 429).

Why a slot is taken only when due, not reserved ahead (``greatest(next_at, now)``, then wait
for it): a reserved slot stays where it was reserved, so a sender held up after reserving (a
busy CPU, a slow hop back to its event loop) sends late while the next reserved slot, in
another process, does not move: two requests can then leave well under an interval apart (on
a loaded two-core machine, two processes reserving 50 ms slots had two land 1 ms apart). A
slot taken when due is taken by whoever is ready, and the next one counts from that moment.
"""

from __future__ import annotations

from typing import Any

import psycopg

Connection = psycopg.Connection[Any]

CBHOURS = "cbhours"
"""The pace of every request to the CBHours API (``cbhours.min_interval_seconds``)."""

_HOLD_OFF = """
INSERT INTO request_paces AS p (name, next_at)
VALUES (%(name)s, clock_timestamp() + make_interval(secs => %(seconds)s))
ON CONFLICT (name) DO UPDATE
    SET next_at = greatest(p.next_at, clock_timestamp() + make_interval(secs => %(seconds)s))
"""


def take_slot(conn: Connection, name: str, interval: float) -> float:
    """Takes the slot of pace ``name`` if it is due: returns 0.0, and the next slot is
    ``interval`` seconds away; otherwise returns the seconds until it is due (ask again then).

    Args:
        conn: An autocommit connection: the row is locked for this one statement only.
        name: The pace (:data:`CBHOURS`).
        interval: Seconds from this slot to the next.
    """
    row = conn.execute("SELECT roomwatch_take_slot(%s, %s)", [name, interval]).fetchone()
    assert row is not None  # a function call returns one row
    return max(0.0, float(row[0]))


def hold_off(conn: Connection, name: str, seconds: float) -> None:
    """Lets no slot of pace ``name`` be taken sooner than ``seconds`` from now (never shortens a
    wait already promised)."""
    conn.execute(_HOLD_OFF, {"name": name, "seconds": seconds})
