"""The accounts of an install, and which one a request means."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from roomwatch.catalog import check_spider_args
from roomwatch.errors import InvalidInput, JobConflict, JobError
from storage.accounts import add_account, choose_account, list_accounts
from storage.jobs import create_job
from storage.login_sessions import insert_login_session, usable_login_session


def test_accounts_are_added_once_lower_case(conn: psycopg.Connection[Any]) -> None:
    assert list_accounts(conn) == []
    assert add_account(conn, " Alice ") == "alice"
    add_account(conn, "ALICE")
    assert list_accounts(conn) == ["alice"]
    with pytest.raises(InvalidInput, match="account"):
        add_account(conn, "unknown")


def test_the_only_account_is_the_default_and_several_are_named() -> None:
    assert choose_account([], None) is None
    assert choose_account(["alice"], None) == "alice"
    assert choose_account(["alice", "bob"], "BOB") == "bob"
    with pytest.raises(InvalidInput, match="name one of alice, bob") as several:
        choose_account(["alice", "bob"], None)
    assert several.value.field == "account"
    with pytest.raises(InvalidInput, match=r"no account 'carol' here \(accounts: alice\)"):
        choose_account(["alice"], "carol")


def test_a_logged_in_crawl_is_one_account_s_job(conn: psycopg.Connection[Any]) -> None:
    for name in ("alice", "bob"):
        insert_login_session(conn, account=name, method="form", state=b"not-read-here")
    assert usable_login_session(conn, "bob") is not None
    assert usable_login_session(conn, "bob").account == "bob"  # type: ignore[union-attr]
    assert usable_login_session(conn, "carol") is None
    alice = create_job(conn, "followed_cams", {"account": "Alice"}, "cli")
    bob = create_job(conn, "followed_cams", {"account": "bob"}, "cli")
    anyone = create_job(conn, "followed_cams", {}, "cli")
    assert (alice.account, bob.account, anyone.account) == ("alice", "bob", None)
    with pytest.raises(JobConflict) as again:
        create_job(conn, "followed_cams", {"account": "alice"}, "schedule")
    assert again.value.existing == alice.job_id
    with pytest.raises(JobError, match="no account 'carol' here"):
        create_job(conn, "followers", {"account": "carol"}, "cli")


def test_the_account_argument_is_one_username() -> None:
    assert check_spider_args("followers", {"account": "alice"}) == {"account": "alice"}
    with pytest.raises(JobError, match="account: expected one username"):
        check_spider_args("followers", {"account": "alice,bob"})
    with pytest.raises(JobError, match="not an argument of the affiliate spider"):
        check_spider_args("affiliate", {"account": "alice"})
