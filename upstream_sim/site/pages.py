"""HTML of the simulated site: login, second factor, logged-in and anonymous pages, interstitial.

Markup follows what clients of the real site rely on (FORMATS.md §3.1-3.5): Django-style login
form (``#id_username``, ``#id_password``, hidden ``csrfmiddlewaretoken`` and ``next``), the title
"Login, Chaturbate login" and ``<h1>Chaturbate Login</h1>``, the header's
``span.followed_counts`` "(online/total)" and ``div#user_information``, the age-terms overlay
``#entrance_terms_overlay`` closed by ``#close_entrance_terms`` (remembered by ``agreeterms=1``)
and Cloudflare's "Just a moment..." page. Pages are self-contained (inline CSS and script,
nothing fetched) so a headless browser renders them without network access.
"""

from html import escape

from upstream_sim.site.state import Account

CHALLENGE_PATH = "/cdn-cgi/challenge-platform/h/g/orchestrate"

_AGE_GATE = """
<div id="entrance_terms_overlay" style="position:fixed;top:0;left:0;width:100%;height:100%;
 z-index:1000;background:rgba(0,0,0,0.92);color:#fff">
 <div id="entrance_terms" style="margin:10% auto;width:480px">
  <h1>THIS WEBSITE CONTAINS MATERIAL THAT IS SEXUALLY EXPLICIT</h1>
  <p>You must be at least eighteen years of age to use this website.</p>
  <a href="#" id="close_entrance_terms" style="color:#fff">I AGREE</a>
 </div>
</div>
<script>
document.getElementById("close_entrance_terms").addEventListener("click", function (event) {
  event.preventDefault();
  document.cookie = "agreeterms=1; path=/; max-age=2592000";
  document.getElementById("entrance_terms_overlay").style.display = "none";
});
</script>"""


def layout(title: str, header: str, body: str, *, age_gate: bool) -> str:
    """A whole page: title, header, main content and, if asked, the age-terms overlay."""
    gate = _AGE_GATE if age_gate else ""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head>\n<body>\n"
        f"<div id='header'>{header}</div>\n<div id='main'>{body}</div>{gate}\n</body></html>\n"
    )


def anonymous_header() -> str:
    """The header a visitor sees: log in and sign up links."""
    return (
        "<ul id='nav'><li><a href='/'>HOME</a></li></ul>"
        "<div class='login-links'><a href='/auth/login/' data-testid='login-link'>Log In</a> "
        "<a href='/accounts/register/'>Sign Up</a></div>"
    )


def logged_in_header(account: Account) -> str:
    """The header of every logged-in page: followed counts and the user menu."""
    name = escape(account.username)
    return (
        "<ul id='nav'><li id='followed_tab'><a href='/followed-cams/online/' "
        "class='followed-header dropdown-anchor' id='followed_anchor' "
        "data-testid='following-tab'><div style='display: inline-block'>"
        "<span class='followed_text'>FOLLOWING</span> "
        "<span class='followed_counts' data-paction-name='FOLLOWED'>"
        f"({account.followed_online}/{account.followed_total})</span></div></a></li></ul>"
        f"<div id='user_information' data-testid='user-menu'><a class='username' href='/p/{name}/'"
        f" data-testid='user-menu-username'>{name}</a> <a href='/auth/logout/'>Log Out</a></div>"
    )


def login_page(
    *,
    csrf_token: str,
    next_path: str,
    error: str | None = None,
    captcha: bool = False,
    age_gate: bool = False,
) -> str:
    """The login page, optionally with an error list and a reCAPTCHA widget."""
    errors = f"<ul class='errorlist'><li>{escape(error)}</li></ul>" if error else ""
    widget = (
        "<div class='g-recaptcha' id='captcha' data-sitekey='6LeSimulatedSiteKey000000'></div>"
        "<input type='hidden' name='g-recaptcha-response' id='g-recaptcha-response' value=''>"
        if captcha
        else ""
    )
    body = (
        "<h1>Chaturbate Login</h1>"
        f"{errors}<form method='post' action='/auth/login/' id='login-form'>"
        f"<input type='hidden' name='csrfmiddlewaretoken' value='{escape(csrf_token)}'>"
        f"<input type='hidden' name='next' value='{escape(next_path)}'>"
        "<label for='id_username'>Username:</label>"
        "<input type='text' name='username' id='id_username' autocomplete='username' required>"
        "<label for='id_password'>Password:</label>"
        "<input type='password' name='password' id='id_password' "
        "autocomplete='current-password' required>"
        "<label><input type='checkbox' name='rememberme' id='id_rememberme'> Keep me logged in"
        f"</label>{widget}"
        "<input type='submit' value='Log In' data-testid='login-submit-button'></form>"
    )
    return layout("Login, Chaturbate login", anonymous_header(), body, age_gate=age_gate)


def two_factor_page(*, csrf_token: str, next_path: str) -> str:
    """The second-factor challenge shown after a correct password."""
    body = (
        "<h1>Two-Factor Authentication</h1><p>Enter the verification code from your app.</p>"
        "<form method='post' action='/auth/login/two-factor/' id='two-factor-form'>"
        f"<input type='hidden' name='csrfmiddlewaretoken' value='{escape(csrf_token)}'>"
        f"<input type='hidden' name='next' value='{escape(next_path)}'>"
        "<input type='text' name='otp_token' id='id_otp_token' autocomplete='one-time-code'>"
        "<input type='submit' value='Verify'></form>"
    )
    return layout("Two-Factor Authentication", anonymous_header(), body, age_gate=False)


def home_page(account: Account | None, *, age_gate: bool) -> str:
    """The home page, with the header of a logged-in user or of a visitor."""
    header = logged_in_header(account) if account else anonymous_header()
    body = "<h1>Free Chat with Cam Models</h1><div id='roomlist_root'></div>"
    return layout("Chaturbate - Free Adult Webcams", header, body, age_gate=age_gate)


def anonymous_page(*, age_gate: bool) -> str:
    """What a visitor sees on a logged-in path when the site does not redirect."""
    return home_page(None, age_gate=age_gate)


def interstitial_page(*, return_to: str, seconds: float) -> str:
    """Cloudflare-like challenge: waits, then posts to the challenge path for a clearance."""
    return (
        "<!DOCTYPE html>\n<html lang='en-US'><head><title>Just a moment...</title></head>"
        "<body><h1>Checking your browser before accessing the site.</h1>"
        f"<form id='challenge-form' method='POST' action='{CHALLENGE_PATH}'>"
        f"<input type='hidden' name='return_to' value='{escape(return_to)}'></form>"
        "<script>setTimeout(function () { document.getElementById('challenge-form').submit(); }"
        f", {int(seconds * 1000)});</script></body></html>\n"
    )


def csrf_failure_page() -> str:
    """Django's answer to a POST without a matching CSRF token."""
    body = "<h1>Forbidden (403)</h1><p>CSRF verification failed. Request aborted.</p>"
    return layout("403 Forbidden", "", body, age_gate=False)
