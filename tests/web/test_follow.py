"""The Follow page without a browser: tabs with since / until / how long, the lists' last
checks, the upload of a saved page (the API's import) and the CSRF token it needs, and the
exports of each tab.

Follow state and events are written as crawls write them (:func:`storage.follow_state.reconcile`
of complete lists, a few days apart), so each tab is read from rows shaped like production ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from parsel import Selector

from control_api.imports import MAX_BODY_BYTES
from storage.follow_state import Relation, reconcile
from storage.writers import write_affiliate_poll
from tests.factories import AUTH, room
from tests.web.pages_support import csrf_of, sign_in

Client = TestClient[Litestar]
PAGES = Path(__file__).parents[1] / "fixtures" / "follow_pages"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)
T0, T1, T2, T3 = NOW - 10 * DAY, NOW - 8 * DAY, NOW - 5 * DAY, NOW - 2 * DAY

# The complete lists each check read, oldest first (T0 is each list's first check: a baseline).
FOLLOWING = [
    (T0, ["alice", "bob", "carol"]),
    (T1, ["alice", "bob", "dave"]),  # followed dave; unfollowed carol (followed since T0)
    (T2, ["alice", "carol", "dave"]),  # followed carol again; unfollowed bob
    (T3, ["alice", "carol"]),  # unfollowed dave, followed from T1: 6 days
]
FOLLOWERS = [
    (T0, ["erin", "frank"]),
    (T1, ["erin", "frank", "gina"]),  # new follower gina
    (T2, ["erin", "gina"]),  # lost frank (a follower since before T0)
    (T3, ["erin"]),  # lost gina, a follower from T1: 6 days
]


def _job(conn: psycopg.Connection[Any], spider: str) -> int:
    row = conn.execute(
        "INSERT INTO crawl_jobs (spider, trigger, status) VALUES (%s, 'schedule', 'succeeded') "
        "RETURNING job_id",
        [spider],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _checks(
    conn: psycopg.Connection[Any],
    relation: Relation,
    checks: list[tuple[dt.datetime, list[str]]],
) -> int:
    """Each complete list, reconciled as its crawl does; returns the last check's job id."""
    spider = "followed_cams" if relation == "following" else "followers"
    job_id = 0
    for checked_at, names in checks:
        job_id = _job(conn, spider)
        reconcile(
            conn,
            relation,
            names,
            account="owner_one",
            checked_at=checked_at,
            source=spider,
            job_id=job_id,
        )
    return job_id


@pytest.fixture
def history(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Persons known from the Affiliate feed, and the follow history above; the job ids of
    the last checks."""
    names = sorted({n for _, ns in FOLLOWING + FOLLOWERS for n in ns} | {"hank", "ivy"})
    write_affiliate_poll(
        conn,
        [room(n, num_followers=100 + i, display_name=f"<i>{n}</i>") for i, n in enumerate(names)],
        observed_at=NOW - dt.timedelta(minutes=1),
    )
    return {
        "following": _checks(conn, "following", FOLLOWING),
        "follower": _checks(conn, "follower", FOLLOWERS),
    }


def _rows(html: str) -> dict[str, dict[str, str]]:
    """The tab's rows by username: since, until and how long as the page shows them."""
    page = Selector(text=html)
    rows = {}
    for row in page.css("#follow-table tbody tr[data-username]"):
        cells = {
            field: " ".join(row.css(f'td[data-field="{field}"] ::text').getall()).strip()
            for field in ("since", "until", "how_long", "display_name")
        }
        cells["seconds"] = row.css('td[data-field="how_long"]::attr(data-seconds)').get() or ""
        rows[row.attrib["data-username"]] = cells
    return rows


def _shown(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def test_with_several_accounts_the_pages_show_the_account_named(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    reconcile(conn, "following", ["bob"], account="zoe", checked_at=T3, source="followed_cams")
    refused = client.get("/follow")
    assert refused.status_code == 400
    assert "name one of owner_one, zoe" in refused.text
    # The refusal offers the accounts to pick from, keeping the rest of the query.
    offered = Selector(text=refused.text).css("form#account-switch")
    assert offered.attrib["action"] == "/follow"
    assert offered.css("option::attr(value)").getall() == ["", "owner_one", "zoe"]
    assert client.get("/users", params={"following": "true"}).status_code == 400
    zoe = client.get("/follow", params={"account": "zoe", "tab": "following"})
    assert set(_rows(zoe.text)) == {"bob"}
    # The header's switcher lists both, shows zoe, and keeps the rest of the query.
    switch = Selector(text=zoe.text).css("form#account-switch")
    assert switch.attrib["method"] == "get" and switch.attrib["action"] == "/follow"
    assert switch.css("option::attr(value)").getall() == ["owner_one", "zoe"]
    assert switch.css("option[selected]::attr(value)").get() == "zoe"
    assert switch.css("input[name=tab]::attr(value)").get() == "following"
    nav = Selector(text=zoe.text).css("header nav a::attr(href)").getall()
    assert "/users?account=zoe" in nav
    owner = client.get("/follow", params={"account": "owner_one"})
    assert set(_rows(owner.text)) == {"alice", "carol"}
    # The Users page: a follow filter names the account; without one, any account's flags.
    users = client.get("/users", params={"following": "true", "account": "zoe"})
    assert users.status_code == 200
    assert Selector(text=users.text).css("tr[data-username]::attr(data-username)").getall() == [
        "bob"
    ]
    assert client.get("/users").status_code == 200


def _several_accounts(conn: psycopg.Connection[Any]) -> None:
    """zoe, a second account, follows bob only (owner_one: alice and carol)."""
    reconcile(conn, "following", ["bob"], account="zoe", checked_at=T3, source="followed_cams")


def _switcher(html: str) -> tuple[list[str], str | None]:
    """The header switcher's choices and the one selected."""
    switch = Selector(text=html).css("form#account-switch")
    return switch.css("option::attr(value)").getall(), switch.css(
        "option[selected]::attr(value)"
    ).get()


def _usernames(html: str) -> list[str]:
    return Selector(text=html).css("tr[data-username]::attr(data-username)").getall()


def test_the_pages_remember_the_account_chosen_in_the_switcher(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    _several_accounts(conn)
    assert client.get("/follow").status_code == 400  # nothing chosen yet
    # The switcher submits account= with the page's query: the choice is remembered.
    chosen = client.get("/follow", params={"tab": "following", "account": "zoe"})
    assert chosen.status_code == 200
    # Pages that need an account and whose query names none use it, and show it chosen.
    follow = client.get("/follow")
    assert follow.status_code == 200
    assert set(_rows(follow.text)) == {"bob"}
    assert _switcher(follow.text) == (["owner_one", "zoe"], "zoe")
    assert "/users?account=zoe" in Selector(text=follow.text).css("nav a::attr(href)").getall()
    users = client.get("/users", params={"following": "true"})
    assert users.status_code == 200 and _usernames(users.text) == ["bob"]
    assert _switcher(users.text)[1] == "zoe"
    export = client.get("/follow/export", params={"tab": "following"})
    assert [r["username"] for r in csv.DictReader(io.StringIO(export.text))] == ["bob"]
    # A page that needs no account still shows any account's unless its query names one.
    assert _switcher(client.get("/users").text)[1] == ""
    # Another choice replaces it; a name the install does not have is refused, not kept.
    client.get("/users", params={"account": "OWNER_ONE"})
    assert set(_rows(client.get("/follow").text)) == {"alice", "carol"}
    refused = client.get("/follow", params={"account": "nobody"})
    assert refused.status_code == 400 and "(accounts: owner_one, zoe)" in refused.text
    assert set(_rows(client.get("/follow").text)) == {"alice", "carol"}
    assert _switcher(client.get("/follow").text)[1] == "owner_one"


def test_the_remembered_account_is_this_browsers_and_never_the_apis(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    _several_accounts(conn)
    assert client.get("/follow", params={"account": "zoe"}).status_code == 200
    # The JSON API stays explicit, whoever chose what on the pages.
    api = client.get("/api/v1/persons", params={"following": "true"}, headers=AUTH)
    assert api.status_code == 400
    assert client.get("/api/v1/follow-events", headers=AUTH).status_code == 400
    # Another browser (a sign-in of its own) chose nothing.
    client.cookies.clear()
    assert sign_in(client).status_code == 303
    assert client.get("/follow").status_code == 400


def test_a_remembered_account_that_is_gone_is_forgotten(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    _several_accounts(conn)
    conn.execute("INSERT INTO accounts (account) VALUES ('yan')")
    assert client.get("/follow", params={"account": "zoe"}).status_code == 200
    for table in ("follow_events", "source_polls", "account_persons", "accounts"):
        conn.execute(f"DELETE FROM {table} WHERE account = 'zoe'")
    gone = client.get("/follow")
    assert gone.status_code == 400 and "name one of owner_one, yan" in gone.text
    assert _switcher(gone.text) == (["", "owner_one", "yan"], "")
    # Forgotten, not hidden: zoe back is not chosen again by itself.
    _several_accounts(conn)
    assert client.get("/follow").status_code == 400


def test_one_account_has_no_switcher(client: Client, history: dict[str, int]) -> None:
    page = client.get("/follow")
    assert page.status_code == 200
    assert not Selector(text=page.text).css("#account-switch")


def test_the_following_and_followers_tabs_list_the_current_persons(
    client: Client, history: dict[str, int]
) -> None:
    following = client.get("/follow")
    assert following.status_code == 200
    rows = _rows(following.text)
    assert set(rows) == {"alice", "carol"}
    assert rows["alice"]["since"] == "before the first check"  # listed since the baseline
    assert rows["alice"]["until"] == "now"
    assert rows["carol"]["since"] == _shown(T2)  # followed again at T2, still followed
    assert rows["carol"]["until"] == "now"
    how_long = int(rows["carol"]["seconds"])
    assert abs(how_long - (dt.datetime.now(dt.UTC) - T2).total_seconds()) < 60
    assert rows["carol"]["how_long"].startswith("5 d")
    assert rows["carol"]["display_name"] == "<i>carol</i>"  # the markup as text
    assert "<i>carol</i>" not in following.text

    followers = _rows(client.get("/follow", params={"tab": "followers"}).text)
    assert set(followers) == {"erin"}
    assert (followers["erin"]["since"], followers["erin"]["until"]) == (
        "before the first check",
        "now",
    )


def test_the_ended_tabs_say_since_until_and_how_long(
    client: Client, history: dict[str, int]
) -> None:
    unfollowed = client.get("/follow", params={"tab": "unfollowed"})
    assert unfollowed.status_code == 200
    rows = _rows(unfollowed.text)
    # carol was unfollowed, then followed again: not in the list. Newest end first.
    assert list(rows) == ["dave", "bob"]
    assert rows["dave"] == {
        "since": _shown(T1),
        "until": _shown(T3),
        "how_long": "6 d 0 h",
        "display_name": "<i>dave</i>",
        "seconds": str(int((T3 - T1).total_seconds())),
    }
    assert rows["bob"]["since"] == "before the first check"
    assert rows["bob"]["until"] == _shown(T2)
    assert rows["bob"]["how_long"] == ""

    lost = _rows(client.get("/follow", params={"tab": "lost_followers"}).text)
    assert list(lost) == ["gina", "frank"]
    assert (lost["gina"]["since"], lost["gina"]["until"]) == (_shown(T1), _shown(T3))
    assert lost["gina"]["how_long"] == "6 d 0 h"
    assert lost["frank"]["until"] == _shown(T2)


def test_the_ended_tabs_page_with_a_cursor(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    # 60 more followers, then a (confirmed) check that keeps only erin: 61 lost at one time.
    fans = [f"fan_{n:02d}" for n in range(60)]
    reconcile(
        conn,
        "follower",
        ["erin", *fans],
        account="owner_one",
        checked_at=NOW - DAY,
        source="followers",
    )
    reconcile(conn, "follower", ["erin"], account="owner_one", checked_at=NOW - 0.5 * DAY,
              source="followers", confirm_loss=True)  # fmt: skip
    seen: list[str] = []
    params = {"tab": "lost_followers"}
    for _ in range(5):
        page = client.get("/follow", params=params)
        assert page.status_code == 200
        seen += list(_rows(page.text))
        found = Selector(text=page.text).css('a[rel="next"]::attr(href)').get()
        if found is None:
            break
        params = dict(item.split("=", 1) for item in found.split("?", 1)[1].split("&"))
    assert len(seen) == len(set(seen)) == 62  # 60 fans, gina, frank: each once
    assert seen[-2:] == ["gina", "frank"]
    assert client.get("/follow", params={"tab": "unfollowed", "cursor": "junk"}).status_code == 400


def test_counts_and_the_last_checks_changes(client: Client, history: dict[str, int]) -> None:
    page = Selector(text=client.get("/follow").text)
    following = page.css('[data-list="following"]')
    assert following.css(".count::text").get() == "2"
    assert following.css("time::attr(datetime)").get() == T3.isoformat()
    assert f"job {history['following']}" in " ".join(following.css("::text").getall())
    assert following.css("[data-added]::attr(data-added)").get() == "0"
    assert following.css("[data-removed]::attr(data-removed)").get() == "1"  # dave
    followers = page.css('[data-list="follower"]')
    assert followers.css(".count::text").get() == "1"
    assert followers.css("[data-removed]::attr(data-removed)").get() == "1"  # gina
    # The newest events: the last checks' unfollow and lost follower, both at T3.
    kinds = page.css("#follow-events tbody tr::attr(data-kind)").getall()
    assert sorted(kinds[:2]) == ["lost_follower", "unfollowed"]
    assert len(kinds) == 8  # 5 of following, 3 of followers since the baselines


def test_unknown_tab_is_a_page_naming_the_field(client: Client) -> None:
    answer = client.get("/follow", params={"tab": "enemies"})
    assert answer.status_code == 400
    assert "tab: expected one of" in answer.text


def _upload(client: Client, page: bytes, **fields: str) -> Any:
    data = {"csrf_token": csrf_of(client), "kind": "followers", **fields}
    return client.post(
        "/follow/upload", data=data, files={"file": ("followers.html", page, "text/html")}
    )


def test_uploading_a_saved_followers_page_changes_the_followers_tab(
    client: Client, history: dict[str, int]
) -> None:
    answer = _upload(client, (PAGES / "complete_three.html").read_bytes())
    assert answer.status_code == 200, answer.text
    page = Selector(text=answer.text)
    result = " ".join(page.css("#upload-result ::text").getall())
    assert "Read 3 persons from 1 page(s): the whole list." in result
    assert "2 new followers, 0 lost followers." in result
    assert page.css("#follow-table::attr(data-tab)").get() == "followers"
    rows = _rows(answer.text)
    assert set(rows) == {"erin", "hank", "ivy"}
    assert rows["hank"]["since"] == rows["ivy"]["since"] != "before the first check"
    assert rows["hank"]["until"] == "now"
    followers = page.css('[data-list="follower"]')
    assert followers.css(".count::text").get() == "3"
    assert "an uploaded page" in " ".join(followers.css("::text").getall())
    assert followers.css("[data-added]::attr(data-added)").get() == "2"
    # The same page read again later by GET: the upload stuck.
    assert set(_rows(client.get("/follow", params={"tab": "followers"}).text)) == {
        "erin",
        "hank",
        "ivy",
    }


def test_with_several_accounts_an_upload_shows_the_account_whose_pages_they_were(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    _several_accounts(conn)
    # The saved page's header shows owner_one; this browser has chosen no account yet.
    answer = _upload(client, (PAGES / "complete_three.html").read_bytes())
    assert answer.status_code == 200, answer.text
    assert set(_rows(answer.text)) == {"erin", "hank", "ivy"}
    assert _switcher(answer.text)[1] == "owner_one"
    followers = client.get("/follow", params={"tab": "followers"})  # and it is remembered
    assert followers.status_code == 200
    assert set(_rows(followers.text)) == {"erin", "hank", "ivy"}


def test_a_partial_page_changes_nothing_and_says_why(
    client: Client, history: dict[str, int]
) -> None:
    answer = _upload(client, (PAGES / "table_page2.html").read_bytes())
    assert answer.status_code == 200
    result = " ".join(Selector(text=answer.text).css("#upload-result ::text").getall())
    assert "follow state unchanged" in result
    assert "not the whole list" in result
    assert set(_rows(answer.text)) == {"erin"}


def test_a_held_loss_is_shown_with_how_to_confirm(
    client: Client, conn: psycopg.Connection[Any], history: dict[str, int]
) -> None:
    many = ["erin", *(f"fan_{n}" for n in range(9))]
    reconcile(conn, "follower", many, account="owner_one", checked_at=NOW - DAY, source="followers")
    page = (PAGES / "complete_three.html").read_bytes()  # erin, hank, ivy: 9 of 10 would go
    held = _upload(client, page)
    assert held.status_code == 409
    result = " ".join(Selector(text=held.text).css("#upload-result ::text").getall())
    assert "nothing was concluded" in result
    assert "followers: 9 of 10 would be marked lost" in result
    assert "tick “confirm a large loss” and upload the page again" in result
    assert set(_rows(held.text)) == set(many)
    # A held check is no check: the last one is still the crawl's, with its own changes.
    last = Selector(text=held.text).css('[data-list="follower"]')
    assert last.css("time::attr(datetime)").get() == (NOW - DAY).isoformat()
    assert last.css("[data-added]::attr(data-added)").get() == "9"

    confirmed = _upload(client, page, confirm_loss="true")
    assert confirmed.status_code == 200
    assert "2 new followers, 9 lost followers." in confirmed.text
    assert set(_rows(confirmed.text)) == {"erin", "hank", "ivy"}


def test_an_upload_older_than_the_last_check_or_unreadable_concludes_nothing(
    client: Client, history: dict[str, int]
) -> None:
    page = (PAGES / "complete_three.html").read_bytes()
    old = _upload(client, page, saved_at=(T3 - DAY).strftime("%Y-%m-%dT%H:%M"))
    assert old.status_code == 409
    assert "before the last check of the followers list" in old.text
    bad = _upload(client, b"<p>hello</p>")
    assert bad.status_code == 400
    assert "The page could not be read." in bad.text
    assert set(_rows(bad.text)) == {"erin"}


def test_the_upload_needs_the_csrf_token(client: Client, history: dict[str, int]) -> None:
    page = (PAGES / "complete_three.html").read_bytes()
    refused = client.post(
        "/follow/upload",
        data={"kind": "followers"},
        files={"file": ("followers.html", page, "text/html")},
    )
    assert refused.status_code == 403
    assert set(_rows(client.get("/follow", params={"tab": "followers"}).text)) == {"erin"}


def test_an_upload_past_the_size_limit_is_413(client: Client) -> None:
    answer = _upload(client, b"<html>" + b" " * MAX_BODY_BYTES)
    assert answer.status_code == 413


def _export(client: Client, tab: str, export_format: str) -> Any:
    answer = client.get("/follow/export", params={"tab": tab, "format": export_format})
    assert answer.status_code == 200, answer.text
    assert f'filename="roomwatch-{tab}-' in answer.headers["content-disposition"]
    return answer


def test_exports_have_one_row_per_person(client: Client, history: dict[str, int]) -> None:
    api = client.get("/api/v1/persons", params={"following": "true"}, headers=AUTH).json()
    listed = sorted(p["username"] for p in api["items"])
    answer = _export(client, "following", "csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted(row["username"] for row in rows) == listed == ["alice", "carol"]
    carol = next(row for row in rows if row["username"] == "carol")
    assert dt.datetime.fromisoformat(carol["following_since"]) == T2
    assert carol["display_name"] == "<i>carol</i>"

    followers = _export(client, "followers", "json").json()
    assert [row["username"] for row in followers] == ["erin"]

    unfollowed = list(csv.DictReader(io.StringIO(_export(client, "unfollowed", "csv").text)))
    assert [row["username"] for row in unfollowed] == ["dave", "bob"]
    assert dt.datetime.fromisoformat(unfollowed[0]["since"]) == T1
    assert dt.datetime.fromisoformat(unfollowed[0]["until"]) == T3
    assert float(unfollowed[0]["seconds"]) == (T3 - T1).total_seconds()
    assert unfollowed[1]["since"] == unfollowed[1]["seconds"] == ""

    lost = _export(client, "lost_followers", "json").json()
    assert [(row["username"], row["seconds"]) for row in lost] == [
        ("gina", (T3 - T1).total_seconds()),
        ("frank", None),
    ]
    assert client.get("/follow/export", params={"format": "xml"}).status_code == 400


def test_an_upload_must_say_which_list(client: Client) -> None:
    data = {"csrf_token": csrf_of(client)}
    page = (PAGES / "complete_three.html").read_bytes()
    answer = client.post(
        "/follow/upload", data=data, files={"file": ("followers.html", page, "text/html")}
    )
    assert answer.status_code == 400
    assert "kind: choose followers or following" in answer.text


def test_a_saved_page_may_hold_the_text_backslash_u0000(client: Client) -> None:
    """The API refuses ``\\u0000`` in JSON bodies; in a saved page it is only text (a script's
    regular expression) and the page is read."""
    page = (
        (PAGES / "complete_three.html")
        .read_bytes()
        .replace(b"</body>", b"<script>var control = /[\\u0000-\\u001f]/;</script></body>")
    )
    answer = _upload(client, page)
    assert answer.status_code == 200, answer.text
    assert "Read 3 persons" in answer.text


def test_export_media_types_name_one_charset(client: Client) -> None:
    answer = client.get("/follow/export", params={"tab": "following", "format": "csv"})
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
