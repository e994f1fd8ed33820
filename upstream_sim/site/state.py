"""State of the simulated site's logged-in side: accounts, issued sessions and the switches.

The site pages (``upstream_sim.site.routes``) read this object on every request; tests change it
in-process through its methods or over HTTP through ``/_sim/site``. Everything is guarded by
one lock because uvicorn serves from its own thread while the test thread steers.

What the switches simulate (FORMATS.md §3.1-3.3):

* ``captcha_required``: the login page carries a reCAPTCHA widget and a POST without a solved
  ``g-recaptcha-response`` is refused (0xboobface/ctbrec#2).
* ``two_factor_required``: a correct password leads to a second-factor page, no session.
* ``interstitial``: every site page first answers a Cloudflare-like "Just a moment..." page
  that auto-submits after ``interstitial_seconds`` and earns a ``cf_clearance`` cookie.
* ``age_gate``: pages carry the ``#entrance_terms_overlay`` until the ``agreeterms=1`` cookie.
* ``expiry_mode``: how an expired or missing session shows on a logged-in page: a redirect to
  ``/auth/login/?next=...``, the login page served with HTTP 200, or the anonymous page. The
  room-list API always answers such a session with the anonymous public list (§3.6).
* ``page_size`` / ``followers_page_size``: rooms per followed-cams page (the site's 90) and
  followers per followers page (a guess).
* ``fail_list``, ``fail_page``, ``fail_mode``: page ``fail_page`` of that list (``online``,
  ``offline`` or ``followers``) fails: ``http_500`` (the page itself), ``api_500`` (its
  room-list call) or ``broken`` (served cut short, before its list and script).
* ``expire_at_list_call``: the Nth room-list call (counted from when the switches were set)
  first expires every session: a session that dies in the middle of a crawl.
* ``server_rendered``: the followed-cams pages are the old site's, rendered on the server
  (``ul.list > li.room_list_room``), with no room-list call.
* ``followers_markup``: the followers pages in the guessed list markup (``list``) or in a
  markup the parsers were not written for (``table``: a table, "Followers (145)", paging in
  ``div.pagination``), as an independent fake of the site served them; ``followers_count``
  false leaves the total out of them.

Followers listeners (:meth:`SiteState.add_followers_listener`) hear of every change to an
account's followers list made through :meth:`SiteState.set_follows` (and the helpers that use
it): ``SimulatorState`` turns them into the account's Events API follow and unfollow events.
A new or replaced account (:meth:`SiteState.add_account`) starts with followers from before
any stream, so it is not a change. :meth:`SiteState.apply_follower_events` is the way back
(events appended by a test change the list) and tells no listener.
"""

import hmac
import secrets
import string
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec

from upstream_sim.site.follow_lists import FollowLists

ExpiryMode = Literal["redirect", "login_200", "anonymous"]
ListName = Literal["online", "offline", "followers"]
FailMode = Literal["http_500", "api_500", "broken"]
FollowersMarkup = Literal["list", "table"]
_SESSION_ALPHABET = string.ascii_lowercase + string.digits
SESSIONID_LENGTH = 32
FollowersListener = Callable[[str, Sequence[str], Sequence[str]], object]
"""Called with the account (lowercase), the followers added (oldest first) and removed."""
"""Django session keys are 32 characters; Cumination rejects a pasted sessionid otherwise."""


class SiteSwitches(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the site behaves now (see the module docstring)."""

    captcha_required: bool = False
    two_factor_required: bool = False
    interstitial: bool = False
    interstitial_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] = 1.0
    age_gate: bool = False
    expiry_mode: ExpiryMode = "redirect"
    page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 90
    followers_page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    fail_list: ListName | None = None
    fail_page: Annotated[int, msgspec.Meta(ge=0)] = 0
    fail_mode: FailMode = "http_500"
    expire_at_list_call: Annotated[int, msgspec.Meta(ge=0)] = 0
    server_rendered: bool = False
    followers_markup: FollowersMarkup = "list"
    followers_count: bool = True

    def fails(self, list_name: ListName, page: int, mode: FailMode) -> bool:
        """Whether page ``page`` of ``list_name`` fails this way."""
        return (self.fail_list, self.fail_page, self.fail_mode) == (list_name, page, mode)


@dataclass(slots=True)
class Account:
    """One site account.

    Attributes:
        username: Login name, as registered (matched case-insensitively).
        password: Plain text: this is a simulator.
        follows: Followed rooms (online, offline) and followers.
    """

    username: str
    password: str
    follows: FollowLists = field(default_factory=FollowLists)

    @property
    def followed_online(self) -> int:
        """Online followed rooms, as the header counts them."""
        return len(self.follows.online)

    @property
    def followed_total(self) -> int:
        """All followed rooms, as the header counts them."""
        return len(self.follows.online) + len(self.follows.offline)


@dataclass(slots=True)
class _Session:
    username: str
    expired: bool = False


class SiteState:
    """Accounts, sessions, Cloudflare clearances and switches of the simulated site."""

    def __init__(self) -> None:
        """Create a site with no accounts and every switch off."""
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._sessions: dict[str, _Session] = {}
        self._clearances: set[str] = set()
        self._switches = SiteSwitches()
        self._list_calls = 0
        self._followers_listeners: list[FollowersListener] = []

    def add_followers_listener(self, listener: FollowersListener) -> None:
        """Call ``listener`` after every change to a followers list (module docstring)."""
        with self._lock:
            self._followers_listeners.append(listener)

    @property
    def switches(self) -> SiteSwitches:
        """The current switches."""
        with self._lock:
            return self._switches

    def set_switches(self, switches: SiteSwitches) -> None:
        """Replace every switch at once (``msgspec.structs.replace`` the current ones)."""
        with self._lock:
            self._switches = switches
            self._list_calls = 0

    def reset(self) -> None:
        """Forget accounts, sessions and clearances; every switch off."""
        with self._lock:
            self._accounts.clear()
            self._sessions.clear()
            self._clearances.clear()
            self._switches = SiteSwitches()
            self._list_calls = 0

    def add_account(
        self,
        username: str,
        password: str,
        *,
        followed_online: int = 0,
        followed_total: int = 0,
        followers: int = 0,
    ) -> Account:
        """Register (or replace) an account with generated lists (seeded by its name)."""
        follows = FollowLists.generate(
            online=followed_online,
            offline=max(0, followed_total - followed_online),
            followers=followers,
            seed=zlib.crc32(username.lower().encode()),
        )
        account = Account(username, password, follows)
        with self._lock:
            self._accounts[username.lower()] = account
        return account

    def follows(self, username: str) -> FollowLists:
        """An account's lists now.

        Raises:
            KeyError: No such account.
        """
        with self._lock:
            return self._accounts[username.lower()].follows

    def set_follows(self, username: str, follows: FollowLists) -> None:
        """Replace an account's lists (``set_follows(u, follows(u).unfollow(x))``).

        Raises:
            KeyError: No such account.
        """
        with self._lock:
            account = self._accounts[username.lower()]
            before = account.follows.followers
            account.follows = follows
        self._tell_followers_listeners(username, before, follows.followers)

    def add_followers(self, username: str, names: Iterable[str]) -> None:
        """New followers, newest last in ``names``; ones already following are skipped.

        Raises:
            KeyError: No such account.
        """
        self.apply_follower_events(username, [(name, True) for name in names], notify=True)

    def remove_followers(self, username: str, names: Iterable[str]) -> None:
        """Followers who unfollow; names not following are skipped.

        Raises:
            KeyError: No such account.
        """
        self.apply_follower_events(username, [(name, False) for name in names], notify=True)

    def apply_follower_events(
        self, username: str, changes: Sequence[tuple[str, bool]], *, notify: bool = False
    ) -> None:
        """Apply follows (True) and unfollows (False) in order to the followers list.

        Without ``notify`` no listener hears of it: the changes came from the Events API.

        Raises:
            KeyError: No such account.
        """
        with self._lock:
            account = self._accounts[username.lower()]
            before = account.follows.followers
            # Oldest first, so a follow appends; reversed again, the list reads newest first.
            order = dict.fromkeys(reversed(before))
            for name, follows in changes:
                if follows:
                    order.setdefault(name)
                else:
                    order.pop(name, None)
            account.follows = account.follows.with_followers(reversed(list(order)))
            after = account.follows.followers
        if notify:
            self._tell_followers_listeners(username, before, after)

    def _tell_followers_listeners(
        self, username: str, before: tuple[str, ...], after: tuple[str, ...]
    ) -> None:
        # Outside the lock: a listener may read the site (the Stats API counts followers).
        with self._lock:
            listeners = list(self._followers_listeners)
        if before == after or not listeners:
            return
        kept, now = set(before), set(after)
        added = [name for name in reversed(after) if name not in kept]
        removed = [name for name in before if name not in now]
        if added or removed:
            for listener in listeners:
                listener(username.lower(), added, removed)

    def has_account(self, username: str) -> bool:
        """Whether the site has this account (names match case-insensitively)."""
        with self._lock:
            return username.lower() in self._accounts

    def count_list_call(self) -> None:
        """Counts a room-list call; the ``expire_at_list_call``-th expires every session."""
        with self._lock:
            self._list_calls += 1
            if self._list_calls != self._switches.expire_at_list_call:
                return
            for session in self._sessions.values():
                session.expired = True

    def accounts(self) -> list[str]:
        """Usernames of every account."""
        with self._lock:
            return [account.username for account in self._accounts.values()]

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if ``password`` is its password, else None."""
        with self._lock:
            account = self._accounts.get(username.lower())
        if account is None or not hmac.compare_digest(account.password, password):
            return None
        return account

    def open_session(self, username: str, *, sessionid: str | None = None) -> str:
        """Issue a session for an existing account and return its ``sessionid``.

        Args:
            username: The account.
            sessionid: Use this value instead of a random one (tests importing a known cookie).

        Raises:
            KeyError: No such account.
        """
        key = sessionid or "".join(
            secrets.choice(_SESSION_ALPHABET) for _ in range(SESSIONID_LENGTH)
        )
        with self._lock:
            account = self._accounts[username.lower()]
            self._sessions[key] = _Session(account.username)
        return key

    def account_for_session(self, sessionid: str | None) -> Account | None:
        """The account a live session belongs to; None when missing, unknown or expired."""
        if not sessionid:
            return None
        with self._lock:
            session = self._sessions.get(sessionid)
            if session is None or session.expired:
                return None
            return self._accounts.get(session.username.lower())

    def session_ids(self, username: str | None = None) -> list[str]:
        """Every issued ``sessionid`` (of one account if given), live or expired."""
        with self._lock:
            return [
                key
                for key, session in self._sessions.items()
                if username is None or session.username.lower() == username.lower()
            ]

    def expire_sessions(self, *, username: str | None = None, sessionid: str | None = None) -> int:
        """Expire one session, an account's sessions, or (no argument) all; returns how many."""
        count = 0
        with self._lock:
            for key, session in self._sessions.items():
                if sessionid is not None and key != sessionid:
                    continue
                if username is not None and session.username.lower() != username.lower():
                    continue
                if not session.expired:
                    session.expired = True
                    count += 1
        return count

    def issue_clearance(self) -> str:
        """A new ``cf_clearance`` value, valid from now on."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._clearances.add(token)
        return token

    def has_clearance(self, token: str | None) -> bool:
        """Whether ``token`` is a ``cf_clearance`` this site issued."""
        with self._lock:
            return token is not None and token in self._clearances
