"""Control routes under ``/_sim/`` shared by every upstream: the request log and the faults.

Each upstream's own control routes (``/_sim/affiliate``, ``/_sim/cbhours``, ``/_sim/events``,
``/_sim/site``, ``/_sim/stats``) live
in its subpackage's ``control.py``, under :data:`CONTROL_PREFIX`.

Tests running in the same process can call the state objects directly; these routes exist for
everything else (a benchmark or demo driving a ``roomwatch simulate`` process, or a crawl
subprocess under test). They are never logged or faulted themselves.
"""

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from upstream_sim.faults import FaultRule, FaultState
from upstream_sim.requests_log import RequestRecord
from upstream_sim.state import SimulatorState

CONTROL_PREFIX = "/_sim/"


class FaultPlanBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/faults``: the new plan, replacing the old one."""

    rules: list[FaultRule]


class FaultPlanView(msgspec.Struct, frozen=True, kw_only=True):
    """The plan with the shots each rule has left."""

    rules: list[FaultState]


class RequestsView(msgspec.Struct, frozen=True, kw_only=True):
    """Logged requests, oldest response first."""

    count: int
    requests: list[RequestRecord]


class ControlController(Controller):
    """The ``/_sim/`` routes. Needs a ``sim`` dependency (see ``app.create_app``)."""

    path = CONTROL_PREFIX.rstrip("/")

    @get("/requests")
    async def requests(
        self, sim: NamedDependency[SimulatorState], prefix: FromQuery[str] = ""
    ) -> RequestsView:
        """The request log, optionally only paths starting with ``prefix``."""
        entries = sim.requests.entries(prefix)
        return RequestsView(count=len(entries), requests=entries)

    @delete("/requests")
    async def clear_requests(self, sim: NamedDependency[SimulatorState]) -> None:
        """Empty the request log."""
        sim.requests.clear()

    @get("/faults")
    async def faults(self, sim: NamedDependency[SimulatorState]) -> FaultPlanView:
        """The current fault plan."""
        return FaultPlanView(rules=sim.faults.state())

    @post("/faults", status_code=200)
    async def set_faults(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[FaultPlanBody]
    ) -> FaultPlanView:
        """Replace the fault plan."""
        sim.faults.set(data.rules)
        return FaultPlanView(rules=sim.faults.state())

    @delete("/faults")
    async def clear_faults(self, sim: NamedDependency[SimulatorState]) -> None:
        """Remove every fault rule."""
        sim.faults.clear()
