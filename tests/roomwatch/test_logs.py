"""The redaction filter keeps registered secrets and credential-shaped values out of every line."""

from __future__ import annotations

import logging
from pathlib import Path

from roomwatch.logs import MASK, redact, register_secret, setup_logging


def test_registered_secrets_and_credential_shapes_are_masked() -> None:
    register_secret("s3cr3t-token-value")
    line = redact(
        "auth with s3cr3t-token-value; Cookie: sessionid=abcdef123456; csrftoken=zzz999; "
        'Authorization: Bearer qwerty12345 {"password": "hunter22"} password=pw123456'
    )
    for leaked in (
        "s3cr3t-token-value",
        "abcdef123456",
        "zzz999",
        "qwerty12345",
        "hunter22",
        "pw123456",
    ):
        assert leaked not in line
    assert line.count(MASK) >= 6


def test_log_files_and_exceptions_are_redacted(tmp_path: Path) -> None:
    log_file = tmp_path / "job.log"
    setup_logging("DEBUG", log_file)
    register_secret("cookie-value-42")
    logger = logging.getLogger("roomwatch.test")
    logger.info("loaded cookie %s", "cookie-value-42")
    try:
        raise ValueError("bad sessionid=cookie-value-42")
    except ValueError:
        logger.exception("failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert "loaded cookie ***" in text
    assert "cookie-value-42" not in text
    assert "ValueError" in text
    setup_logging("WARNING")


def test_short_secrets_are_masked_too_but_only_where_they_stand_alone() -> None:
    register_secret("Qz7", always=True)
    line = redact("connect to postgresql://u:Qz7@h/db failed; password 'Qz7'; Qz7x and aQz7 stay")
    assert line == ("connect to postgresql://u:***@h/db failed; password '***'; Qz7x and aQz7 stay")
    register_secret("k9wv", always=True)  # four characters and more: masked wherever they are
    assert redact("xk9wvx") == "x***x"


def test_a_one_character_secret_does_not_mask_every_letter() -> None:
    # A letter no other test logs: registered secrets stay registered for the whole session.
    register_secret("Ǝ", always=True)
    assert redact("the ƎƎ agent Ǝ started; Ǝ") == "the ƎƎ agent *** started; ***"


def test_short_values_registered_in_passing_are_flags_not_secrets() -> None:
    # Every cookie of a session is registered; "agreeterms=1" must not mask every "1".
    register_secret("1")
    register_secret("true")
    assert redact("job 1: complete=true") == "job 1: complete=true"
