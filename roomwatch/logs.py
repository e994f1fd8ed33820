"""Operator logging: one line per event, and a redaction filter so no secret reaches a log.

The filter masks every value registered with :func:`register_secret` (API token, secret key,
database password, session cookies once loaded) and anything shaped like a credential
(``sessionid=...``, ``Authorization: Bearer ...``, ``password=...``), in the message and in its
arguments.

Short values: among everything registered in passing (every cookie of a session), values under
:data:`MIN_INCIDENTAL_SECRET` characters are flags such as ``1`` or ``true``, not secrets, and
are left alone. A secret a person chose (a password, registered with ``always=True``) is masked
however short: wherever it appears from :data:`MIN_SUBSTRING_SECRET` characters on; below that
(a three-letter database password) it cannot be masked inside other words without masking half
of every line ("a" would take every letter a), so it is masked where it stands alone, between
characters that are not letters, digits or underscores (``user:pw@host``, ``'pw'``), and
registering it warns that inside a word it would still show.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

MASK = "***"
_PATTERNS = re.compile(
    r"(?i)(sessionid|csrftoken|cf_clearance|password|passwd|secret|token|authorization)"
    r"(\s*[=:]\s*(?:bearer\s+)?|\"\s*:\s*\")([^\s;&,\"']+)"
)
MIN_SUBSTRING_SECRET = 4
MIN_INCIDENTAL_SECRET = 6
_secrets: set[str] = set()
_short: re.Pattern[str] | None = None  # the short secrets, each as a whole word
_lock = threading.Lock()


def register_secret(value: str, *, always: bool = False) -> None:
    """Masks ``value`` in every later log line.

    Args:
        value: the secret.
        always: a secret a person chose (a password): masked however short. Without it, a
            value under :data:`MIN_INCIDENTAL_SECRET` characters is ignored (module docstring).
    """
    global _short
    if not value or value.isspace() or (len(value) < MIN_INCIDENTAL_SECRET and not always):
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        short = sorted((s for s in _secrets if len(s) < MIN_SUBSTRING_SECRET), key=len)
        words = "|".join(re.escape(s) for s in reversed(short))
        _short = re.compile(rf"(?<!\w)(?:{words})(?!\w)") if short else None
    if len(value) < MIN_SUBSTRING_SECRET:
        logging.getLogger(__name__).warning(
            "a secret (a password, token or key) of fewer than %d characters is in use: logs "
            "mask it only where it stands alone; use a longer one",
            MIN_SUBSTRING_SECRET,
        )


def redact(text: str) -> str:
    """``text`` with registered secrets and credential-shaped values replaced by ``***``."""
    with _lock:
        secrets = sorted((s for s in _secrets if len(s) >= MIN_SUBSTRING_SECRET), key=len)
        short = _short
    for secret in reversed(secrets):
        text = text.replace(secret, MASK)
    if short is not None:
        text = short.sub(MASK, text)
    return _PATTERNS.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _drop_record(record: logging.LogRecord) -> bool:
    return False


def quiet_apprise_logs() -> None:
    """Drops every log line of Apprise, before any handler (ours, or a test's) sees it.

    Apprise quotes parts of its URLs (host, path, a token shortened to its ends) in its log
    lines, in pieces the redaction filter cannot recognise; the URLs are secrets. A filter on
    its logger, unlike ``propagate = False``, holds whoever attaches handlers to it. Call it
    before Apprise first logs, that is before ``import apprise``.
    """
    logging.getLogger("apprise").addFilter(_drop_record)  # added once, however often called


def setup_logging(level: str = "INFO", log_file: Path | None = None) -> None:
    """Root logging to stderr (and optionally a file), every handler behind the redaction filter."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        # The level on the handlers too: libraries (Scrapy) reset the root logger to NOTSET,
        # and redacting every DEBUG record (Scrapy logs whole items) costs seconds per crawl.
        handler.setLevel(level)
        handler.setFormatter(formatter)
        handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=handlers, force=True)
