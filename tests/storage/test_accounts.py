"""The accounts of an install, and which one a request means."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from roomwatch.errors import InvalidInput
from storage.accounts import add_account, choose_account, list_accounts


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
