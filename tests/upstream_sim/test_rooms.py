"""The room generator: determinism, the real key order and the §1.4 value distributions."""

import json
import re
from collections import Counter
from datetime import date

import msgspec
import pytest

from tests.upstream_sim.support import SAMPLES, sample_rooms
from upstream_sim import Room, encode_legacy_rooms, encode_room, generate_rooms
from upstream_sim.rooms import age_on

TODAY = date(2026, 1, 15)


@pytest.fixture(scope="module")
def rooms() -> list[Room]:
    return generate_rooms(5000, seed=11, wm="2DLMP", today=TODAY)


def test_same_seed_same_rooms_other_seed_other_rooms() -> None:
    first = generate_rooms(300, seed=5, wm="w", today=TODAY)
    assert first == generate_rooms(300, seed=5, wm="w", today=TODAY)
    other = generate_rooms(300, seed=6, wm="w", today=TODAY)
    assert {r.username for r in first} != {r.username for r in other}


def test_encoded_keys_are_the_real_2025_keys_in_order(rooms: list[Room]) -> None:
    real = list(sample_rooms("affiliate_onlinerooms_2025-09-06_region-asia_FULL.json")[0])
    for room in rooms[:50]:
        assert list(json.loads(encode_room(room))) == real


def test_usernames_unique_lowercase_and_equal_to_slug(rooms: list[Room]) -> None:
    assert len({r.username for r in rooms}) == len(rooms)
    for room in rooms:
        assert re.fullmatch(r"[a-z0-9_]+", room.username)
        assert room.slug == room.username


def test_age_is_null_exactly_when_birthday_is_empty(rooms: list[Room]) -> None:
    for room in rooms:
        if room.birthday == "":
            assert room.age is None
        else:
            assert room.age is not None
            assert 18 <= room.age <= 99
            assert room.age == max(18, age_on(date.fromisoformat(room.birthday), TODAY))


def test_tags_are_the_first_hashtags_of_the_subject(rooms: list[Room]) -> None:
    for room in rooms:
        hashtags = list(dict.fromkeys(t.lower() for t in re.findall(r"#(\w+)", room.room_subject)))
        assert list(room.tags) == hashtags[: len(room.tags)]
        assert len(room.tags) <= 7
        assert all(tag == tag.lower() for tag in room.tags)
    assert Counter(len(r.tags) for r in rooms).most_common(1)[0][0] == 5


def test_links_and_images_follow_the_2025_formats(rooms: list[Room]) -> None:
    room = rooms[0]
    u = room.username
    assert room.image_url == room.image_url_360x270 == f"https://thumb.live.mmcdn.com/ri/{u}.jpg"
    assert room.chat_room_url == (
        f"https://chaturbate.com/in/?tour=yiMH&campaign=2DLMP&track=default&room={u}"
    )
    assert room.chat_room_url_revshare == room.chat_room_url.replace("yiMH", "LQps")
    assert room.iframe_embed == (
        f"<iframe src='https://chaturbate.com/in/?tour=Jrvi&amp;campaign=2DLMP&amp;track=embed"
        f"&amp;room={u}&amp;bgcolor=white' height=528 width=850 style='border: none;'></iframe>"
    )
    assert room.iframe_embed_revshare == room.iframe_embed.replace("Jrvi", "9oGW")


@pytest.mark.parametrize(
    ("field", "value", "share", "tolerance"),
    [
        ("gender", "f", 0.665, 0.03),
        ("gender", "m", 0.155, 0.02),
        ("gender", "t", 0.12, 0.02),
        ("gender", "c", 0.06, 0.015),
        ("current_show", "public", 0.92, 0.02),
        ("current_show", "private", 0.059, 0.015),
        ("room_subject", "", 0.067, 0.015),
        ("country", "", 0.44, 0.04),
        ("display_name", "", 0.17, 0.025),
        ("birthday", "", 0.35, 0.03),
        ("is_new", True, 0.03, 0.01),
    ],
)
def test_distributions_match_the_real_feed(
    rooms: list[Room], field: str, value: object, share: float, tolerance: float
) -> None:
    observed = sum(getattr(r, field) == value for r in rooms) / len(rooms)
    assert observed == pytest.approx(share, abs=tolerance)


def test_counts_are_heavy_tailed_within_real_bounds(rooms: list[Room]) -> None:
    users = sorted(r.num_users for r in rooms)
    followers = sorted(r.num_followers for r in rooms)
    seconds = [r.seconds_online for r in rooms]
    assert users[0] >= 0
    assert users[-1] <= 5780
    assert users[len(users) // 2] < 30 < users[int(len(users) * 0.99)]
    assert followers[0] >= 0
    assert followers[-1] <= 1_840_982
    assert followers[len(followers) // 2] * 5 < followers[int(len(followers) * 0.95)]
    assert min(seconds) >= 7
    assert max(seconds) <= 117_131
    assert {r.region for r in rooms} == {
        "asia",
        "europe_russia",
        "northamerica",
        "southamerica",
        "other",
    }


def test_ranking_is_not_sorted_by_viewers(rooms: list[Room]) -> None:
    users = [r.num_users for r in rooms]
    assert users != sorted(users, reverse=True)
    # ...but it still favours busy rooms, like the site's ranking.
    assert sum(users[:500]) > 3 * sum(users[-500:])


def test_legacy_shape_matches_the_2017_sample(rooms: list[Room]) -> None:
    real = msgspec.json.decode(
        (SAMPLES / "affiliate_onlinerooms_LEGACY_2017_bare-array_EXS-fixture.json").read_bytes()
    )
    body = encode_legacy_rooms(rooms[:20], "pl1vV")
    assert b"\\/" in body
    assert b"https://" not in body
    legacy = json.loads(body)
    assert [list(obj) for obj in legacy] == [list(real[0])] * 20
    for obj, room in zip(legacy, rooms[:20], strict=True):
        assert obj["recorded"] == "false"
        assert obj["block_from_countries"] == ""
        assert obj["block_from_states"] == ""
        assert "slug" not in obj
        assert "country" not in obj
        assert obj["gender"] == {"t": "s"}.get(room.gender, room.gender)
        assert obj["image_url"] == f"https://roomimg.stream.highwebmedia.com/ri/{room.username}.jpg"
        assert obj["chat_room_url"].startswith("https://chaturbate.com/affiliates/in/?tour=yiMH&")
