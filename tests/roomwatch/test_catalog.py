"""The spider catalog's argument allow-list: what each spider takes, and nothing else."""

from __future__ import annotations

import pytest

from roomwatch.catalog import SPIDERS, check_spider_args, stream_accounts, with_account
from roomwatch.config import load_config
from roomwatch.errors import JobError


def test_each_spider_takes_exactly_its_own_arguments() -> None:
    takes = {name: [arg.name for arg in info.args] for name, info in SPIDERS.items()}
    assert takes == {
        "affiliate": [],
        "cbhours_live": ["usernames"],
        "cbhours_activity": ["usernames", "backfill"],
        "followed_cams": ["confirm_loss", "account"],
        "followers": ["confirm_loss", "account"],
        "room_stats": ["account"],
        "room_events": ["until_idle", "run_seconds", "account"],
    }


def test_a_stream_job_is_its_one_accounts_and_names_its_own_among_several() -> None:
    one = "https://eventsapi.chaturbate.com/events/Owner/tok-9f8e7d6c/"
    config = load_config({"ROOMWATCH_EVENTS_URL": one})
    assert stream_accounts("room_events", config) == ["owner"]
    assert stream_accounts("room_stats", config) == []
    assert stream_accounts("followers", config) is None  # not a stream
    assert with_account("room_events", {"until_idle": "true"}, config) == {
        "until_idle": "true",
        "account": "owner",
    }
    assert with_account("room_stats", {}, config) == {}  # no Stats URL: nobody's
    assert with_account("followers", {}, config) == {}
    two = load_config(
        {"ROOMWATCH_EVENTS_URL": f"{one} https://eventsapi.chaturbate.com/events/b/tok-1a2b3c4d/"}
    )
    assert with_account("room_events", {}, two) == {}  # the crawl refuses, naming both
    assert with_account("room_events", {"account": "b"}, two) == {"account": "b"}


def test_allowed_arguments_come_back_as_the_strings_spiders_read() -> None:
    assert check_spider_args("followers", {"confirm_loss": True}) == {"confirm_loss": "true"}
    assert check_spider_args("followed_cams", {"confirm_loss": "false"}) == {
        "confirm_loss": "false"
    }
    assert check_spider_args("cbhours_activity", {"usernames": "a_1, b.c", "backfill": "d-e"}) == {
        "usernames": "a_1, b.c",
        "backfill": "d-e",
    }
    assert check_spider_args("affiliate", {}) == {}
    assert check_spider_args("room_events", {"run_seconds": 90, "until_idle": True}) == {
        "run_seconds": "90",
        "until_idle": "true",
    }


@pytest.mark.parametrize(
    ("spider", "args", "message"),
    [
        ("followers", {"first_path": "/x/"}, "first_path: not an argument of the followers spider"),
        ("affiliate", {"thumbnails_due": "a"}, "thumbnails_due: not an argument of the affiliate"),
        ("followed_cams", {"storage_state": "{}"}, "storage_state: not an argument"),
        ("cbhours_live", {"targets": "a"}, "targets: not an argument of the cbhours_live spider"),
        ("followers", {"confirm_loss": "TRUE!"}, "confirm_loss: expected true or false"),
        ("cbhours_live", {"usernames": "a;b"}, "usernames: expected comma-separated usernames"),
        ("cbhours_live", {"usernames": ""}, "usernames: expected comma-separated usernames"),
        ("nope", {"x": "1"}, "x: not an argument of the nope spider (it takes: none)"),
        ("room_events", {"position": "1-0"}, "position: not an argument of the room_events"),
        ("room_events", {"run_seconds": "0"}, "run_seconds: expected a whole number of seconds"),
        ("room_events", {"run_seconds": "1e3"}, "run_seconds: expected a whole number"),
        ("room_events", {"run_seconds": True}, "run_seconds: expected a whole number"),
        ("room_events", {"run_seconds": "\u00b2"}, "run_seconds: expected a whole number"),
    ],
)
def test_anything_else_is_refused_naming_it(
    spider: str, args: dict[str, object], message: str
) -> None:
    with pytest.raises(JobError) as refused:
        check_spider_args(spider, args)
    assert str(refused.value).startswith(message)


def test_a_long_running_spider_ends_itself_before_its_timeout() -> None:
    for info in SPIDERS.values():
        if info.runs_for is not None:
            # Its own end, plus a last long poll (at most 90 s held, 30 s margin), comes first.
            assert info.runs_for + 120 < info.timeout_seconds
