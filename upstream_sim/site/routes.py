"""HTTP face of the simulated site's logged-in side: login form, logged-in pages, controls.

Routes (FORMATS.md §3.1-3.3):

* ``GET /auth/login/`` sets a ``csrftoken`` cookie and renders the form with the same token in
  ``csrfmiddlewaretoken`` (Django masks the form copy; the simulator uses the value itself).
* ``POST /auth/login/`` checks the CSRF pair (403 otherwise), the captcha switch, the password
  and the second-factor switch, then sets a 32-character httpOnly ``sessionid`` cookie
  (persistent with ``rememberme``, else a browser-session cookie) and redirects to ``next``.
* ``GET /``: the header shows the followed counts and the user menu for a live session.
  Logged-in pages (``upstream_sim.site.list_routes``: followed cams, followers) answer a missing
  or expired session as ``expiry_mode`` says.
* ``POST /cdn-cgi/challenge-platform/...``: where the "Just a moment..." page posts to; it sets
  ``cf_clearance`` and redirects back.

Logged-in pages start with :func:`gate` and :func:`require_login`, so the interstitial, the
age gate and the expiry modes apply to them all the same way. Control routes live under
``/_sim/site``.
"""

import hmac
import secrets
import string
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import JSONBody
from litestar.response import Redirect

from upstream_sim.requests_log import client_path
from upstream_sim.site.pages import (
    CHALLENGE_PATH,
    anonymous_page,
    csrf_failure_page,
    home_page,
    interstitial_page,
    login_page,
    two_factor_page,
)
from upstream_sim.site.state import (
    Account,
    ExpiryMode,
    FailMode,
    ListName,
    SiteState,
    SiteSwitches,
)
from upstream_sim.state import SimulatorState

LOGIN_PATH = "/auth/login/"
SITE_CONTROL_PATH = "/_sim/site"
_CSRF_ALPHABET = string.ascii_letters + string.digits
_REMEMBER_SECONDS = 14 * 24 * 3600
_LOGIN_REFUSED = (
    "Please enter a correct username and password. Note that both fields may be case-sensitive."
)


def html(
    content: str, status_code: int = 200, cookies: list[Cookie] | None = None
) -> Response[str]:
    """An HTML response."""
    return Response(content, status_code=status_code, media_type=MediaType.HTML, cookies=cookies)


def full_path(request: Request[Any, Any, Any]) -> str:
    """The path and query as the client sent them (the ``next`` of a login redirect)."""
    query = request.scope["query_string"].decode("latin-1")
    return client_path(request.scope) + (f"?{query}" if query else "")


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after login; anything else (``//host``, ``http:``) becomes default."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    return value


def age_gate_shown(request: Request[Any, Any, Any], switches: SiteSwitches) -> bool:
    """Whether the page gets the age-terms overlay (switch on and terms not yet agreed)."""
    return switches.age_gate and request.cookies.get("agreeterms") != "1"


def gate(request: Request[Any, Any, Any], site: SiteState) -> Response[str] | None:
    """The interstitial to answer instead of the page, or None when the client has clearance."""
    switches = site.switches
    if not switches.interstitial or site.has_clearance(request.cookies.get("cf_clearance")):
        return None
    page = interstitial_page(return_to=full_path(request), seconds=switches.interstitial_seconds)
    response = html(page, status_code=403)
    response.headers["cf-mitigated"] = "challenge"
    return response


def require_login(request: Request[Any, Any, Any], site: SiteState) -> Account | Response[Any]:
    """The logged-in account, or the answer for a missing or expired session."""
    account = site.account_for_session(request.cookies.get("sessionid"))
    if account is not None:
        return account
    switches = site.switches
    here = full_path(request)
    if switches.expiry_mode == "redirect":
        return Redirect(f"{LOGIN_PATH}?next={quote(here, safe='/')}", status_code=302)
    if switches.expiry_mode == "login_200":
        return _login_form(request, switches, next_path=here)
    return html(anonymous_page(age_gate=age_gate_shown(request, switches)))


def _login_form(
    request: Request[Any, Any, Any],
    switches: SiteSwitches,
    *,
    next_path: str,
    error: str | None = None,
) -> Response[str]:
    token = request.cookies.get("csrftoken") or "".join(
        secrets.choice(_CSRF_ALPHABET) for _ in range(64)
    )
    page = login_page(
        csrf_token=token,
        next_path=next_path,
        error=error,
        captcha=switches.captcha_required,
        age_gate=age_gate_shown(request, switches),
    )
    cookie = Cookie(key="csrftoken", value=token, max_age=365 * 24 * 3600, samesite="lax")
    return html(page, cookies=[cookie])


class SiteController(Controller):
    """The site's pages. Needs the ``sim`` dependency (see ``app.create_app``)."""

    @get("/")
    async def home(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """The home page, logged in or not."""
        if (blocked := gate(request, sim.site)) is not None:
            return blocked
        account = sim.site.account_for_session(request.cookies.get("sessionid"))
        return html(home_page(account, age_gate=age_gate_shown(request, sim.site.switches)))

    @get(LOGIN_PATH)
    async def login_form(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """The login form, with a fresh or the existing CSRF token."""
        if (blocked := gate(request, sim.site)) is not None:
            return blocked
        next_path = safe_next(request.query_params.get("next"))
        return _login_form(request, sim.site.switches, next_path=next_path)

    @post(LOGIN_PATH, status_code=200)
    async def login_submit(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """Check the form; on success set ``sessionid`` and redirect to ``next``."""
        form = await request.form()
        fields = {key: str(form.get(key) or "") for key in form}
        cookie_token = request.cookies.get("csrftoken", "")
        form_token = fields.get("csrfmiddlewaretoken", "")
        if not cookie_token or not hmac.compare_digest(cookie_token, form_token):
            return html(csrf_failure_page(), status_code=403)
        switches = sim.site.switches
        next_path = safe_next(fields.get("next"))
        if switches.captcha_required and not fields.get("g-recaptcha-response"):
            error = "Please complete the captcha to continue."
            return _login_form(request, switches, next_path=next_path, error=error)
        account = sim.site.authenticate(fields.get("username", ""), fields.get("password", ""))
        if account is None:
            return _login_form(request, switches, next_path=next_path, error=_LOGIN_REFUSED)
        if switches.two_factor_required:
            return html(two_factor_page(csrf_token=cookie_token, next_path=next_path))
        sessionid = sim.site.open_session(account.username)
        max_age = _REMEMBER_SECONDS if fields.get("rememberme") else None
        cookie = Cookie(
            key="sessionid", value=sessionid, httponly=True, max_age=max_age, samesite="lax"
        )
        return Redirect(next_path, status_code=302, cookies=[cookie])

    @post(CHALLENGE_PATH, status_code=200)
    async def challenge(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """The interstitial's form target: grants ``cf_clearance`` and goes back."""
        form = await request.form()
        target = safe_next(str(form.get("return_to") or ""))
        cookie = Cookie(
            key="cf_clearance", value=sim.site.issue_clearance(), httponly=True, max_age=1800
        )
        return Redirect(target, status_code=302, cookies=[cookie])


class AccountBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/accounts``."""

    username: Annotated[str, msgspec.Meta(min_length=1)]
    password: Annotated[str, msgspec.Meta(min_length=1)]
    followed_online: Annotated[int, msgspec.Meta(ge=0)] = 0
    followed_total: Annotated[int, msgspec.Meta(ge=0)] = 0


class SwitchesUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/switches``: only the switches given change."""

    captcha_required: bool | None = None
    two_factor_required: bool | None = None
    interstitial: bool | None = None
    interstitial_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] | None = None
    age_gate: bool | None = None
    expiry_mode: ExpiryMode | None = None
    page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None
    followers_page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None
    fail_list: ListName | None = None
    fail_page: Annotated[int, msgspec.Meta(ge=0)] | None = None
    fail_mode: FailMode | None = None
    expire_at_list_call: Annotated[int, msgspec.Meta(ge=0)] | None = None
    server_rendered: bool | None = None


class ExpireBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/sessions/expire``; neither field expires every session."""

    username: str | None = None
    sessionid: str | None = None


class ExpiredView(msgspec.Struct, frozen=True, kw_only=True):
    """How many sessions an expire request ended."""

    expired: int


class SiteView(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /_sim/site`` shows (no passwords, no session values)."""

    switches: SiteSwitches
    accounts: list[str]
    sessions: int


class SiteControlController(Controller):
    """The ``/_sim/site`` control routes."""

    path = SITE_CONTROL_PATH

    @get("/")
    async def view(self, sim: NamedDependency[SimulatorState]) -> SiteView:
        """Switches, account names and how many sessions were issued."""
        return _site_view(sim.site)

    @delete("/")
    async def reset(self, sim: NamedDependency[SimulatorState]) -> None:
        """Forget accounts and sessions, every switch off."""
        sim.site.reset()

    @post("/accounts", status_code=201)
    async def add_account(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[AccountBody]
    ) -> SiteView:
        """Register (or replace) an account."""
        sim.site.add_account(
            data.username,
            data.password,
            followed_online=data.followed_online,
            followed_total=data.followed_total,
        )
        return _site_view(sim.site)

    @post("/switches", status_code=200)
    async def set_switches(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[SwitchesUpdate]
    ) -> SiteSwitches:
        """Change the given switches, keep the others."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        switches = msgspec.structs.replace(sim.site.switches, **changes)
        sim.site.set_switches(switches)
        return switches

    @post("/sessions/expire", status_code=200)
    async def expire(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[ExpireBody]
    ) -> ExpiredView:
        """Expire one session, an account's sessions, or all of them."""
        count = sim.site.expire_sessions(username=data.username, sessionid=data.sessionid)
        return ExpiredView(expired=count)


def _site_view(site: SiteState) -> SiteView:
    return SiteView(
        switches=site.switches, accounts=site.accounts(), sessions=len(site.session_ids())
    )
