"""Config: defaults, file + environment precedence, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomwatch.config import load_config
from roomwatch.errors import ConfigError, JobError
from roomwatch.logs import redact


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
        (
            {"ROOMWATCH_ALERTS_QUIET_HOURS": "25:00-07:00"},
            "alerts.quiet_hours (ROOMWATCH_ALERTS_QUIET_HOURS): expected HH:MM-HH:MM, got "
            "'25:00-07:00'",
        ),
        (
            {"ROOMWATCH_ALERTS_QUIET_HOURS": "07:00-07:00"},
            "alerts.quiet_hours (ROOMWATCH_ALERTS_QUIET_HOURS): start and end are the same",
        ),
        (
            {"ROOMWATCH_ALERTS_TIMEZONE": "Mars/Olympus"},
            "alerts.timezone (ROOMWATCH_ALERTS_TIMEZONE): expected an IANA time zone name",
        ),
        (
            {"ROOMWATCH_ALERTS_BIG_TIP_TOKENS": "-1"},
            "alerts.big_tip_tokens (ROOMWATCH_ALERTS_BIG_TIP_TOKENS): expected `int` >= 0",
        ),
        (
            {"ROOMWATCH_DATABASE_ACTIVITY_RETENTION_DAYS": "-1"},
            "database.activity_retention_days (ROOMWATCH_DATABASE_ACTIVITY_RETENTION_DAYS): "
            "expected `int` >= 0",
        ),
        (
            {"ROOMWATCH_DATABASE_JOB_RETENTION_DAYS": "-1"},
            "database.job_retention_days (ROOMWATCH_DATABASE_JOB_RETENTION_DAYS): "
            "expected `int` >= 0",
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
            "ROOMWATCH_API_TOKEN": "tok-supersecret-0123456789abcdefghijkl",
            "ROOMWATCH_DATABASE_URL": "postgresql://u:pw-secret@h/db",
        }
    )
    assert "supersecret" not in repr(config) and "pw-secret" not in repr(config)


@pytest.mark.parametrize("token", ["Q", "tok-supersecret", "y" * 31, "z" * 20 + " " + "z" * 20])
def test_a_short_api_token_fails_at_start_without_showing_it(token: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config({"ROOMWATCH_API_TOKEN": token})
    message = str(failure.value)
    assert message.startswith("api.token (ROOMWATCH_API_TOKEN): expected at least 32 characters")
    assert token not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2-pw@h/db?bogus=1",
        "postgresql://u:pa%ZZhunter2-pw@h/db",
        "postgresql://u:hunter2-pw@[h/db",
        "postgresql://u:hunter 2-pw@h/db",
    ],
)
def test_a_malformed_database_url_is_one_line_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config({"ROOMWATCH_DATABASE_URL": url})
    message = str(failure.value)
    assert message == (
        "database.url (ROOMWATCH_DATABASE_URL): not a valid PostgreSQL URL "
        "(not shown: it may hold a password)"
    )
    # Nothing chained either: a traceback printed by anyone must not quote the URL.
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_the_database_password_is_masked_in_logs_once_the_config_is_read() -> None:
    load_config({"ROOMWATCH_DATABASE_URL": "postgresql://u:p%40ss-w0rd@h/db"})
    line = redact("connecting as u with p@ss-w0rd to postgresql://u:p%40ss-w0rd@h/db")
    assert "p@ss-w0rd" not in line and "p%40ss-w0rd" not in line


def test_a_short_database_password_is_masked_where_it_stands_alone() -> None:
    load_config({"ROOMWATCH_DATABASE_URL": "postgresql://u:Xq@h/db"})
    line = redact('connection to postgresql://u:Xq@h/db failed: password "Xq" rejected; Xqz')
    assert line == 'connection to postgresql://u:***@h/db failed: password "***" rejected; Xqz'


EVENTS_TOKEN = "evtok-9f8e7d6c5b4a39281706"
STATS_TOKEN = "sttok-0a1b2c3d4e5f60718293"


def test_the_owner_api_urls_name_the_account_and_hide_the_token() -> None:
    config = load_config(
        {
            "ROOMWATCH_EVENTS_URL": f"https://eventsapi.chaturbate.com/events/Owner/{EVENTS_TOKEN}/",
            "ROOMWATCH_STATS_URL": (
                f"https://chaturbate.com/statsapi/?username=Owner&token={STATS_TOKEN}"
            ),
        }
    )
    assert (config.events.account, config.events.token) == ("owner", EVENTS_TOKEN)
    assert (config.stats.account, config.stats.token) == ("owner", STATS_TOKEN)
    line = f"GET {config.events.url} and {config.stats.url}"
    assert EVENTS_TOKEN not in redact(line) and STATS_TOKEN not in redact(line)
    assert load_config({}).events.account == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ROOMWATCH_EVENTS_URL": f"https://evil.example/events/owner/{EVENTS_TOKEN}/"},
            "events.url (ROOMWATCH_EVENTS_URL): host 'evil.example' is not one of allowed_hosts",
        ),
        (
            {"ROOMWATCH_EVENTS_URL": f"https://eventsapi.chaturbate.com/{EVENTS_TOKEN}"},
            "events.url (ROOMWATCH_EVENTS_URL): expected the shape https://HOST/events/",
        ),
        (
            {"ROOMWATCH_STATS_URL": f"https://chaturbate.com/statsapi/?token={STATS_TOKEN}"},
            "stats.url (ROOMWATCH_STATS_URL): expected the shape https://HOST/statsapi/",
        ),
        (
            {"ROOMWATCH_STATS_URL": f"ftp://chaturbate.com/?username=o&token={STATS_TOKEN}"},
            "stats.url (ROOMWATCH_STATS_URL): expected an http(s) URL",
        ),
        (
            {"ROOMWATCH_STATS_ALLOWED_HOSTS": "Chaturbate.com"},
            "stats.allowed_hosts (ROOMWATCH_STATS_ALLOWED_HOSTS): expected lower-case host names",
        ),
    ],
)
def test_a_bad_owner_api_url_is_refused_without_showing_it(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as failure:
        load_config(env)
    text = str(failure.value)
    assert message in text
    assert EVENTS_TOKEN not in text and STATS_TOKEN not in text


SECOND_TOKEN = "evtok-1122334455667788aabb"


def test_several_accounts_give_one_owner_url_each() -> None:
    first = f"https://eventsapi.chaturbate.com/events/Owner/{EVENTS_TOKEN}/"
    second = f"https://eventsapi.chaturbate.com/events/studio_b/{SECOND_TOKEN}/"
    stats = f"https://chaturbate.com/statsapi/?username=studio_b&token={STATS_TOKEN}"
    config = load_config(
        {"ROOMWATCH_EVENTS_URL": f"{first}\n {second}", "ROOMWATCH_STATS_URL": stats}
    )
    assert config.events.streams == {"owner": first, "studio_b": second}
    assert (config.events.account, config.events.token) == ("", "")  # no single one
    assert config.events.choose("STUDIO_B", "events.url") == "studio_b"
    with pytest.raises(JobError, match=r"names several accounts \(owner, studio_b\): name one"):
        config.events.choose(None, "events.url")
    with pytest.raises(JobError, match=r"names no account 'carol' \(it names: owner, studio_b\)"):
        config.events.choose("carol", "events.url")
    assert config.stats.choose(None, "stats.url") == "studio_b"

    # A crawl of one account sees its own URLs only (none where it has none).
    owner = config.for_account("owner")
    assert (owner.events.url, owner.events.token, owner.stats.url) == (first, EVENTS_TOKEN, "")
    studio = config.for_account("studio_b")
    assert (studio.events.account, studio.stats.account) == ("studio_b", "studio_b")
    line = redact(f"GET {first} then {second}")
    assert EVENTS_TOKEN not in line and SECOND_TOKEN not in line


def test_two_owner_urls_of_one_account_are_refused_without_showing_them() -> None:
    urls = " ".join(
        f"https://eventsapi.chaturbate.com/events/{name}/{token}/"
        for name, token in (("Owner", EVENTS_TOKEN), ("owner", SECOND_TOKEN))
    )
    with pytest.raises(ConfigError) as failure:
        load_config({"ROOMWATCH_EVENTS_URL": urls})
    text = str(failure.value)
    assert "events.url (ROOMWATCH_EVENTS_URL): two URLs name the account 'owner'" in text
    assert EVENTS_TOKEN not in text and SECOND_TOKEN not in text
    with pytest.raises(ConfigError, match=r"host 'evil\.example' is not one of allowed_hosts"):
        load_config(
            {"ROOMWATCH_EVENTS_URL": f"{urls.split()[0]} https://evil.example/events/b/tok1234/"}
        )


def test_an_owner_api_url_on_an_allowed_test_host_is_taken() -> None:
    url = f"http://127.0.0.1:8899/events/owner/{EVENTS_TOKEN}/"
    config = load_config(
        {"ROOMWATCH_EVENTS_URL": url, "ROOMWATCH_EVENTS_ALLOWED_HOSTS": "127.0.0.1"}
    )
    assert config.events.url == url and config.events.allowed_hosts == ["127.0.0.1"]


def test_the_scrapyd_runner_needs_nodes_and_shared_images() -> None:
    with pytest.raises(ConfigError, match=r"scrapyd needs at least one node in scrapyd\.urls"):
        load_config({"ROOMWATCH_RUNNER": "scrapyd"})
    with pytest.raises(ConfigError, match=r'images\.store = "database"'):
        load_config({"ROOMWATCH_RUNNER": "scrapyd", "ROOMWATCH_SCRAPYD_URLS": "http://a:6800"})
    config = load_config(
        {
            "ROOMWATCH_RUNNER": "scrapyd",
            "ROOMWATCH_SCRAPYD_URLS": "http://a:6800, http://b:6800",
            "ROOMWATCH_IMAGES_STORE": "database",
        }
    )
    assert config.scrapyd.urls == ["http://a:6800", "http://b:6800"]
    assert load_config({}).runner == "local"


def test_scrapyd_credentials_are_secrets_and_said_once() -> None:
    with pytest.raises(ConfigError, match="credentials both in a node URL and in username"):
        load_config(
            {
                "ROOMWATCH_SCRAPYD_URLS": "http://u:nodepass-in-url@a:6800",
                "ROOMWATCH_SCRAPYD_PASSWORD": "other-secret-pass",
            }
        )
    load_config({"ROOMWATCH_SCRAPYD_URLS": "http://u:nodepass-in-url@a:6800"})
    assert "nodepass-in-url" not in redact("node http://u:nodepass-in-url@a:6800")


def test_public_metrics_only_on_loopback() -> None:
    assert load_config({"ROOMWATCH_METRICS_PUBLIC": "true"}).metrics.public
    with pytest.raises(ConfigError, match="only while the API listens on loopback"):
        load_config({"ROOMWATCH_METRICS_PUBLIC": "true", "ROOMWATCH_API_HOST": "0.0.0.0"})
