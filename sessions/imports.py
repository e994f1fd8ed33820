"""Cookie files to a Playwright storage state: the ``roomwatch login --import FILE`` parsers.

Three formats are recognised from the content, not the file name:

* browser-extension JSON (EditThisCookie, Cookie-Editor): an array of
  ``{domain, name, value, path, expirationDate, httpOnly, secure, sameSite, hostOnly, ...}``;
* a Playwright storage state: ``{"cookies": [...], "origins": [...]}``;
* Netscape ``cookies.txt``: 7 tab-separated fields (domain, include subdomains, path, secure,
  expires, name, value); ``#HttpOnly_`` before the domain marks an httpOnly cookie, other ``#``
  lines are comments.

Only cookies the configured site would receive are kept: host-only cookies of its host, and
domain cookies of its host or a parent domain (``.chaturbate.com`` for ``www.chaturbate.com``),
never of a bare top-level domain. Expired cookies
are dropped. A ``sessionid`` cookie must remain, else there is nothing to log in with. Errors
name the file, the problem and, for cookies.txt, the line; they never quote a cookie value.
Extension ``sameSite`` values map to Playwright's: ``no_restriction`` is ``None``, ``strict`` is
``Strict``, anything else (``lax``, ``unspecified``, missing) is ``Lax``, Chromium's default.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from playwright.async_api import StorageState, StorageStateCookie

from roomwatch.errors import SessionError

SESSION_COOKIE = "sessionid"
SameSite = Literal["Lax", "None", "Strict"]
_EXTENSION_SAME_SITE: dict[str, SameSite] = {"no_restriction": "None", "strict": "Strict"}
_NETSCAPE_FIELDS = "domain, include subdomains, path, secure, expires, name, value"


class _ExtensionCookie(msgspec.Struct):
    domain: str
    name: str
    value: str
    path: str = "/"
    expirationDate: float | None = None
    session: bool = False
    hostOnly: bool | None = None
    httpOnly: bool = False
    secure: bool = False
    sameSite: str | None = None


class _StateCookie(msgspec.Struct):
    name: str
    value: str
    domain: str
    path: str = "/"
    expires: float = -1
    httpOnly: bool = False
    secure: bool = False
    sameSite: SameSite = "Lax"


class _LocalStorageEntry(msgspec.Struct):
    name: str
    value: str


class _Origin(msgspec.Struct):
    origin: str
    localStorage: list[_LocalStorageEntry] = msgspec.field(default_factory=list)


class _State(msgspec.Struct):
    cookies: list[_StateCookie]
    origins: list[_Origin] = msgspec.field(default_factory=list)


def site_host(site_url: str) -> str:
    """The lower-case host of the configured site URL."""
    return (urlsplit(site_url).hostname or "").lower()


def cookie_applies(domain: str, host: str) -> bool:
    """Whether a cookie for ``domain`` is sent to ``host``.

    A host-only cookie (no leading dot) goes to that host alone; a domain cookie
    (``.chaturbate.com``) also to its subdomains, but never for a bare top-level domain.
    """
    bare = domain.lstrip(".").lower()
    if not bare or bare == host:
        return bool(bare)
    return domain.startswith(".") and "." in bare and host.endswith("." + bare)


def read_cookie_file(path: Path, *, site_url: str) -> StorageState:
    """Reads and parses a cookie file (see :func:`parse_cookies`).

    Raises:
        SessionError: The file cannot be read, or :func:`parse_cookies` refuses it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SessionError(f"cannot read {path} ({exc.strerror})") from None
    return parse_cookies(data, site_url=site_url, source=str(path))


def parse_cookies(data: bytes | str, *, site_url: str, source: str = "FILE") -> StorageState:
    """Parses any of the three formats into a storage state holding the site's cookies.

    Args:
        data: The file content.
        site_url: The configured site root; only its cookies are kept.
        source: How to name the input in error messages (the file path).

    Raises:
        SessionError: Unknown or broken format, or no live ``sessionid`` for the site.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SessionError(
                f"{source}: not a text file (export the cookies as JSON or cookies.txt; a "
                "browser's cookie database cannot be imported)"
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        cookies, origins = _parse_json(stripped, source)
    else:
        cookies, origins = _parse_netscape(text, source), []
    return _for_site(cookies, origins, site_url, source)


def _parse_json(text: str, source: str) -> tuple[list[StorageStateCookie], list[_Origin]]:
    try:
        document = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise SessionError(f"{source}: not valid JSON ({exc})") from None
    try:
        if isinstance(document, list):
            cookies = msgspec.convert(document, list[_ExtensionCookie])
            return [_from_extension(cookie) for cookie in cookies], []
        if isinstance(document, dict) and "cookies" in document:
            state = msgspec.convert(document, _State)
            return [_from_state(cookie) for cookie in state.cookies], state.origins
    except msgspec.ValidationError as exc:
        raise SessionError(f"{source}: not a cookie export ({exc})") from None
    raise SessionError(
        f"{source}: JSON that is neither a cookie array (browser extension) nor a Playwright "
        'storage state ({"cookies": [...]})'
    )


def _domain(domain: str, *, host_only: bool) -> str:
    bare = domain.lstrip(".")
    return bare if host_only or _is_ip(bare) else "." + bare


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _from_extension(cookie: _ExtensionCookie) -> StorageStateCookie:
    host_only = (
        cookie.hostOnly if cookie.hostOnly is not None else not cookie.domain.startswith(".")
    )
    expires = -1.0 if cookie.session or cookie.expirationDate is None else cookie.expirationDate
    return {
        "name": cookie.name,
        "value": cookie.value,
        "domain": _domain(cookie.domain, host_only=host_only),
        "path": cookie.path or "/",
        "expires": expires,
        "httpOnly": cookie.httpOnly,
        "secure": cookie.secure,
        "sameSite": _EXTENSION_SAME_SITE.get((cookie.sameSite or "").lower(), "Lax"),
    }


def _from_state(cookie: _StateCookie) -> StorageStateCookie:
    return {
        "name": cookie.name,
        "value": cookie.value,
        "domain": cookie.domain,
        "path": cookie.path,
        "expires": cookie.expires,
        "httpOnly": cookie.httpOnly,
        "secure": cookie.secure,
        "sameSite": cookie.sameSite,
    }


def _parse_netscape(text: str, source: str) -> list[StorageStateCookie]:
    cookies: list[StorageStateCookie] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line, http_only = raw.rstrip("\r\n"), False
        if line.startswith("#HttpOnly_"):
            line, http_only = line[len("#HttpOnly_") :], True
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) == 6:  # some exporters drop the tab before an empty value
            fields.append("")
        if len(fields) != 7:
            raise SessionError(
                f"{source} line {number}: expected 7 tab-separated fields ({_NETSCAPE_FIELDS}), "
                f"found {len(fields)}"
            )
        domain, subdomains, path, secure, expires, name, value = fields
        if not domain.strip(". ") or not name:
            raise SessionError(f"{source} line {number}: empty domain or cookie name")
        cookies.append(
            {
                "name": name,
                "value": value,
                "domain": _domain(domain, host_only=not _flag(subdomains, 2, number, source)),
                "path": path or "/",
                "expires": _expiry(expires, number, source),
                "httpOnly": http_only,
                "secure": _flag(secure, 4, number, source),
                "sameSite": "Lax",
            }
        )
    if not cookies:
        raise SessionError(
            f"{source}: no cookies found (expected browser-extension JSON, a Playwright storage "
            "state or a Netscape cookies.txt)"
        )
    return cookies


def _flag(value: str, field: int, number: int, source: str) -> bool:
    upper = value.strip().upper()
    if upper not in ("TRUE", "FALSE"):
        raise SessionError(f"{source} line {number}: field {field} must be TRUE or FALSE")
    return upper == "TRUE"


def _expiry(value: str, number: int, source: str) -> float:
    try:
        seconds = float(value.strip())
    except ValueError:
        raise SessionError(
            f"{source} line {number}: field 5 (expires) must be a Unix time in seconds"
        ) from None
    return -1.0 if seconds <= 0 else seconds


def _for_site(
    cookies: Iterable[StorageStateCookie], origins: list[_Origin], site_url: str, source: str
) -> StorageState:
    host = site_host(site_url)
    now = time.time()
    mine = [cookie for cookie in cookies if cookie_applies(cookie["domain"], host)]
    sessions = [cookie for cookie in mine if cookie["name"] == SESSION_COOKIE and cookie["value"]]
    if not sessions:
        raise SessionError(f"no {SESSION_COOKIE} cookie for {host} in {source}")
    if all(0 <= cookie["expires"] < now for cookie in sessions):
        raise SessionError(f"the {SESSION_COOKIE} cookie for {host} in {source} has expired")
    live = [cookie for cookie in mine if not 0 <= cookie["expires"] < now]
    kept: list[Any] = [
        {"origin": origin.origin, "localStorage": msgspec.to_builtins(origin.localStorage)}
        for origin in origins
        if site_host(origin.origin) == host
    ]
    return {"cookies": live, "origins": kept}
