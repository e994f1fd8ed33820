"""Reading a page's filters from its URL: plain strings in, typed values or a clear 400 out.

Forms send empty fields (``following=``) for "any", which the API's typed parameters would
refuse; here an empty value means "not set", and anything else wrong is a 400 page naming the
field, never a silently ignored filter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TypeVar

from roomwatch.errors import InvalidInput

T = TypeVar("T", bound=str)

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def text(params: Mapping[str, str], name: str, max_length: int = 100) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > max_length:
        raise InvalidInput(name, f"at most {max_length} characters")
    return value or None


def flag(params: Mapping[str, str], name: str) -> bool | None:
    value = (params.get(name) or "").strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(name, "expected true or false")


def choice(params: Mapping[str, str], name: str, allowed: Collection[T], default: T) -> T:
    value = (params.get(name) or "").strip()
    if not value:
        return default
    for option in allowed:
        if option == value:
            return option
    raise InvalidInput(name, f"expected one of {', '.join(allowed)}")


def optional_choice(params: Mapping[str, str], name: str, allowed: Collection[T]) -> T | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    return choice(params, name, allowed, next(iter(allowed)))
