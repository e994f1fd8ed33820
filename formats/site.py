"""What roomwatch knows about the site's pages: their paths and the markers that tell them apart.

The selectors come from FORMATS.md §3.1-3.5 (clients of the real site and saved logged-in DOM):

* logged in: the header's ``span.followed_counts`` "(online/total)", or the user menu
  ``#user_information`` (older site);
* the login page: ``<h1>Chaturbate Login</h1>``, a title containing "Login", ``#id_password``;
* Cloudflare's check: the title "Just a moment..."; a real browser passes it by waiting;
* the age-terms overlay ``#entrance_terms_overlay``, closed by ``#close_entrance_terms``;
* challenges only a person can answer: a captcha widget, or a second-factor code field.

The parsers (``formats/``), the login and probe (``sessions/``) and the logged-in spiders read
them here; how a browser gets past the gates is ``sessions/pages.py``.
"""

from __future__ import annotations

LOGIN_PATH = "/auth/login/"
PROBE_PATH = "/followed-cams/"
FOLLOWERS_PATH = "/accounts/followers/"
LOGGED_IN_SELECTOR = "span.followed_counts, #user_information"
USERNAME_SELECTOR = "#user_information a.username, [data-testid=user-menu-username]"
LOGIN_FORM_SELECTOR = "#id_password"
LOGIN_ERROR_SELECTOR = ".errorlist li"
CAPTCHA_SELECTOR = (
    ".g-recaptcha, iframe[src*=recaptcha], .h-captcha, iframe[src*=hcaptcha], #captcha, "
    ".cf-turnstile, iframe[src*='challenges.cloudflare.com']"
)
TWO_FACTOR_SELECTOR = (
    "#id_otp_token, input[name=otp_token], input[autocomplete=one-time-code], "
    "form[action*=two-factor], form[action*=two_factor]"
)
AGE_GATE_SELECTOR = "#entrance_terms_overlay"
AGE_GATE_CLOSE_SELECTOR = "#close_entrance_terms"
INTERSTITIAL_TITLE = "Just a moment"
