"""Config: defaults, file + environment precedence, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomwatch.config import load_config
from roomwatch.errors import ConfigError


def test_defaults_match_the_interface() -> None:
    config = load_config({})
    assert config.api.host == "127.0.0.1" and config.api.port == 8787
    assert config.database.url == ""
    assert config.affiliate.url == "https://chaturbate.com/api/public/affiliates/onlinerooms/"
    assert config.cbhours.url == "https://www.cbhours.com/api.php"
    assert config.chaturbate.url == "https://chaturbate.com"
    assert config.affiliate.client_ip == "request_ip"
    assert config.merge.recent_minutes == 10


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "roomwatch.toml"
    toml.write_text('[api]\nport = 9000\nhost = "0.0.0.0"\n[affiliate]\nwm = "abc"\n')
    config = load_config(
        {
            "ROOMWATCH_CONFIG": str(toml),
            "ROOMWATCH_API_PORT": "9100",
            "ROOMWATCH_AFFILIATE_TAG": "asian, lush",
            "ROOMWATCH_BROWSER": "/x",
        }
    )
    assert (config.api.port, config.api.host, config.affiliate.wm) == (9100, "0.0.0.0", "abc")
    assert config.affiliate.tag == ["asian", "lush"]
    assert config.browser.executable == "/x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROOMWATCH_API_PORT": "eighty"}, "api.port (ROOMWATCH_API_PORT): expected `int`"),
        ({"ROOMWATCH_API_PORT": "70000"}, "api.port (ROOMWATCH_API_PORT): expected `int` <= 65535"),
        (
            {"ROOMWATCH_DATABASE_URL": "mysql://h/db"},
            "database.url (ROOMWATCH_DATABASE_URL): expected a postgres URL",
        ),
        (
            {"ROOMWATCH_CBHOURS_URL": "ftp://x"},
            "cbhours.url (ROOMWATCH_CBHOURS_URL): expected an http(s) URL",
        ),
        (
            {"ROOMWATCH_AFFILIATE_TAG": "a,b,c,d,e,f"},
            "affiliate.tag (ROOMWATCH_AFFILIATE_TAG): expected `array` of length <= 5",
        ),
        (
            {"ROOMWATCH_AFFILIATE_GENDER": "x"},
            "affiliate.gender (ROOMWATCH_AFFILIATE_GENDER): invalid enum value 'x'",
        ),
        (
            {"ROOMWATCH_MERGE_RECENT_MINUTES": "0"},
            "merge.recent_minutes (ROOMWATCH_MERGE_RECENT_MINUTES): expected `int` >= 1",
        ),
        ({"ROOMWATCH_APIPORT": "1"}, "apiport (ROOMWATCH_APIPORT): unknown setting"),
        ({"ROOMWATCH_API_PROT": "1"}, "api.prot (ROOMWATCH_API_PROT): unknown setting"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config(env)
    assert str(failure.value).startswith(message)
    assert "\n" not in str(failure.value)


def test_bad_file_is_named(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[api\nport = 1")
    with pytest.raises(ConfigError, match=r"config file .*bad.toml: not valid TOML"):
        load_config({"ROOMWATCH_CONFIG": str(toml)})
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config({"ROOMWATCH_CONFIG": str(tmp_path / "missing.toml")})


def test_repr_never_shows_secrets() -> None:
    config = load_config(
        {
            "ROOMWATCH_API_TOKEN": "tok-supersecret",
            "ROOMWATCH_DATABASE_URL": "postgresql://u:pw-secret@h/db",
        }
    )
    assert "supersecret" not in repr(config) and "pw-secret" not in repr(config)
