"""Numbers read from pages and room lists, kept to what their columns hold.

``str.isdigit()`` is true for ``²`` (which ``int()`` refuses) and an age of 99999 does not fit
``smallint``: either ended an import in a 500. Numbers are taken only as ASCII digits (thousands
separated by commas at most) and only within their column's range; anything else is None, as
if the page had not shown it.
"""

from __future__ import annotations

import re

AGE_RANGE = (18, 120)
"""Ages the site can show (18+, 99 is a placeholder some use); ``persons.age`` is a smallint."""
INT_MAX = 2**31 - 1
"""PostgreSQL ``integer``: viewers, follower counts."""
_ASCII_NUMBER = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+$|^[0-9]{1,12}$", re.ASCII)


def within(value: int | None, low: int, high: int) -> int | None:
    """``value`` if it lies in ``low..high``, else None."""
    return value if value is not None and low <= value <= high else None


def parse_int(text: str, low: int = 0, high: int = INT_MAX) -> int | None:
    """``text`` (whitespace around it allowed) as a number in ``low..high``, else None."""
    text = text.strip()
    if not _ASCII_NUMBER.match(text):
        return None
    return within(int(text.replace(",", "")), low, high)


def age(value: int | str | None) -> int | None:
    """An age from a page's text or a JSON number, if it is a plausible one."""
    if isinstance(value, str):
        return parse_int(value, *AGE_RANGE)
    return within(value, *AGE_RANGE)


def count(value: int | None) -> int | None:
    """A viewer or follower count from JSON, if it fits an ``integer`` column."""
    return within(value, 0, INT_MAX)
