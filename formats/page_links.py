"""Paging and totals of a list page whose markup is not known in advance.

The followers page's markup is a guess (FORMATS.md §3.9), and a fake of the site that used a
table, a heading "Followers (145)" and ``div.pagination`` links left a crawl with neither a
count nor a second page. So both are read the ways list pages commonly show them:

* paging: any link to the same path with a ``page`` parameter. A link whose text is a number
  (or "last") bounds the numbered pages; one marked next (``rel=next``, a ``next`` class or
  label, "next", "›", "»") says a further page exists even where no numbered link shows it.
  The page shown is the number marked current (``aria-current``, an ``active``/``current``
  class, or a number that is not a link), else one past the "previous" link's page;
* a total: the configured count element first; then an element whose class, id or
  ``data-testid`` names a follower count; then a heading, caption or the title reading
  "Followers (145)", "Followers: 145" or "145 followers". Numbers are ASCII digits with
  optional thousands separators; anything else (``²``, "1.2k") is not a count.

Page numbers above :data:`MAX_PAGE` are ignored: no list the crawl reads is that long, and a
link to page 10**12 must not send it walking.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import msgspec

from formats.markup import Element, elements, select, text_of

MAX_PAGE = 10_000
"""The highest page number believed (10,000 pages of followers is past any real account)."""
MAX_COUNT = 2**31 - 1
"""A total above this is not a follower count (and would not fit an ``integer`` column)."""

_NUMBER = r"([0-9]{1,3}(?:[,.\u00a0\u202f ][0-9]{3})+|[0-9]+)(?![0-9.,]*[0-9kKmM])"
_COUNT_TEXTS = (
    re.compile(r"followers?\s*[(:\[]?\s*" + _NUMBER, re.IGNORECASE | re.ASCII),
    re.compile(r"(?<![0-9.,])" + _NUMBER + r"\s*followers?\b", re.IGNORECASE | re.ASCII),
)
_BARE_NUMBER = re.compile(r"^\(?\s*" + _NUMBER + r"\s*\)?$", re.ASCII)
_DIGITS = re.compile(r"^[0-9]{1,9}$", re.ASCII)
_NEXT_TEXTS = frozenset({"next", "next page", "next ›", "next »", "›", "»", ">", ">>", "→"})
_PREV_TEXTS = frozenset({"prev", "previous", "previous page", "‹ prev", "« prev", "‹", "«", "<"})
_CURRENT_CLASSES = frozenset({"active", "current", "selected", "is-active", "is-current"})
_LOWER = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
_NAMED = " or ".join(
    f"(contains({_LOWER.format(a)}, 'follower') and contains({_LOWER.format(a)}, 'count'))"
    for a in ("@class", "@id", "@data-testid")
)
_COUNT_ELEMENTS = f"//*[{_NAMED}]"
_HEADINGS = (
    "//*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6 or self::caption"
    " or self::legend or self::title]"
)
# Single path expressions with predicates: an XPath union of big node sets is quadratic.


class Paging(msgspec.Struct, frozen=True, kw_only=True):
    """Where a page stands in its list.

    Attributes:
        page: this page's number (1 without paging).
        last_page: the highest page number linked by number (this page at least).
        next_page: the page a "next" link leads to, when it leads past this one.
    """

    page: int
    last_page: int
    next_page: int | None


def page_number(text: str) -> int | None:
    """``text`` as a page number: ASCII digits only, 1 to :data:`MAX_PAGE`; else None."""
    text = text.strip()
    if not _DIGITS.match(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_PAGE else None


def _tokens(element: Element, attribute: str) -> set[str]:
    return set((element.get(attribute) or "").lower().split())


def _link_page(href: str, path: str) -> int | None:
    """The ``page`` parameter of a link to ``path`` (or to this page: ``?page=N``)."""
    parts = urlsplit(href.strip())
    if parts.path and parts.path.rstrip("/") != path.rstrip("/"):
        return None
    values = parse_qs(parts.query).get("page")
    return page_number(values[0]) if values else None


def _marked_current(element: Element) -> bool:
    if (element.get("aria-current") or "").lower() == "page":
        return True
    parent = element.getparent()
    classes = _tokens(element, "class")
    if parent is not None:
        classes |= _tokens(parent, "class")
    return bool(classes & _CURRENT_CLASSES)


def read_paging(root: Element, path: str) -> Paging:
    """This page's place in its list (rules in the module docstring), in one pass."""
    current: int | None = None
    last = 1
    next_page: int | None = None
    previous: int | None = None
    containers: set[Element] = set()
    for link in root.iter("a"):
        href = link.get("href")
        number = _link_page(href, path) if href is not None else None
        if number is None:
            continue
        text = text_of(link).lower()
        rel = _tokens(link, "rel")
        label = (link.get("aria-label") or "").lower()
        classes = _tokens(link, "class")
        if "next" in rel or "next" in classes or text in _NEXT_TEXTS or "next" in label:
            next_page = number if next_page is None else max(next_page, number)
        elif "prev" in rel or classes & {"prev", "previous"} or text in _PREV_TEXTS:
            previous = number
        elif page_number(text) is not None or text in {"last", "last »", "»|"}:
            last = max(last, number)
            if _marked_current(link):
                current = number
            parent = link.getparent()
            container = parent.getparent() if parent is not None and parent.tag == "li" else parent
            if container is not None:
                containers.add(container)
    if current is None:
        current = _unlinked_number(containers)
    if current is None:
        current = previous + 1 if previous is not None else 1
    last = max(last, current)
    return Paging(
        page=current,
        last_page=last,
        next_page=next_page if next_page is not None and next_page > current else None,
    )


def _unlinked_number(containers: set[Element]) -> int | None:
    """The current page in a paging block: a bare number that is not a link (``<span>2</span>``)."""
    for container in containers:
        for node in elements(container):
            if len(node) or node.tag == "a" or any(up.tag == "a" for up in node.iterancestors()):
                continue
            if (number := page_number(text_of(node))) is not None:
                return number
    return None


def _count_in(text: str, patterns: tuple[re.Pattern[str], ...]) -> int | None:
    for pattern in patterns:
        if found := pattern.search(text):
            value = int(re.sub(r"[^0-9]", "", found.group(1)))
            return value if value <= MAX_COUNT else None
    return None


def read_count(root: Element, count_selector: str) -> int | None:
    """The list's total (rules in the module docstring), or None when the page shows none."""
    for element in select(root, count_selector):
        if (value := _count_in(text_of(element), (_BARE_NUMBER, *_COUNT_TEXTS))) is not None:
            return value
    for element in root.xpath(_COUNT_ELEMENTS):
        if (value := _count_in(text_of(element), (_BARE_NUMBER, *_COUNT_TEXTS))) is not None:
            return value
    for heading in root.xpath(_HEADINGS):
        if (value := _count_in(text_of(heading), _COUNT_TEXTS)) is not None:
            return value
    return None
