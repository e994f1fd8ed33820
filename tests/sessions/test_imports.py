"""The cookie-file parsers: three formats, host filtering, and errors that never echo a value."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import StorageState

from roomwatch.errors import SessionError
from sessions.imports import cookie_applies, parse_cookies, read_cookie_file

SITE = "https://chaturbate.com"
SECRET = "s3cr3tsessionvalue0123456789abcd"
LATER = time.time() + 30 * 24 * 3600
EARLIER = time.time() - 3600


def _names(state: StorageState) -> list[str]:
    return [cookie["name"] for cookie in state["cookies"]]


def _refusal(data: str | bytes, site: str = SITE, source: str = "cookies.file") -> str:
    with pytest.raises(SessionError) as caught:
        parse_cookies(data, site_url=site, source=source)
    message = str(caught.value)
    assert SECRET not in message
    return message


COOKIE_EDITOR: list[dict[str, Any]] = [
    {
        "domain": ".chaturbate.com",
        "expirationDate": LATER,
        "hostOnly": False,
        "httpOnly": True,
        "name": "sessionid",
        "path": "/",
        "sameSite": "lax",
        "secure": True,
        "session": False,
        "storeId": "0",
        "value": SECRET,
    },
    {
        "domain": "chaturbate.com",
        "hostOnly": True,
        "httpOnly": False,
        "name": "csrftoken",
        "path": "/",
        "sameSite": "no_restriction",
        "secure": True,
        "session": True,
        "value": "csrf-value",
    },
    {"domain": ".example.com", "name": "sessionid", "value": "other-site", "path": "/"},
    {"domain": "www.chaturbate.com", "name": "sub", "value": "not-sent-to-parent"},
    {"domain": ".chaturbate.com", "name": "old", "value": "x", "expirationDate": EARLIER},
]


def test_browser_extension_json_keeps_the_site_cookies_in_playwright_form() -> None:
    state = parse_cookies(json.dumps(COOKIE_EDITOR), site_url=SITE, source="cookies.json")
    assert _names(state) == ["sessionid", "csrftoken"]
    session, csrf = state["cookies"]
    assert session == {
        "name": "sessionid",
        "value": SECRET,
        "domain": ".chaturbate.com",
        "path": "/",
        "expires": LATER,
        "httpOnly": True,
        "secure": True,
        "sameSite": "Lax",
    }
    assert csrf["domain"] == "chaturbate.com"  # host-only stays host-only
    assert csrf["expires"] == -1  # a browser-session cookie
    assert csrf["sameSite"] == "None"
    assert state["origins"] == []


def test_edit_this_cookie_export_without_host_only_or_same_site() -> None:
    exported = [
        {
            "domain": ".chaturbate.com",
            "name": "sessionid",
            "value": SECRET,
            "session": True,
            "id": 1,
            "sameSite": "unspecified",
        },
        {"domain": "chaturbate.com", "name": "agreeterms", "value": "1", "expirationDate": LATER},
    ]
    state = parse_cookies(json.dumps(exported), site_url=SITE)
    session, terms = state["cookies"]
    assert (session["domain"], session["expires"], session["sameSite"]) == (
        ".chaturbate.com",
        -1,
        "Lax",
    )
    assert terms["domain"] == "chaturbate.com"


def test_playwright_storage_state_keeps_only_the_site_origin() -> None:
    document = {
        "cookies": [
            {
                "name": "sessionid",
                "value": SECRET,
                "domain": "chaturbate.com",
                "path": "/",
                "expires": -1,
                "httpOnly": True,
                "secure": False,
                "sameSite": "Lax",
            }
        ],
        "origins": [
            {"origin": "https://chaturbate.com", "localStorage": [{"name": "k", "value": "v"}]},
            {"origin": "https://elsewhere.test", "localStorage": [{"name": "k", "value": "v"}]},
        ],
    }
    state = parse_cookies(json.dumps(document).encode(), site_url=SITE)
    assert state["cookies"] == document["cookies"]
    assert state["origins"] == [
        {"origin": "https://chaturbate.com", "localStorage": [{"name": "k", "value": "v"}]}
    ]


NETSCAPE = f"""# Netscape HTTP Cookie File
# https://curl.se/docs/http-cookies.html

#HttpOnly_.chaturbate.com\tTRUE\t/\tTRUE\t{int(LATER)}\tsessionid\t{SECRET}
chaturbate.com\tFALSE\t/\tFALSE\t0\tagreeterms\t1
.chaturbate.com\tTRUE\t/\tFALSE\t{int(LATER)}\tempty
.example.com\tTRUE\t/\tFALSE\t{int(LATER)}\tsessionid\tforeign
"""


def test_netscape_cookies_txt_with_http_only_lines_and_comments() -> None:
    state = parse_cookies(NETSCAPE, site_url=SITE, source="cookies.txt")
    session, terms, empty = state["cookies"]
    assert session["value"] == SECRET
    assert (session["httpOnly"], session["secure"], session["domain"]) == (
        True,
        True,
        ".chaturbate.com",
    )
    assert (terms["httpOnly"], terms["domain"], terms["expires"]) == (False, "chaturbate.com", -1)
    assert (empty["name"], empty["value"]) == ("empty", "")  # six fields: the value was empty


def test_crlf_and_byte_order_mark_are_tolerated() -> None:
    data = ("\ufeff" + NETSCAPE.replace("\n", "\r\n")).encode("utf-8")
    assert _names(parse_cookies(data, site_url=SITE)) == ["sessionid", "agreeterms", "empty"]


def test_parent_domain_cookies_apply_to_a_www_site() -> None:
    state = parse_cookies(json.dumps(COOKIE_EDITOR), site_url="https://www.chaturbate.com")
    # csrftoken is host-only for chaturbate.com, so www.chaturbate.com would not receive it.
    assert _names(state) == ["sessionid", "sub"]
    assert cookie_applies(".chaturbate.com", "www.chaturbate.com")
    assert not cookie_applies("chaturbate.com", "www.chaturbate.com")
    assert not cookie_applies(".com", "chaturbate.com")
    assert not cookie_applies("www.chaturbate.com", "chaturbate.com")
    assert cookie_applies("127.0.0.1", "127.0.0.1")


def test_cookies_for_a_loopback_site_stay_host_only() -> None:
    line = f"127.0.0.1\tTRUE\t/\tFALSE\t0\tsessionid\t{SECRET}\n"
    state = parse_cookies(line, site_url="http://127.0.0.1:8788")
    assert state["cookies"][0]["domain"] == "127.0.0.1"


def test_no_sessionid_for_the_site_is_refused() -> None:
    foreign = [c for c in COOKIE_EDITOR if c["domain"] == ".example.com"]
    message = _refusal(json.dumps(foreign), source="cookies.json")
    assert message == "no sessionid cookie for chaturbate.com in cookies.json"


def test_an_expired_sessionid_is_refused() -> None:
    cookies = [{"domain": ".chaturbate.com", "name": "sessionid", "value": SECRET}]
    cookies[0]["expirationDate"] = EARLIER  # type: ignore[assignment]
    assert "has expired" in _refusal(json.dumps(cookies))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f".chaturbate.com TRUE / FALSE 0 sessionid {SECRET}", "line 2: expected 7 tab-separated"),
        (f".chaturbate.com\tYES\t/\tFALSE\t0\tsessionid\t{SECRET}", "line 2: field 2 must be TRUE"),
        (f".chaturbate.com\tTRUE\t/\tno\t0\tsessionid\t{SECRET}", "line 2: field 4 must be TRUE"),
        (f".chaturbate.com\tTRUE\t/\tFALSE\tsoon\tsessionid\t{SECRET}", "line 2: field 5"),
        (f"\tTRUE\t/\tFALSE\t0\tsessionid\t{SECRET}", "line 2: empty domain"),
    ],
)
def test_broken_cookies_txt_lines_are_named_by_number(line: str, expected: str) -> None:
    message = _refusal(f"# Netscape HTTP Cookie File\n{line}\n", source="cookies.txt")
    assert message.startswith(f"cookies.txt {expected}")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('[{"domain": ".chaturbate.com", "name": "sessionid"', "not valid JSON"),
        ('{"name": "sessionid"}', "neither a cookie array"),
        (
            '[{"domain": ".chaturbate.com", "name": "sessionid", "value": 5}]',
            "not a cookie export (Expected `str`, got `int` - at `$[0].value`)",
        ),
        ('{"cookies": [{"name": "sessionid"}]}', "not a cookie export"),
        ("", "no cookies found"),
        ("# only a comment\n\n", "no cookies found"),
    ],
)
def test_bad_input_names_the_problem(data: str, expected: str) -> None:
    assert expected in _refusal(data)


def test_a_binary_cookie_database_is_refused() -> None:
    message = _refusal(b"SQLite format 3\x00\xff\xfe" + SECRET.encode())
    assert "not a text file" in message


def test_read_cookie_file(tmp_path: Path) -> None:
    path = tmp_path / "cookies.txt"
    path.write_text(NETSCAPE)
    assert read_cookie_file(path, site_url=SITE)["cookies"][0]["value"] == SECRET
    with pytest.raises(SessionError, match=r"cannot read .*missing\.txt"):
        read_cookie_file(tmp_path / "missing.txt", site_url=SITE)
