"""Linear walks over a parsed page, for the parsers of the logged-in lists.

A saved followers page can hold 20,000 cards. Two things made reading one quadratic: a CSS
selector group (``a, b``) becomes an XPath union, and libxml2 merges unions by comparing every
node of one side with every node of the other; and asking a parsel ``Selector`` for each card's
name cost several XPath evaluations (and wrapper objects) per card. Here each part of a group is
evaluated alone and the parts are merged in one pass over the document, and a card's name is
read from its own subtree, so reading a page costs time in proportion to its size.

Elements are lxml elements (``Selector.root``); lxml ships no type hints, hence ``Any``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import cssselect
from parsel import Selector
from parsel.csstranslator import HTMLTranslator

Element = Any
"""An ``lxml.html.HtmlElement``."""

_USERNAME = re.compile(r"^[a-z0-9_]{2,64}$")
_ONE_SEGMENT = re.compile(r"^(?:https?://[^/]+)?/([A-Za-z0-9_]+)/?$")
_NAME_ATTRIBUTES = ("data-room", "data-username", "data-slug")
_translator = HTMLTranslator()


def root_of(page: Selector) -> Element:
    """The lxml root element of a parsed page."""
    return page.root


def elements(root: Element) -> Iterator[Element]:
    """Every element under ``root``, itself included, in document order (no comments)."""
    yield from root.iter("*")


def select(root: Element, css: str) -> list[Element]:
    """The elements matching the CSS selector group ``css``, in document order, each once.

    Each selector of the group is evaluated on its own; their results are merged by one walk
    of the document (see the module docstring for why not the XPath union).
    """
    parts = [
        _translator.selector_to_xpath(part, prefix="descendant-or-self::")
        for part in cssselect.parse(css)
    ]
    if len(parts) == 1:
        return list(root.xpath(parts[0]))
    found = [matched for matched in (root.xpath(xpath) for xpath in parts) if matched]
    if len(found) <= 1:
        return found[0] if found else []
    matched = {node for nodes in found for node in nodes}
    return [node for node in elements(root) if node in matched]


def text_of(element: Element) -> str:
    """The element's text, whitespace collapsed (XPath ``normalize-space(string())``)."""
    return " ".join(element.text_content().split())


def valid_username(name: str) -> str | None:
    """``name`` lower-cased if it is a username, else None."""
    name = name.strip().lower()
    return name if _USERNAME.match(name) else None


def profile_name(href: str) -> str | None:
    """The first path segment of a ``/<name>/`` link, or None for any other link."""
    segment = _ONE_SEGMENT.match(href.strip())
    return segment.group(1) if segment else None


def name_of(element: Element) -> str | None:
    """The username an element names: ``data-room``/``data-username``/``data-slug`` on it or
    inside it, else a ``/<name>/`` link, else its text; None if that is not a username.

    Reads only the element's own subtree, in one pass.
    """
    first: dict[str, str] = {}
    href: str | None = None
    for node in element.iter("*"):
        for attribute in _NAME_ATTRIBUTES:
            value = node.get(attribute)
            if value and attribute not in first:
                first[attribute] = value
        if href is None and node.tag == "a" and node.get("href") is not None:
            href = node.get("href")
    for attribute in _NAME_ATTRIBUTES:
        if attribute in first:
            return valid_username(first[attribute])
    if href is not None and (name := profile_name(href)) is not None:
        return valid_username(name)
    return valid_username(text_of(element))
