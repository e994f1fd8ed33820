"""Text from upstream, made storable: every decoder passes broadcaster-controlled strings here.

PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone surrogate (JSON's ``\\ud800``
escapes decode to one); either in one field made a whole COPY batch fail. Both are dropped where
the text comes in, so a room with such a subject is stored like any other.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """``value`` without NUL characters and lone surrogates (a valid pair never reaches Python)."""
    return _UNSTORABLE.sub("", value) if _UNSTORABLE.search(value) else value
