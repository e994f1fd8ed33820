"""Benchmarks the merged current-state read path against a naive per-field view over history.

One run builds a throw-away embedded PostgreSQL, loads a synthetic but realistic history through
the real writers (100,000 persons, 2,000,000 Affiliate snapshots, 500,000 CBHours rows) and
measures:

* one person by username and one page of 50 persons by tag sorted by followers, on
  ``v_person_current_state`` and on ``v_person_naive``, a baseline built the naive way (one
  correlated "newest row" subquery per field over the history tables, same priority rules);
* bytes on disk per snapshot row (and per hourly rollup row);
* the rate of ``write_affiliate_poll`` against a raw COPY of the same rows.

Usage: ``.venv/bin/python bench/current_state.py [--scale 0.05] [--seed 7]``. It exits non-zero
only on errors; a missed goal prints a ``GOAL MISSED:`` line. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, cast

import msgspec
import psycopg
from psycopg import Copy, sql
from psycopg.abc import Params, Query, QueryNoTemplate
from psycopg.copy import Writer

from formats.affiliate import decode_page
from formats.cbhours import decode_live
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from storage.person_list import PersonFilter, list_persons_query
from storage.person_queries import PERSON_DETAIL
from storage.records import AffiliateRoom, CbhoursLive
from storage.writers import write_affiliate_poll, write_cbhours_live

Connection = psycopg.Connection[Any]
Source = Literal["affiliate", "cbhours"]

# The trimmed, anonymised fixtures derived from the real samples (tests/fixtures/README.md).
SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SAMPLE_FILES = (
    "affiliate_onlinerooms_2025-09-06_region-asia_FULL.json",
    "affiliate_onlinerooms_2025-09-06_region-northamerica_FULL.json",
)
UTC = dt.UTC


@dataclass(frozen=True)
class Scale:
    """How much data to load and how often to run each query (``--scale`` shrinks the data)."""

    persons: int = 100_000
    affiliate_polls: int = 200
    affiliate_poll_size: int = 10_000
    cbhours_polls: int = 100
    cbhours_poll_size: int = 5_000
    trophy_share: float = 0.3  # persons CBHours tracks
    writer_polls: int = 10  # of affiliate_polls: timed against a raw COPY
    recent_polls: int = 5  # per source: written at the wall clock, so "recent" rules apply
    history_days: int = 10
    tag_vocabulary: int = 200
    ours_runs: int = 60
    naive_runs: int = 30  # fewer when slow: see naive_budget_s
    naive_min_runs: int = 5
    naive_budget_s: float = 12.0  # per naive query kind and mode

    def scaled(self, factor: float) -> Scale:
        def n(value: int) -> int:
            return max(10, round(value * factor))

        return Scale(
            persons=n(self.persons),
            affiliate_poll_size=n(self.affiliate_poll_size),
            cbhours_poll_size=n(self.cbhours_poll_size),
        )


# -- the synthetic world ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """What stays the same about a broadcaster between polls."""

    username: str
    gender: str
    location: str
    country: str
    languages: str
    display_name: str
    birthday: dt.date | None
    tags: tuple[str, ...]
    followers: int
    viewers: int
    is_hd: bool
    is_new: bool


@dataclass
class World:
    """Persons, the pools their attributes come from, and the random source of one run."""

    rng: random.Random
    persons: list[Person]
    trophy: list[int]  # indexes of the persons CBHours tracks
    vocabulary: list[str]  # most common tag first
    phrases: list[str]
    campaign: str
    today: dt.date = field(default_factory=dt.date.today)
    encoder: msgspec.json.Encoder = field(default_factory=msgspec.json.Encoder)


def load_sample_rooms() -> list[dict[str, Any]]:
    """The real 2025 room objects the synthetic ones are modelled on (FORMATS.md §1.4)."""
    rooms: list[dict[str, Any]] = []
    for name in SAMPLE_FILES:
        rooms.extend(json.loads((SAMPLES / name).read_text("utf-8"))["results"])
    return rooms


def tag_vocabulary(samples: Sequence[dict[str, Any]], size: int) -> list[str]:
    """The ``size`` most used real tags, padded with synthetic ones if the samples have fewer."""
    counts = Counter(tag for room in samples for tag in room["tags"])
    vocabulary = [tag for tag, _ in counts.most_common(size)]
    vocabulary += [f"tag{i}" for i in range(size - len(vocabulary))]
    return vocabulary


def zipf_weights(count: int, offset: float = 40.0) -> list[float]:
    """Zipf-like weights with a flattened head, so the top tag is on a few % of persons."""
    return [1.0 / (rank + offset) for rank in range(1, count + 1)]


def make_username(rng: random.Random, taken: set[str]) -> str:
    syllables = ("ka", "mi", "lu", "na", "so", "ri", "ta", "ve", "xo", "an", "el", "sky", "dream")
    while True:
        name = "".join(rng.choices(syllables, k=rng.randint(2, 4)))
        name += rng.choice(("", "_", "x")) + str(rng.randint(0, 999))
        if name not in taken:
            taken.add(name)
            return name


def make_person(
    rng: random.Random, samples: Sequence[dict[str, Any]], tags: list[str], name: str
) -> Person:
    model = rng.choice(samples)
    birthday = None
    if rng.random() < 0.65:
        birthday = dt.date(rng.randint(1975, 2006), rng.randint(1, 12), rng.randint(1, 28))
    return Person(
        username=name,
        gender=rng.choices("fmtc", weights=(66, 16, 12, 6))[0],
        location=model["location"],
        country=model["country"],
        languages=model["spoken_languages"],
        display_name=model["display_name"],
        birthday=birthday,
        tags=tuple(tags),
        followers=min(1_840_982, int(rng.lognormvariate(9.0, 1.6))),
        viewers=min(5780, int(rng.lognormvariate(3.0, 1.3))),
        is_hd=rng.random() < 0.9,
        is_new=rng.random() < 0.03,
    )


def build_world(scale: Scale, seed: int) -> World:
    """Persons with realistic attributes and Zipf-distributed tags from the real vocabulary."""
    rng = random.Random(seed)
    samples = load_sample_rooms()
    vocabulary = tag_vocabulary(samples, scale.tag_vocabulary)
    weights = zipf_weights(len(vocabulary))
    taken: set[str] = set()
    persons = []
    for _ in range(scale.persons):
        drawn = dict.fromkeys(rng.choices(vocabulary, weights=weights, k=rng.randint(3, 6)))
        persons.append(make_person(rng, samples, list(drawn), make_username(rng, taken)))
    trophy = rng.sample(range(scale.persons), round(scale.persons * scale.trophy_share))
    phrases = [room["room_subject"].split("#")[0].strip() for room in samples]
    campaign = samples[0]["chat_room_url"].split("campaign=")[1].split("&")[0]
    return World(rng, persons, trophy, vocabulary, [p for p in phrases if p], campaign)


def _age(birthday: dt.date | None, today: dt.date) -> int | None:
    if birthday is None:
        return None
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


def room_object(world: World, p: Person, progress: float) -> dict[str, Any]:
    """One Affiliate room object, the 23 keys in the feed's order; ``progress`` is 0..1 in time."""
    rng = world.rng
    tags = list(p.tags)
    if rng.random() < 0.1:  # broadcasters change their hashtags now and then
        tags[rng.randrange(len(tags))] = rng.choice(world.vocabulary)
        tags = list(dict.fromkeys(tags))
    subject = f"{rng.choice(world.phrases)} " + " ".join(f"#{tag}" for tag in tags)
    if rng.random() < 0.03:
        subject, tags = "", []
    u, c = p.username, world.campaign
    image = f"https://thumb.live.mmcdn.com/ri/{u}.jpg"
    embed = (
        "<iframe src='https://chaturbate.com/in/?tour={tour}&amp;campaign={c}&amp;track=embed"
        "&amp;room={u}&amp;bgcolor=white' height=528 width=850 style='border: none;'></iframe>"
    )
    return {
        "gender": p.gender,
        "location": p.location,
        "current_show": rng.choices(("public", "private", "away", "hidden"), (92, 6, 1.3, 0.8))[0],
        "username": u,
        "room_subject": subject,
        "tags": tags,
        "is_new": p.is_new,
        "num_users": int(p.viewers * rng.uniform(0.4, 1.6)),
        "num_followers": int(p.followers * (0.9 + 0.1 * progress)) + rng.randint(0, 40),
        "country": p.country,
        "spoken_languages": p.languages,
        "display_name": p.display_name,
        "birthday": p.birthday.isoformat() if p.birthday else "",
        "is_hd": p.is_hd,
        "age": _age(p.birthday, world.today),
        "seconds_online": rng.randint(7, 117_131),
        "image_url": image,
        "image_url_360x270": image,
        "chat_room_url_revshare": f"https://chaturbate.com/in/?tour=LQps&campaign={c}&track=default&room={u}",
        "iframe_embed_revshare": embed.format(tour="9oGW", c=c, u=u),
        "chat_room_url": f"https://chaturbate.com/in/?tour=yiMH&campaign={c}&track=default&room={u}",
        "iframe_embed": embed.format(tour="Jrvi", c=c, u=u),
        "slug": u,
    }


def affiliate_room(world: World, p: Person, progress: float) -> AffiliateRoom:
    """The room as the Affiliate spider hands it to the writer (decoded, raw bytes included)."""
    [room], _ = decode_page(b"[" + world.encoder.encode(room_object(world, p, progress)) + b"]")
    return room


def cbhours_row(world: World, p: Person, progress: float) -> CbhoursLive:
    """One model of a ``get_live`` answer; about one in seven is offline (status only)."""
    rng = world.rng
    if rng.random() < 0.15:
        return CbhoursLive(
            username=p.username, room_status="Offline", raw=b'{"room_status":"Offline"}'
        )
    rank = rng.randint(1, 20_000)
    obj: dict[str, Any] = {
        "room_status": "Online",
        "gender": {"f": "Female", "m": "Male", "t": "Trans", "c": "Couple"}[p.gender],
        "rank": rank,
        "grank": max(1, rank // 2 + rng.randint(0, 50)),
        "viewers": int(p.viewers * rng.uniform(0.4, 1.6)),
        "followers": int(p.followers * (0.9 + 0.1 * progress)) + rng.randint(0, 40),
        "current_show": "public",
        "room_subject": f"{rng.choice(world.phrases)} " + " ".join(f"#{t}" for t in p.tags),
        "tags": list(p.tags),
        "is_new": p.is_new,
    }
    answer = {"server_status": "up", "data": {p.username: obj}}
    return decode_live(world.encoder.encode(answer)).rows[0]  # as the spider hands it over


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    """One poll to write; ``at`` None means "now", read from the clock when it is written."""

    source: Source
    at: dt.datetime | None
    progress: float  # 0..1 over the history: follower counts grow with it
    complete: bool = False


def history_schedule(scale: Scale, now: dt.datetime) -> list[Poll]:
    """The older polls of both sources, spread over the history window, oldest first."""
    start, end = now - dt.timedelta(days=scale.history_days), now - dt.timedelta(hours=3)
    totals: list[tuple[Source, int]] = [
        ("affiliate", scale.affiliate_polls - scale.writer_polls - scale.recent_polls),
        ("cbhours", scale.cbhours_polls - scale.recent_polls),
    ]
    polls: list[Poll] = []
    for source, total in totals:
        step = (end - start) / total
        polls += [Poll(source, start + step * i, i / total) for i in range(total)]
    return sorted(polls, key=lambda poll: poll.at or now)


def recent_schedule(scale: Scale) -> list[Poll]:
    """The newest polls, both sources interleaved; the very last Affiliate poll is complete."""
    polls = []
    for i in range(scale.recent_polls):
        last = i == scale.recent_polls - 1
        polls += [Poll("cbhours", None, 1.0), Poll("affiliate", None, 1.0, complete=last)]
    return polls


def write_poll(conn: Connection, world: World, scale: Scale, poll: Poll) -> int:
    """Writes one poll through the real writer; returns the rows it stored."""
    at = poll.at or dt.datetime.now(UTC)
    rng = world.rng
    if poll.source == "affiliate":
        chosen = rng.sample(range(len(world.persons)), scale.affiliate_poll_size)
        rooms = [affiliate_room(world, world.persons[i], poll.progress) for i in chosen]
        return write_affiliate_poll(conn, rooms, observed_at=at, complete=poll.complete).inserted
    chosen = rng.sample(world.trophy, min(scale.cbhours_poll_size, len(world.trophy)))
    rows = [cbhours_row(world, world.persons[i], poll.progress) for i in chosen]
    return write_cbhours_live(conn, rows, observed_at=at).inserted


def load_polls(conn: Connection, world: World, scale: Scale, polls: Sequence[Poll]) -> None:
    """Writes ``polls`` in order, printing progress about every tenth of the way."""
    started, rows = time.perf_counter(), 0
    every = max(1, len(polls) // 10)
    for n, poll in enumerate(polls, 1):
        rows += write_poll(conn, world, scale, poll)
        if n % every == 0 or n == len(polls):
            elapsed = time.perf_counter() - started
            print(
                f"  {n}/{len(polls)} polls, {rows:,} rows, {elapsed:.0f} s "
                f"({rows / elapsed:,.0f} rows/s)",
                flush=True,
            )


# -- writer against raw COPY --------------------------------------------------------------------


def create_copy_target(conn: Connection, first: dt.datetime, last: dt.datetime) -> None:
    """A partitioned twin of affiliate_api_snapshots (same columns, same indexes), one partition."""
    conn.execute(
        "CREATE TABLE raw_copy_target (LIKE affiliate_api_snapshots INCLUDING ALL) "
        "PARTITION BY RANGE (observed_at)"
    )
    bounds = (first - dt.timedelta(days=1), last + dt.timedelta(days=1))
    conn.execute(
        sql.SQL("CREATE TABLE raw_copy_target_p PARTITION OF raw_copy_target {}").format(
            sql.SQL("FOR VALUES FROM ({}) TO ({})").format(*map(sql.Literal, bounds))
        )
    )
    indexes = conn.execute(
        "SELECT tablename, indexdef FROM pg_indexes WHERE tablename IN ('raw_copy_target_p', %s)",
        [f"affiliate_api_snapshots_p{first:%Y%m%d}"],
    ).fetchall()
    for table, definition in indexes:
        print(f"  {table}: {definition.split(' USING ')[1]}")


def raw_copy(
    conn: Connection, rooms: Sequence[AffiliateRoom], ids: dict[str, int], at: dt.datetime
) -> None:
    """A plain COPY of the same snapshot rows the writer stores, in one transaction."""
    # No column list: the rows below are in the table's column order, as the writer's COPY.
    with conn.transaction(), conn.cursor().copy("COPY raw_copy_target FROM STDIN") as copy:
        for r in rooms:  # the same conversions as the writer's
            # fmt: off
            copy.write_row((
                ids[r.username], at, None, r.gender, r.location, r.current_show, r.room_subject,
                r.tags, r.is_new, r.num_users, r.num_followers, r.country or None,
                r.spoken_languages, r.display_name or None, r.birthday, r.is_hd, r.age,
                r.seconds_online, r.image_url, r.image_url_360x270, r.chat_room_url_revshare,
                r.iframe_embed_revshare, r.chat_room_url, r.iframe_embed, r.slug, r.raw.decode(),
            ))
            # fmt: on


@dataclass(frozen=True)
class WriteRates:
    polls: int
    rows: int
    writer_s: float
    copy_s: float
    writer_steps: list[tuple[str, float]]  # statement, seconds per poll

    @property
    def writer_rate(self) -> float:
        return self.rows / self.writer_s

    @property
    def copy_rate(self) -> float:
        return self.rows / self.copy_s


class TimedCursor(psycopg.Cursor[Any]):
    """Adds each statement's time to ``steps``, keyed by its start: the writer's breakdown."""

    steps: ClassVar[dict[str, float]] = defaultdict(float)

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        started = time.perf_counter()
        try:
            # The bench passes no t-string templates.
            plain = cast(QueryNoTemplate, query)
            return super().execute(plain, params, prepare=prepare, binary=binary)
        finally:
            self.steps[self._label(query)] += time.perf_counter() - started

    @contextmanager
    def copy(
        self, statement: Query, params: Params | None = None, *, writer: Writer | None = None
    ) -> Iterator[Copy]:
        started = time.perf_counter()
        try:
            with super().copy(statement, params, writer=writer) as copy:
                yield copy
        finally:
            self.steps[self._label(statement)] += time.perf_counter() - started

    def _label(self, query: Query) -> str:
        if isinstance(query, sql.Composable):
            text = query.as_string(self.connection)
        else:
            text = query.decode() if isinstance(query, bytes) else str(query)
        return " ".join(text.replace('"', "").split())[:44]


@contextmanager
def statements_timed(conn: Connection) -> Iterator[None]:
    """Times every statement run on ``conn`` through a cursor (see :class:`TimedCursor`)."""
    conn.cursor_factory = TimedCursor
    try:
        yield
    finally:
        conn.cursor_factory = psycopg.Cursor


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compare_writer_with_copy(
    conn: Connection, world: World, scale: Scale, now: dt.datetime
) -> WriteRates:
    """Times the writer and a raw COPY on the same polls, alternating which goes first."""
    ids = dict(conn.execute("SELECT username, person_id FROM persons").fetchall())
    times = [now - dt.timedelta(minutes=150 - 3 * i) for i in range(scale.writer_polls)]
    create_copy_target(conn, times[0], times[-1])
    rows, writer_s, copy_s = 0, 0.0, 0.0
    TimedCursor.steps.clear()
    for i, at in enumerate(times):
        chosen = world.rng.sample(range(len(world.persons)), scale.affiliate_poll_size)
        # Only the writer creates persons, so the raw COPY takes persons that exist already.
        rooms = [affiliate_room(world, world.persons[j], 1.0) for j in chosen]
        rooms = [r for r in rooms if r.username in ids]
        writer = functools.partial(write_affiliate_poll, conn, rooms, observed_at=at)
        copy = functools.partial(raw_copy, conn, rooms, ids, at)
        for step in ("writer", "copy") if i % 2 == 0 else ("copy", "writer"):
            if step == "writer":
                with statements_timed(conn):
                    writer_s += seconds(writer)
            else:
                copy_s += seconds(copy)
        rows += len(rooms)
    conn.execute("DROP TABLE raw_copy_target")
    steps = sorted(TimedCursor.steps.items(), key=lambda item: -item[1])
    return WriteRates(
        len(times), rows, writer_s, copy_s, [(label, s / len(times)) for label, s in steps]
    )


# -- sizes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSize:
    rows: int
    total_bytes: int
    heap_bytes: int
    toast_bytes: int
    index_bytes: int

    @property
    def per_row(self) -> float:
        return self.total_bytes / max(1, self.rows)


_SIZE = """
SELECT (SELECT count(*) FROM {parent}),
       coalesce(sum(pg_total_relation_size(c.oid)), 0),
       coalesce(sum(pg_relation_size(c.oid)), 0),
       coalesce(sum(pg_total_relation_size(nullif(c.reltoastrelid, 0))), 0),
       coalesce(sum(pg_indexes_size(c.oid)), 0)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = '{parent}'::regclass
"""


def table_size(conn: Connection, parent: str) -> TableSize:
    """Rows and bytes on disk (heap, TOAST, indexes) over every partition of ``parent``."""
    row = conn.execute(_SIZE.format(parent=parent)).fetchone()
    assert row is not None
    return TableSize(*(int(v) for v in row))


# -- the naive baseline -------------------------------------------------------------------------

AFF, CBH = "affiliate_api_snapshots", "cbhours_live_stats"


def newest(table: str, column: str, condition: str = "") -> str:
    """One correlated subquery: ``column`` of the person's newest row of ``table``."""
    return (
        f"(SELECT s.{column} FROM {table} s WHERE s.person_id = p.person_id{condition} "
        "ORDER BY s.observed_at DESC LIMIT 1)"
    )


def _has(column: str) -> str:
    return f" AND s.{column} IS NOT NULL"


# Per-field newest values, one correlated subquery each. The list query filters and sorts on the
# first group only, so it is joined first; the second group is computed for the rows left.
_TAG_AND_FOLLOWER_FIELDS = {
    "a_at": newest(AFF, "observed_at"),
    "a_tags": newest(AFF, "tags"),
    "a_followers": newest(AFF, "num_followers"),
    "c_tags_at": newest(CBH, "observed_at", _has("tags")),
    "c_tags": newest(CBH, "tags", _has("tags")),
    "c_followers_at": newest(CBH, "observed_at", _has("followers")),
    "c_followers": newest(CBH, "followers", _has("followers")),
}
_AFFILIATE_OTHER = (
    *("display_name", "age", "birthday", "location", "country", "spoken_languages", "gender"),
    *("current_show", "num_users", "room_subject", "image_url"),
)
_OTHER_FIELDS = {
    # A complete poll after their newest row that did not list them: offline since that poll.
    "a_done": "(SELECT min(q.completed_at) FROM source_polls q "
    "WHERE q.source = 'affiliate' AND q.completed_at > f.a_at)",
    **{f"a_{c}": newest(AFF, c) for c in _AFFILIATE_OTHER},
    "c_at": newest(CBH, "observed_at"),
    **{
        f"c_{c}": newest(CBH, c) for c in ("room_status", "current_show", "viewers", "room_subject")
    },
    "c_gender": newest(CBH, "gender", _has("gender")),
    "c_gender_at": newest(CBH, "observed_at", _has("gender")),
    "c_rank_at": newest(CBH, "observed_at", _has("rank")),
    "c_rank": newest(CBH, "rank", _has("rank")),
    "c_grank": newest(CBH, "grank", _has("rank")),
}


def pick(order: Sequence[tuple[str, str]]) -> str:
    """The source rule of the real view: the first recent one in priority order, else the newest."""
    recent = " ".join(f"WHEN {at} >= k.at THEN '{src}'" for src, at in order)
    newest_at = "GREATEST(" + ", ".join(at for _, at in order) + ")"
    latest = " ".join(f"WHEN {newest_at} = {at} THEN '{src}'" for src, at in order)
    return f"CASE {recent} {latest} END"


def by_source(choice: str, values: dict[str, str]) -> str:
    arms = " ".join(f"WHEN '{src}' THEN {value}" for src, value in values.items())
    return f"CASE {choice} {arms} END"


def _profile_columns() -> list[str]:
    columns = []
    for name in ("display_name", "age", "birthday", "location", "country", "spoken_languages"):
        value = f"NULLIF(o.a_{name}, '')" if name == "spoken_languages" else f"o.a_{name}"
        columns += [
            f"{value} AS {name}",
            f"CASE WHEN {value} IS NOT NULL THEN 'affiliate' END AS {name}_source",
            f"CASE WHEN {value} IS NOT NULL THEN f.a_at END AS {name}_observed_at",
        ]
    a_gender = "CASE o.a_gender WHEN 's' THEN 't' ELSE o.a_gender END"
    c_gender = (
        "CASE lower(left(o.c_gender, 1)) WHEN 's' THEN 't' ELSE lower(left(o.c_gender, 1)) END"
    )
    return [
        *columns,
        f"COALESCE({a_gender}, {c_gender}) AS gender",
        "CASE WHEN o.a_gender IS NOT NULL THEN 'affiliate' "
        "WHEN o.c_gender IS NOT NULL THEN 'cbhours' END AS gender_source",
        "CASE WHEN o.a_gender IS NOT NULL THEN f.a_at ELSE o.c_gender_at END AS gender_observed_at",
    ]


def _live_columns() -> list[str]:
    a_live_at, a_online = "COALESCE(o.a_done, f.a_at)", "(o.a_done IS NULL)"
    c_online = "(lower(o.c_room_status) = 'online')"
    live = pick([("affiliate", a_live_at), ("cbhours", "o.c_at")])
    return [
        by_source(live, {"affiliate": a_online, "cbhours": c_online}) + " AS online",
        by_source(
            live,
            {
                "affiliate": f"CASE WHEN {a_online} THEN o.a_current_show ELSE 'offline' END",
                "cbhours": f"CASE WHEN {c_online} THEN o.c_current_show ELSE 'offline' END",
            },
        )
        + " AS current_show",
        by_source(
            live,
            {
                "affiliate": f"CASE WHEN {a_online} THEN o.a_num_users ELSE 0 END",
                "cbhours": f"CASE WHEN {c_online} THEN o.c_viewers ELSE 0 END",
            },
        )
        + " AS viewers",
        by_source(live, {"affiliate": "o.a_room_subject", "cbhours": "o.c_room_subject"})
        + " AS subject",
        f"{live} AS live_source",
        by_source(live, {"affiliate": a_live_at, "cbhours": "o.c_at"}) + " AS live_observed_at",
        f"GREATEST({a_live_at}, o.c_at) < k.at AS live_stale",
    ]


def _tag_and_follower_columns() -> list[str]:
    followers = pick([("cbhours", "f.c_followers_at"), ("affiliate", "f.a_at")])
    tags = pick([("affiliate", "f.a_at"), ("cbhours", "f.c_tags_at")])
    return [
        by_source(followers, {"cbhours": "f.c_followers", "affiliate": "f.a_followers"})
        + " AS followers",
        f"{followers} AS followers_source",
        by_source(followers, {"cbhours": "f.c_followers_at", "affiliate": "f.a_at"})
        + " AS followers_observed_at",
        "GREATEST(f.c_followers_at, f.a_at) < k.at AS followers_stale",
        by_source(tags, {"affiliate": "f.a_tags", "cbhours": "f.c_tags"}) + " AS tags",
        f"{tags} AS tags_source",
        by_source(tags, {"affiliate": "f.a_at", "cbhours": "f.c_tags_at"}) + " AS tags_observed_at",
        "GREATEST(f.a_at, f.c_tags_at) < k.at AS tags_stale",
    ]


# fmt: off
_PERSON_COLUMNS = (
    "p.person_id", "p.username", "p.first_seen_at", "p.last_seen_online_at", "p.following",
    "p.follower", "p.following_checked_at", "p.follower_checked_at", "p.has_cbhours_trophy",
    "p.cbhours_trophy_checked_at", "p.watch", "p.latest_image_id AS image_id",
)
# fmt: on
_OTHER_COLUMNS = (
    "o.a_image_url AS image_url",
    "CASE WHEN f.a_at IS NOT NULL THEN 'affiliate' END AS image_source",
    "f.a_at AS image_observed_at",
    "f.a_at < k.at AS image_stale",
    "o.c_rank AS rank",
    "o.c_grank AS grank",
    "CASE WHEN o.c_rank_at IS NOT NULL THEN 'cbhours' END AS rank_source",
    "o.c_rank_at AS rank_observed_at",
)


def _lateral(fields: dict[str, str]) -> str:
    # OFFSET 0 keeps the subquery whole, so each field's subquery runs once per person instead
    # of once per reference in the rules.
    return "SELECT " + ", ".join(f"{sub} AS {name}" for name, sub in fields.items()) + " OFFSET 0"


def naive_view_sql() -> str:
    """v_person_naive: the rules of v_person_current_state over per-field newest-row subqueries."""
    columns = [
        *_PERSON_COLUMNS,
        *_profile_columns(),
        *_live_columns(),
        *_tag_and_follower_columns(),
        *_OTHER_COLUMNS,
    ]
    return (
        "CREATE VIEW v_person_naive AS SELECT " + ",\n    ".join(columns) + "\nFROM persons p\n"
        "CROSS JOIN (SELECT now() - COALESCE((SELECT value FROM roomwatch_settings "
        "WHERE key = 'recent_interval'), '10 minutes')::interval AS at OFFSET 0) k\n"
        f"CROSS JOIN LATERAL ({_lateral(_TAG_AND_FOLLOWER_FIELDS)}) f\n"
        f"CROSS JOIN LATERAL ({_lateral(_OTHER_FIELDS)}) o"
    )


NAIVE_SINGLE = "SELECT * FROM v_person_naive WHERE username = lower(%(username)s)"
NAIVE_LIST = (
    "SELECT * FROM v_person_naive v WHERE v.tags @> ARRAY[%(tag)s]::text[] "
    "ORDER BY v.followers DESC NULLS LAST, v.person_id LIMIT 50"
)
# The API's own queries: the person detail, and the list query (any tag gives the same SQL; the
# page size is bound here, the tag per run).
OURS_LIST, _LIST_PARAMS = list_persons_query(
    PersonFilter(tag="any"), sort="followers", limit=50, after=None
)
LIST_LIMIT = _LIST_PARAMS["limit"]


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    samples_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def __str__(self) -> str:
        return f"{self.median:9.2f} / {self.p95:9.2f}"


def run_once(
    conn: Connection, query: QueryNoTemplate, params: Any, prepare: bool
) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(query, params, prepare=prepare)
        return cur.fetchall()


@dataclass
class Sampler:
    """Times one query, run after run, until it has ``runs`` samples or spent its budget."""

    conn: Connection
    query: QueryNoTemplate
    params: Iterator[Any]
    prepare: bool
    runs: int
    min_runs: int = 5
    budget_s: float = math.inf
    samples_ms: list[float] = field(default_factory=list)
    spent_s: float = 0.0

    def warm_up(self) -> None:
        """Fills the caches; for a prepared statement, also runs the five custom plans.

        After five executions the server may settle on a generic plan: the steady state of a
        pooled connection. A query slow enough for planning not to matter gets one run.
        """
        for _ in range(6 if self.prepare else 1):
            if seconds(self._run_once) > 0.5:
                break

    def wants_more(self) -> bool:
        under_budget = len(self.samples_ms) < self.min_runs or self.spent_s < self.budget_s
        return len(self.samples_ms) < self.runs and under_budget

    def sample(self) -> None:
        took = seconds(self._run_once)
        self.samples_ms.append(took * 1000)
        self.spent_s += took

    def _run_once(self) -> None:
        run_once(self.conn, self.query, next(self.params), self.prepare)


def cycle(values: Sequence[Any]) -> Iterator[Any]:
    while True:
        yield from values


@dataclass(frozen=True)
class Comparison:
    label: str
    ours: Timing
    naive: Timing

    @property
    def speedup(self) -> float:
        return self.naive.median / self.ours.median


def compare(
    conn: Connection,
    scale: Scale,
    label: str,
    ours: QueryNoTemplate,
    naive: QueryNoTemplate,
    params: Sequence[Any],
    prepare: bool,
) -> Comparison:
    """Times both queries on the same parameters, interleaved so that load from elsewhere on
    the machine hits both alike; the naive one runs fewer times when it is slow."""
    samplers = (
        Sampler(conn, ours, cycle(params), prepare, scale.ours_runs),
        Sampler(conn, naive, cycle(params), prepare, scale.naive_runs,
                scale.naive_min_runs, scale.naive_budget_s),
    )  # fmt: skip
    for sampler in samplers:
        sampler.warm_up()
    while any(sampler.wants_more() for sampler in samplers):
        for sampler in samplers:
            if sampler.wants_more():
                sampler.sample()
    result = Comparison(label, Timing(samplers[0].samples_ms), Timing(samplers[1].samples_ms))
    print(
        f"  {label:<34} ours {result.ours} ms ({len(result.ours.samples_ms)} runs), "
        f"naive {result.naive} ms ({len(result.naive.samples_ms)} runs)",
        flush=True,
    )
    return result


# -- correctness of the baseline ----------------------------------------------------------------

# fmt: off
CHECKED_FIELDS = (
    "display_name", "age", "birthday", "gender", "location", "country", "spoken_languages",
    "online", "current_show", "viewers", "subject", "live_source", "live_observed_at",
    "live_stale", "followers", "followers_source", "followers_observed_at", "followers_stale",
    "tags", "tags_source", "tags_observed_at", "tags_stale", "image_url", "rank", "grank",
)
# fmt: on


def fetch_dict(conn: Connection, query: QueryNoTemplate, params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def check_single(conn: Connection, usernames: Sequence[str]) -> int:
    """Compares the merged fields of both views for some persons; returns the mismatches."""
    problems = 0
    for name in usernames:
        ours = fetch_dict(conn, PERSON_DETAIL, {"username": name})
        naive = fetch_dict(conn, NAIVE_SINGLE, {"username": name})
        if len(ours) != 1 or len(naive) != 1:
            print(f"  WARNING: {name}: {len(ours)} rows from ours, {len(naive)} from naive")
            problems += 1
            continue
        for key in CHECKED_FIELDS:
            if ours[0][key] != naive[0][key]:
                print(f"  WARNING: {name}.{key}: ours {ours[0][key]!r}, naive {naive[0][key]!r}")
                problems += 1
    return problems


def check_lists(conn: Connection, tags: Sequence[str]) -> int:
    """Compares the usernames of one page per tag; returns the tags whose pages differ."""
    problems = 0
    for tag in tags:
        ours = [r[1] for r in run_once(conn, OURS_LIST, {"tag": tag, "limit": LIST_LIMIT}, False)]
        naive = [r[1] for r in run_once(conn, NAIVE_LIST, {"tag": tag}, False)]
        if ours != naive:
            same = sum(1 for a, b in zip(ours, naive, strict=False) if a == b)
            print(
                f"  WARNING: tag {tag!r}: pages differ ({len(ours)} vs {len(naive)} rows, "
                f"{same} equal positions)"
            )
            problems += 1
    return problems


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Results:
    load_s: float = 0.0
    snapshots: TableSize | None = None
    hourly: TableSize | None = None
    rates: WriteRates | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    tag_share: dict[str, float] = field(default_factory=dict)
    mismatches: int = 0


def benchmark_tags(conn: Connection, world: World) -> dict[str, float]:
    """A few tags from common to rare, with the share of persons whose merged tags carry them."""
    chosen = [world.vocabulary[i] for i in (0, 3, 15, 60, 150) if i < len(world.vocabulary)]
    shares = {}
    for tag in chosen:
        row = conn.execute(
            "SELECT avg((tags @> ARRAY[%s]::text[])::int) FROM v_person_current_state", [tag]
        ).fetchone()
        shares[tag] = float(row[0]) if row and row[0] is not None else 0.0
    return shares


def load(conn: Connection, world: World, scale: Scale, results: Results) -> None:
    started = time.perf_counter()
    now = dt.datetime.now(UTC)
    history = history_schedule(scale, now)
    print(f"loading {len(history)} history polls ({scale.persons:,} persons)", flush=True)
    load_polls(conn, world, scale, history)
    print(
        f"writer against raw COPY: {scale.writer_polls} polls of "
        f"{scale.affiliate_poll_size:,} rows",
        flush=True,
    )
    results.rates = compare_writer_with_copy(conn, world, scale, now)
    print("recent polls (wall clock)", flush=True)
    load_polls(conn, world, scale, recent_schedule(scale))
    results.load_s = time.perf_counter() - started
    vacuum_s = seconds(functools.partial(conn.execute, "VACUUM ANALYZE"))
    print(f"VACUUM ANALYZE: {vacuum_s:.0f} s", flush=True)
    results.snapshots = table_size(conn, AFF)
    results.hourly = table_size(conn, "affiliate_hourly")


def measure(conn: Connection, world: World, scale: Scale, results: Results) -> None:
    conn.execute(naive_view_sql())
    conn.execute("ANALYZE")
    names = world.rng.sample([p.username for p in world.persons], 200)
    results.tag_share = benchmark_tags(conn, world)
    tags = list(results.tag_share)
    print("checking the baseline against our view", flush=True)
    results.mismatches = check_single(conn, names[:8]) + check_lists(conn, tags)
    print("measuring (median / p95)", flush=True)
    queries = (
        ("single person", PERSON_DETAIL, NAIVE_SINGLE, [{"username": n} for n in names]),
        (
            "page of 50 by tag",
            OURS_LIST,
            NAIVE_LIST,
            [{"tag": t, "limit": LIST_LIMIT} for t in tags],
        ),
    )
    for label, ours, naive, params in queries:
        for prepare in (True, False):
            mode = "prepared" if prepare else "unprepared"
            comparison = compare(conn, scale, f"{label}, {mode}", ours, naive, params, prepare)
            results.comparisons.append(comparison)


def report(results: Results, total_s: float) -> None:
    """The compact results table, then one GOAL MISSED line per missed goal."""
    print("\n== results ==")
    print(f"{'query (median / p95 ms)':<34} {'ours':>21} {'naive baseline':>21} {'speedup':>8}")
    for c in results.comparisons:
        print(f"{c.label:<34} {c.ours!s:>21} {c.naive!s:>21} {c.speedup:7.0f}x")
    print(
        "tags used (share of persons): "
        + ", ".join(f"{t} {s:.1%}" for t, s in results.tag_share.items())
    )
    s, h, r = results.snapshots, results.hourly, results.rates
    if s and h:
        print(
            f"affiliate_api_snapshots: {s.rows:,} rows, {s.total_bytes / 2**20:,.0f} MiB, "
            f"{s.per_row:,.0f} B/row (heap {s.heap_bytes / s.rows:,.0f}, "
            f"TOAST {s.toast_bytes / s.rows:,.0f}, indexes {s.index_bytes / s.rows:,.0f})"
        )
        print(f"affiliate_hourly: {h.rows:,} rows, {h.per_row:,.0f} B/row")
    if r:
        print(
            f"write_affiliate_poll {r.writer_rate:,.0f} rows/s, raw COPY {r.copy_rate:,.0f} "
            f"rows/s ({r.rows:,} rows each): writer at {r.writer_rate / r.copy_rate:.2f}x COPY"
        )
        steps = "\n    ".join(f"{ms * 1000:6.0f}  {label}" for label, ms in r.writer_steps)
        print(f"  writer statements, ms per poll of {r.rows // r.polls:,} rows:")
        print(f"    {steps}")
    print(
        f"load {results.load_s:.0f} s, total {total_s:.0f} s; baseline mismatches: "
        f"{results.mismatches}"
    )
    for c in results.comparisons:
        if c.speedup < 20:
            print(f"GOAL MISSED: {c.label}: {c.speedup:.1f}x faster than the baseline (goal 20x)")
        if c.label.startswith("single") and c.ours.median >= 2.0:
            print(f"GOAL MISSED: {c.label}: median {c.ours.median:.2f} ms (goal < 2 ms)")
    if r and r.writer_rate < r.copy_rate / 2:
        print(f"GOAL MISSED: writer at {r.writer_rate / r.copy_rate:.2f}x raw COPY (goal 0.5x)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="data size factor (quick runs)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    scale = Scale() if args.scale == 1.0 else Scale().scaled(args.scale)
    started = time.perf_counter()
    world = build_world(scale, args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir)
    results = Results()
    try:
        with psycopg.connect(server.start(), autocommit=True) as conn:
            apply_migrations(conn)
            load(conn, world, scale, results)
            measure(conn, world, scale, results)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    report(results, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
