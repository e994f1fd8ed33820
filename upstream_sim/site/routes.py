"""HTTP face of the simulated site's login side: login form, home page, second factor, challenge.

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
``/_sim/site`` (``control.py``).
"""

import hmac
import secrets
import string
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.response import Redirect

from upstream_sim.middleware import client_path
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
    SiteState,
    SiteSwitches,
)
from upstream_sim.state import SimulatorState

LOGIN_PATH = "/auth/login/"
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
