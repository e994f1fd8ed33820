"""Room objects of the Affiliate online-rooms feed and a deterministic generator for them.

The generator follows the distributions measured on 21,945 real 2025 objects (FORMATS.md §1.4)
so that consumers meet realistic shapes: heavy-tailed viewer and follower counts, empty
strings where the real feed has them, ``age`` null exactly when ``birthday`` is "", tags that
are the first hashtags of the subject. Everything is drawn from one ``random.Random`` so a seed
reproduces the same rooms; only ``age`` depends on the calendar (it is computed from the fixed
birthday against ``today``, as the real site does).
"""

import random
import re
from collections.abc import Iterable
from datetime import date, timedelta

import msgspec

from upstream_sim import vocabulary as vocab

REGIONS: tuple[str, ...] = tuple(vocab.REGION_WEIGHTS)
_REGION_WEIGHTS = tuple(vocab.REGION_WEIGHTS.values())
GENDERS: tuple[str, ...] = ("f", "m", "t", "c")
MAX_AGE = 99
"""The real feed caps ages at 99 (a placeholder some broadcasters use with a 19xx birthday)."""

_GENDER_WEIGHTS = (14583, 3405, 2648, 1309)
_SHOWS = ("public", "private", "away", "hidden")
_SHOW_WEIGHTS = (20204, 1286, 281, 174)
# Birthdays are fixed relative to the date of the real snapshots, so seeds stay reproducible.
_BIRTHDAY_ANCHOR = date(2025, 9, 6)
_HASHTAG = re.compile(r"#(\w+)")
THUMBNAIL_BASE = "https://thumb.live.mmcdn.com/ri/"
"""Where the real feed's thumbnails live; ``image_url`` is this plus ``<username>.jpg``."""
_IMAGE = THUMBNAIL_BASE + "{u}.jpg"
_LINK = "{base}?tour={tour}&campaign={wm}&track=default&room={u}"
_IFRAME = (
    "<iframe src='{base}?tour={tour}&amp;campaign={wm}&amp;track=embed&amp;room={u}"
    "&amp;bgcolor=white' height=528 width=850 style='border: none;'></iframe>"
)
CURRENT_LINK_BASE = "https://chaturbate.com/in/"


class Room(msgspec.Struct, frozen=True, kw_only=True):
    """One online room. Field order is the wire key order of the real 2025 objects.

    ``region`` is the simulator's own bookkeeping (the real feed only exposes it as a filter);
    it is last so that the first 23 fields are exactly the serialized ones.
    """

    gender: str
    location: str
    current_show: str
    username: str
    room_subject: str
    tags: tuple[str, ...]
    is_new: bool
    num_users: int
    num_followers: int
    country: str
    spoken_languages: str
    display_name: str
    birthday: str
    is_hd: bool
    age: int | None
    seconds_online: int
    image_url: str
    image_url_360x270: str
    chat_room_url_revshare: str
    iframe_embed_revshare: str
    chat_room_url: str
    iframe_embed: str
    slug: str
    region: str


WIRE_FIELDS: tuple[str, ...] = Room.__struct_fields__[:-1]
"""The 23 serialized keys, in the order the real API sends them."""


def campaign_links(base: str, username: str, wm: str) -> tuple[str, str, str, str]:
    """Build the four affiliate link fields for a room.

    Args:
        base: ``https://chaturbate.com/in/`` today, ``.../affiliates/in/`` in the 2017 feed.
        username: The room's username.
        wm: The campaign slug the request was made with.

    Returns:
        ``(chat_room_url_revshare, iframe_embed_revshare, chat_room_url, iframe_embed)``.
    """
    return (
        _LINK.format(base=base, tour="LQps", wm=wm, u=username),
        _IFRAME.format(base=base, tour="9oGW", wm=wm, u=username),
        _LINK.format(base=base, tour="yiMH", wm=wm, u=username),
        _IFRAME.format(base=base, tour="Jrvi", wm=wm, u=username),
    )


def with_campaign(room: Room, wm: str) -> Room:
    """Return ``room`` with its link fields pointing at campaign ``wm``.

    The feed calls this to encode rooms once with a placeholder campaign, since the real API
    echoes each request's ``wm`` into the links.
    """
    rev, rev_iframe, link, iframe = campaign_links(CURRENT_LINK_BASE, room.username, wm)
    return msgspec.structs.replace(
        room,
        chat_room_url_revshare=rev,
        iframe_embed_revshare=rev_iframe,
        chat_room_url=link,
        iframe_embed=iframe,
    )


def encode_room(room: Room) -> bytes:
    """Serialize a room as the 2025 API does: the 23 wire keys in order, no ``region``."""
    values = msgspec.structs.astuple(room)
    return msgspec.json.encode(dict(zip(WIRE_FIELDS, values, strict=False)))


def hashtags(subject: str) -> list[str]:
    """Return the lowercased hashtags of a room subject, in order, without duplicates."""
    return list(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(subject)))


def age_on(birthday: date, today: date) -> int:
    """Age in whole years on ``today``, capped at :data:`MAX_AGE` like the real feed."""
    years = today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
    return min(MAX_AGE, years)


class RoomFactory:
    """Makes realistic rooms whose usernames never repeat within one factory.

    The feed keeps its factory so rooms that come online during churn get fresh names.
    """

    def __init__(self, *, wm: str, today: date | None = None) -> None:
        """Create a factory.

        Args:
            wm: Campaign slug written into the link fields.
            today: Date ages are computed against; defaults to the current date.
        """
        self._wm = wm
        self._today = today or date.today()
        self._used: set[str] = set()

    def reserve(self, usernames: Iterable[str]) -> None:
        """Mark usernames as taken, so rooms made later never reuse them."""
        self._used.update(usernames)

    def make(self, rng: random.Random, *, region: str | None = None) -> Room:
        """Draw one room from the §1.4 distributions.

        Args:
            rng: Source of all randomness, so callers control reproducibility.
            region: Force a region; drawn from the regional weights when None.
        """
        region = region or rng.choices(REGIONS, _REGION_WEIGHTS)[0]
        gender = rng.choices(GENDERS, _GENDER_WEIGHTS)[0]
        username = self._username(rng)
        subject, tags = _subject(rng, gender, region)
        birthday, age = self._birthday(rng)
        is_new = rng.random() < 0.032
        followers = min(1_840_982, int(rng.lognormvariate(8.7, 1.3)) // (20 if is_new else 1))
        rev, rev_iframe, link, iframe = campaign_links(CURRENT_LINK_BASE, username, self._wm)
        image = _IMAGE.format(u=username)
        return Room(
            gender=gender,
            location=_location(rng, region),
            current_show=rng.choices(_SHOWS, _SHOW_WEIGHTS)[0],
            username=username,
            room_subject=subject,
            tags=tags,
            is_new=is_new,
            num_users=min(5780, int(rng.lognormvariate(2.08, 1.43))),
            num_followers=followers,
            country=_country(rng, region),
            spoken_languages=rng.choice(vocab.LANGUAGES[region]),
            display_name=_display_name(rng, gender, username),
            birthday=birthday,
            is_hd=rng.random() < 0.6,
            age=age,
            seconds_online=max(7, min(117_131, int(rng.lognormvariate(8.6, 0.85)))),
            image_url=image,
            image_url_360x270=image,
            chat_room_url_revshare=rev,
            iframe_embed_revshare=rev_iframe,
            chat_room_url=link,
            iframe_embed=iframe,
            slug=username,
            region=region,
        )

    def _username(self, rng: random.Random) -> str:
        words = vocab.USERNAME_WORDS
        name = rng.choice(vocab.FIRST_NAMES["f"] + vocab.FIRST_NAMES["m"]).lower()
        pattern = rng.randrange(6)
        if pattern == 0:
            base = f"{rng.choice(words)}{rng.choice(words)}{rng.randint(1, 999)}"
        elif pattern == 1:
            base = f"{rng.choice(words)}_{name}"
        elif pattern == 2:
            base = f"{name}{rng.choice(words)}{rng.randint(10, 99)}"
        elif pattern == 3:
            base = f"_{rng.choice(words)}_{rng.randint(100, 999)}"
        elif pattern == 4:
            base = f"x{rng.choice(words)}{name}x"
        else:
            base = f"{rng.choice(words)}{name}"
        username = base
        while username in self._used:
            username = f"{base}{rng.randint(0, 9999)}"
        self._used.add(username)
        return username

    def _birthday(self, rng: random.Random) -> tuple[str, int | None]:
        if rng.random() < 0.348:
            return "", None
        if rng.random() < 0.02:
            born = date(rng.randint(1900, 1925), rng.randint(1, 12), rng.randint(1, 28))
        else:
            years = rng.choices((18, 26, 36, 51), (50, 30, 15, 5))[0]
            years += rng.randrange({18: 8, 26: 10, 36: 15, 51: 20}[years])
            anniversary = _BIRTHDAY_ANCHOR.replace(year=_BIRTHDAY_ANCHOR.year - years)
            born = anniversary - timedelta(days=rng.randrange(365))
        return born.isoformat(), max(18, age_on(born, self._today))


def generate_rooms(count: int, *, seed: int, wm: str, today: date | None = None) -> list[Room]:
    """Generate ``count`` rooms in a stable "site ranking" order.

    The ranking correlates with viewers but is not sorted by them, like the real feed (only
    58 % of neighbouring pairs in the asia sample are non-increasing).

    Args:
        count: Number of rooms.
        seed: Same seed, same rooms (and same order).
        wm: Campaign slug written into the link fields.
        today: Date ages are computed against; defaults to the current date.
    """
    rng = random.Random(seed)
    factory = RoomFactory(wm=wm, today=today)
    rooms = [factory.make(rng) for _ in range(count)]
    scores = [(room.num_users + 1) * rng.lognormvariate(0.0, 1.2) for room in rooms]
    order = sorted(range(count), key=lambda i: -scores[i])
    return [rooms[i] for i in order]


def _subject(rng: random.Random, gender: str, region: str) -> tuple[str, tuple[str, ...]]:
    if rng.random() < 0.067:
        return "", ()
    pool = list(dict.fromkeys(vocab.HASHTAGS[gender] + vocab.REGION_HASHTAGS[region]))
    wanted = rng.choices((0, 1, 2, 3, 4, 5, 6, 8, 10), (5, 2, 2, 4, 9, 62, 8, 5, 3))[0]
    chosen = rng.sample(pool, min(wanted, len(pool)))
    shout = rng.random() < 0.08
    marks = [f"#{tag.upper() if shout else tag}" for tag in chosen]
    goal = rng.choice(vocab.SUBJECT_GOALS).format(
        goal=rng.choice(vocab.GOALS), n=rng.randint(1, 2555)
    )
    opener = rng.choice(vocab.SUBJECT_OPENERS) if rng.random() < 0.6 else ""
    if rng.random() < 0.7:
        parts = [opener, goal, " ".join(marks)]
    else:
        parts = [opener, " ".join(marks), goal]
    subject = " ".join(part for part in parts if part)
    # A few real rooms carry 6 or 7 tags; keep that rare oddity so consumers don't assume <= 5.
    keep = 5 if rng.random() > 0.005 else rng.choice((6, 7))
    return subject, tuple(hashtags(subject)[:keep])


def _location(rng: random.Random, region: str) -> str:
    if rng.random() < 0.2:
        return rng.choice(vocab.WHIMSICAL_LOCATIONS)
    return rng.choice(vocab.LOCATIONS[region])


def _country(rng: random.Random, region: str) -> str:
    if rng.random() < vocab.EMPTY_COUNTRY[region]:
        return ""
    return rng.choice(vocab.COUNTRIES[region])


def _display_name(rng: random.Random, gender: str, username: str) -> str:
    roll = rng.random()
    if roll < 0.17:
        return ""
    if gender == "c":
        return f"{rng.choice(vocab.FIRST_NAMES['f'])} & {rng.choice(vocab.FIRST_NAMES['m'])}"
    name = rng.choice(vocab.FIRST_NAMES.get(gender, vocab.FIRST_NAMES["f"]))
    if roll < 0.22:
        return f"♥ {name} ♥"
    if roll < 0.26:
        return name.upper()
    if roll < 0.30:
        return username.replace("_", " ").title()
    return name
