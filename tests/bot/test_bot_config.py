"""The ``[bot]`` table of the service's TOML file: defaults, every key, the errors naming
``bot.<field>``, the ``MT5GATE_BOT_*`` overrides and the token from a variable or a file (the
token never reaches an error)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from mt5gate.bot.settings import TELEGRAM_API_URL, AlertPolicy, BotMember, BotSettings, Role
from mt5gate.service.config import ConfigError, ServiceSettings, load_settings
from tests.service.test_config import problem, secret_file, write

#: Distinctive enough that finding it anywhere means it leaked.
TOKEN = "7000001:AAH-bot-token-never-print-me-4f1e"

ONE = '[[accounts]]\nname = "main"\n'

FULL_BOT = """
[[accounts]]
name = "main"

[[accounts]]
name = "paper"
terminal = "sim"

[bot]
token_env = "MY_BOT_TOKEN"
api_url = "http://127.0.0.1:8081/bot"
account = "paper"
confirm_ttl_s = 30
alerts = { per_minute = 10, burst = 2, dedupe_s = 60, poll_s = 2.5, events_s = 0.5 }

[[bot.users]]
id = 123456789
role = "admin"
name = "alice"

[[bot.users]]
id = 42
role = "viewer"

[[bot.chats]]
id = -1001234567890
role = "trader"
"""


def bot_problem(tmp_path: Path, bot: str, env: dict[str, str] | None = None) -> str:
    return problem(tmp_path, ONE + "[bot]\n" + bot, env)


# ---------------------------------------------------------------------------------------------
# The table


def test_no_bot_table_is_the_defaults(tmp_path: Path) -> None:
    bot = load_settings(write(tmp_path, ONE), {}).bot
    assert bot == BotSettings()
    assert (bot.token_env, bot.token_file, bot.account) == (None, None, None)
    assert bot.api_url == TELEGRAM_API_URL == "https://api.telegram.org/bot"
    assert bot.confirm_ttl_s == 60.0
    assert (bot.users, bot.chats) == ((), ())
    assert bot.alerts == AlertPolicy()
    assert (bot.alerts.per_minute, bot.alerts.burst, bot.alerts.dedupe_s) == (20, 5, 300.0)
    assert bot.token_variable == "MT5GATE_BOT_TOKEN"
    assert load_settings(None, {}).bot == BotSettings()  # no file at all: the same


def test_an_empty_bot_table_is_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ONE + "[bot]\n"), {}).bot == BotSettings()


def test_every_bot_key(tmp_path: Path) -> None:
    bot = load_settings(write(tmp_path, FULL_BOT), {}).bot
    assert bot.token_env == "MY_BOT_TOKEN"
    assert bot.token_variable == "MY_BOT_TOKEN"
    assert bot.api_url == "http://127.0.0.1:8081/bot"
    assert bot.account == "paper"
    assert bot.confirm_ttl_s == 30.0
    assert bot.alerts == AlertPolicy(per_minute=10, burst=2, dedupe_s=60, poll_s=2.5,
                                     events_s=0.5)  # fmt: skip
    assert bot.users == (
        BotMember(id=123456789, role=Role.ADMIN, name="alice"),
        BotMember(id=42, role=Role.VIEWER),
    )
    assert bot.users[1].name == ""
    assert bot.chats == (BotMember(id=-1001234567890, role=Role.TRADER),)
    assert all(isinstance(m.role, Role) for m in (*bot.users, *bot.chats))


def test_inline_users_work_too(tmp_path: Path) -> None:
    text = ONE + '[bot]\nusers = [{ id = 1, role = "trader" }, { id = 2, role = "admin" }]\n'
    bot = load_settings(write(tmp_path, text), {}).bot
    assert [(m.id, m.role) for m in bot.users] == [(1, Role.TRADER), (2, Role.ADMIN)]


# ---------------------------------------------------------------------------------------------
# Errors


def test_an_unknown_bot_key_is_named_and_the_close_one_suggested(tmp_path: Path) -> None:
    path = tmp_path / "mt5gate.toml"
    message = bot_problem(tmp_path, "confirm_ttl = 30\n")
    assert message == f"{path}: bot.confirm_ttl: unknown field (did you mean 'confirm_ttl_s'?)"
    assert "did you mean 'api_url'" in bot_problem(tmp_path, 'api_ur = "https://x/bot"\n')


def test_an_unknown_member_key_suggests_the_close_one(tmp_path: Path) -> None:
    message = bot_problem(tmp_path, 'users = [{ id = 1, role = "admin", nmae = "x" }]\n')
    assert message.endswith("bot.users[0].nmae: unknown field (did you mean 'name'?)")
    message = bot_problem(tmp_path, 'chats = [{ id = -1, rol = "admin" }]\n')
    assert "bot.chats[0].rol: unknown field (did you mean 'role'?)" in message


def test_an_unknown_alerts_key_suggests_the_close_alert_field(tmp_path: Path) -> None:
    message = bot_problem(tmp_path, "alerts = { per_minit = 5 }\n")
    assert "bot.alerts.per_minit: unknown field (did you mean 'per_minute'?)" in message


def test_an_unknown_alerts_key_is_never_matched_against_the_service_fields(
    tmp_path: Path,
) -> None:
    message = bot_problem(tmp_path, "alerts = { hosts = 5 }\n")
    assert "bot.alerts.hosts: unknown field" in message
    assert "'host'" not in message  # host is a [service] field, not an alert policy's


def test_a_bad_role_names_the_member(tmp_path: Path) -> None:
    path = tmp_path / "mt5gate.toml"
    message = bot_problem(tmp_path, 'users = [{ id = 1, role = "boss" }]\n')
    assert message == f"{path}: bot.users[0].role: must be 'viewer', 'trader' or 'admin'"
    message = bot_problem(
        tmp_path, 'chats = [{ id = -1, role = "viewer" }, { id = -2, role = "Admin" }]\n'
    )
    assert "bot.chats[1].role: must be 'viewer', 'trader' or 'admin'" in message


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ('{ id = 0, role = "admin" }', "bot.users[0].id: must be a Telegram id (not 0)"),
        ('{ id = "12", role = "admin" }', "bot.users[0].id: must be a valid integer"),
        ('{ id = true, role = "admin" }', "bot.users[0].id: must be a valid integer"),
        ('{ role = "admin" }', "bot.users[0].id: is required"),
        ("{ id = 5 }", "bot.users[0].role: is required"),
    ],
)
def test_a_bad_member_names_the_field(tmp_path: Path, entry: str, rule: str) -> None:
    assert rule in bot_problem(tmp_path, f"users = [{entry}]\n")


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    message = bot_problem(
        tmp_path, 'users = [{ id = 7, role = "admin" }, { id = 7, role = "viewer" }]\n'
    )
    assert message.endswith("bot.users: ids must be unique; repeated: 7")
    message = bot_problem(
        tmp_path, 'chats = [{ id = -5, role = "admin" }, { id = -5, role = "viewer" }]\n'
    )
    assert message.endswith("bot.chats: ids must be unique; repeated: -5")
    # The same id as a user and as a chat is fine (a private chat's id is the user's).
    both = 'users = [{ id = 9, role = "admin" }]\nchats = [{ id = 9, role = "viewer" }]\n'
    text = ONE + "[bot]\n" + both
    assert load_settings(write(tmp_path, text), {}).bot.chats[0].id == 9


@pytest.mark.parametrize(
    "url", ["ftp://api.example/bot", "api.telegram.org/bot", "https://", "", "https:///bot"]
)
def test_api_url_must_be_http(tmp_path: Path, url: str) -> None:
    message = bot_problem(tmp_path, f'api_url = "{url}"\n')
    assert message.endswith(
        "bot.api_url: must be an http(s) URL such as https://api.telegram.org/bot"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{TOKEN}@api.example/bot",
        f"https://{TOKEN.replace(':', '')}@api.example/bot",
        f"https://api.example/bot?token={TOKEN}",
    ],
)
def test_api_url_must_not_carry_credentials(tmp_path: Path, url: str) -> None:
    message = bot_problem(tmp_path, f'api_url = "{url}"\n')
    assert message.endswith(
        "bot.api_url: must not carry credentials or a query (the token is added to it)"
    )
    assert TOKEN not in message
    assert TOKEN.split(":")[1] not in message


def test_a_local_bot_api_server_is_accepted(tmp_path: Path) -> None:
    text = ONE + '[bot]\napi_url = "http://localhost:8081/bot"\n'
    assert load_settings(write(tmp_path, text), {}).bot.api_url == "http://localhost:8081/bot"


def test_the_token_is_given_one_way_only(tmp_path: Path) -> None:
    message = bot_problem(tmp_path, 'token_env = "T"\ntoken_file = "secrets/token"\n')
    assert message.endswith("bot: give the token one way only, not token_env and token_file")
    assert "bot.token_env" in bot_problem(tmp_path, 'token_env = ""\n')


def test_a_relative_token_file_is_relative_to_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "mt5gate.toml"
    config.parent.mkdir()
    config.write_text(ONE + '[bot]\ntoken_file = "secrets/bot-token"\n', encoding="utf-8")
    assert load_settings(config, {}).bot.token_file == tmp_path / "etc" / "secrets/bot-token"
    absolute = tmp_path / "elsewhere" / "token"
    config.write_text(ONE + f'[bot]\ntoken_file = "{absolute}"\n', encoding="utf-8")
    assert load_settings(config, {}).bot.token_file == absolute


@pytest.mark.parametrize(
    ("bot", "rule"),
    [
        ("confirm_ttl_s = 1", "bot.confirm_ttl_s: must be greater than or equal to 5"),
        ("confirm_ttl_s = 7200", "bot.confirm_ttl_s: must be less than or equal to 3600"),
        ("alerts = { burst = 0 }", "bot.alerts.burst: must be greater than 0"),
        ("alerts = { per_minute = 1.5 }", "bot.alerts.per_minute: must be a valid integer"),
        ("alerts = { poll_s = 0 }", "bot.alerts.poll_s: must be greater than 0"),
        ("alerts = { dedupe_s = -1 }", "bot.alerts.dedupe_s: must be greater than or equal to 0"),
    ],
)
def test_bad_numbers_name_their_field(tmp_path: Path, bot: str, rule: str) -> None:
    assert rule in bot_problem(tmp_path, bot + "\n")


def test_bot_must_be_a_table(tmp_path: Path) -> None:
    message = problem(tmp_path, "bot = 5\n" + ONE)
    assert message == f"{tmp_path / 'mt5gate.toml'}: bot: must be a table ([bot])"


def test_a_misspelt_bot_table_suggests_bot_and_lists_it(tmp_path: Path) -> None:
    message = problem(tmp_path, ONE + "[bots]\n")
    assert "bots: unknown table or key (did you mean 'bot'?)" in message
    assert "[bot]" in message  # the list of the tables there are includes it


def test_bot_account_must_be_a_configured_account(tmp_path: Path) -> None:
    message = bot_problem(tmp_path, 'account = "other"\n')
    assert "bot: account" in message
    assert "'other'" in message
    assert "(main)" in message  # the accounts there are
    text = ONE.replace("main", "demo") + ONE + '[bot]\naccount = "demo"\n'
    assert load_settings(write(tmp_path, text), {}).bot.account == "demo"


def test_a_bad_bot_account_names_the_file(tmp_path: Path) -> None:
    # "Every problem is one ConfigError line naming the file or variable".
    message = bot_problem(tmp_path, 'account = "other"\n')
    assert message.startswith(f"{tmp_path / 'mt5gate.toml'}: bot: account 'other'")


# ---------------------------------------------------------------------------------------------
# The environment


def test_mt5gate_bot_users_replaces_the_files_users(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_BOT)
    bot = load_settings(path, {"MT5GATE_BOT_USERS": "11:admin, 22:viewer"}).bot
    assert bot.users == (BotMember(id=11, role=Role.ADMIN), BotMember(id=22, role=Role.VIEWER))
    assert bot.chats == (BotMember(id=-1001234567890, role=Role.TRADER),)  # the rest stays
    assert bot.account == "paper"
    assert bot.api_url == "http://127.0.0.1:8081/bot"


def test_mt5gate_bot_users_without_a_file(tmp_path: Path) -> None:
    bot = load_settings(None, {"MT5GATE_BOT_USERS": "5:TRADER,6:"}).bot
    assert bot.users == (BotMember(id=5, role=Role.TRADER), BotMember(id=6, role=Role.VIEWER))


def test_a_user_without_a_role_is_a_viewer(tmp_path: Path) -> None:
    bot = load_settings(write(tmp_path, ONE), {"MT5GATE_BOT_USERS": "33, 44:admin,"}).bot
    assert bot.users == (BotMember(id=33, role=Role.VIEWER), BotMember(id=44, role=Role.ADMIN))


@pytest.mark.parametrize("value", ["abc:admin", "1:admin,x", ":admin", "1.5:viewer"])
def test_a_malformed_mt5gate_bot_users_names_the_variable(tmp_path: Path, value: str) -> None:
    message = problem(tmp_path, ONE, {"MT5GATE_BOT_USERS": value})
    assert message.startswith("MT5GATE_BOT_USERS: ")
    assert "is not USER_ID:ROLE" in message


def test_a_bad_role_in_mt5gate_bot_users_names_the_variable_and_the_field(
    tmp_path: Path,
) -> None:
    message = problem(tmp_path, ONE, {"MT5GATE_BOT_USERS": "1:boss"})
    assert message == "MT5GATE_BOT_USERS: bot.users[0].role: must be 'viewer', 'trader' or 'admin'"
    message = problem(tmp_path, ONE, {"MT5GATE_BOT_USERS": "1:admin,1:viewer"})
    assert message == "MT5GATE_BOT_USERS: bot.users: ids must be unique; repeated: 1"


def test_mt5gate_bot_api_url(tmp_path: Path) -> None:
    env = {"MT5GATE_BOT_API_URL": " http://127.0.0.1:9999/bot "}
    bot = load_settings(write(tmp_path, FULL_BOT), env).bot
    assert bot.api_url == "http://127.0.0.1:9999/bot"
    assert bot.account == "paper"
    assert len(bot.users) == 2
    message = problem(tmp_path, ONE, {"MT5GATE_BOT_API_URL": "nope"})
    assert message == (
        "MT5GATE_BOT_API_URL: bot.api_url: must be an http(s) URL such as "
        "https://api.telegram.org/bot"
    )


def test_empty_bot_variables_count_as_unset(tmp_path: Path) -> None:
    env = {"MT5GATE_BOT_USERS": "", "MT5GATE_BOT_API_URL": ""}
    bot = load_settings(write(tmp_path, FULL_BOT), env).bot
    assert bot == load_settings(write(tmp_path, FULL_BOT), {}).bot


def test_a_problem_in_the_file_is_not_blamed_on_a_bot_variable(tmp_path: Path) -> None:
    text = ONE + '[bot]\nusers = [{ id = 1, role = "boss" }]\n'
    message = problem(tmp_path, text, {"MT5GATE_BOT_API_URL": "http://127.0.0.1:1/bot"})
    assert message.startswith(f"{tmp_path / 'mt5gate.toml'}: bot.users[0].role")
    text = ONE + '[bot]\napi_url = "ftp://x"\n'
    message = problem(tmp_path, text, {"MT5GATE_BOT_USERS": "1:admin"})
    assert message.startswith(f"{tmp_path / 'mt5gate.toml'}: bot.api_url")


# ---------------------------------------------------------------------------------------------
# The token


def settings_with(tmp_path: Path, bot: str = "") -> ServiceSettings:
    return load_settings(write(tmp_path, ONE + "[bot]\n" + bot), {})


def token_problem(settings: ServiceSettings, env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        settings.bot_token(env)
    message = str(caught.value)
    assert TOKEN not in message
    assert TOKEN.split(":")[1] not in message
    return message


def test_the_token_from_the_default_variable(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    token = settings.bot_token({"MT5GATE_BOT_TOKEN": f"  {TOKEN}\n"})
    assert isinstance(token, SecretStr)
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)


def test_the_token_from_token_env(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'token_env = "MY_BOT_TOKEN"\n')
    env = {"MY_BOT_TOKEN": TOKEN, "MT5GATE_BOT_TOKEN": "the-other-one"}
    assert settings.bot_token(env).get_secret_value() == TOKEN


def test_the_token_from_a_private_file(tmp_path: Path) -> None:
    secret_file(tmp_path / "secrets" / "bot-token", f"\n  {TOKEN}  \n")
    settings = settings_with(tmp_path, 'token_file = "secrets/bot-token"\n')
    env = {"MT5GATE_BOT_TOKEN": "ignored-when-a-file-is-given"}
    assert settings.bot_token(env).get_secret_value() == TOKEN


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_world_readable_token_file_is_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "bot-token", TOKEN, mode=0o644)
    settings = settings_with(tmp_path, 'token_file = "bot-token"\n')
    message = token_problem(settings, {})
    assert message == f"bot: token_file {path} is readable by every user; chmod 600 it"


def test_a_missing_or_empty_token_file(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'token_file = "nowhere"\n')
    message = token_problem(settings, {})
    assert message.startswith(f"bot: cannot read token_file {tmp_path / 'nowhere'}")
    secret_file(tmp_path / "empty", " \n")
    settings = settings_with(tmp_path, 'token_file = "empty"\n')
    assert token_problem(settings, {}) == f"bot: token_file {tmp_path / 'empty'} is empty"


@pytest.mark.parametrize("value", [None, "", "   \n"])
def test_a_missing_token_names_the_default_variable(tmp_path: Path, value: str | None) -> None:
    settings = settings_with(tmp_path)
    env = {} if value is None else {"MT5GATE_BOT_TOKEN": value}
    message = token_problem(settings, env)
    assert message.startswith("bot: the token is missing: set MT5GATE_BOT_TOKEN")
    assert "token_file" in message


def test_a_missing_token_names_token_env(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, 'token_env = "MY_BOT_TOKEN"\n')
    message = token_problem(settings, {"MT5GATE_BOT_TOKEN": TOKEN})  # the other variable
    assert "set MY_BOT_TOKEN" in message
    assert "MT5GATE_BOT_TOKEN" not in message


def test_no_config_error_ever_contains_the_token(tmp_path: Path) -> None:
    """Every way the token could be near a failure: in its variable or file, or mistakenly in
    the file's other keys or the bot variables."""
    env_with_token = {"MT5GATE_BOT_TOKEN": TOKEN, "MY_BOT_TOKEN": TOKEN}
    texts = [
        f'users = [{{ id = 1, role = "{TOKEN}" }}]\n',
        f'users = [{{ id = "{TOKEN}", role = "admin" }}]\n',
        f'api_url = "htps://api.telegram.org/bot{TOKEN}"\n',
        f'api_url = "https://api.telegram.org/bot?{TOKEN}"\n',
        f'token_env = "MY_BOT_TOKEN"\ntoken_file = "{TOKEN}"\n',
        f'alerts = {{ burst = "{TOKEN}" }}\n',
        f'confirm_ttl_s = "{TOKEN}"\n',
    ]
    messages = [bot_problem(tmp_path, text, env_with_token) for text in texts]
    for value in (f"{TOKEN}:admin", f"1:{TOKEN}"):
        messages.append(problem(tmp_path, ONE, {"MT5GATE_BOT_USERS": value}))
    messages.append(problem(tmp_path, ONE, {"MT5GATE_BOT_API_URL": f"ftp://x/bot{TOKEN}"}))
    secret_file(tmp_path / "open-token", TOKEN, mode=0o644)
    if os.name == "posix":
        messages.append(token_problem(settings_with(tmp_path, 'token_file = "open-token"\n'), {}))
    for message in messages:
        assert TOKEN not in message, message
        assert TOKEN.split(":")[1] not in message, message


def test_an_api_url_with_the_token_in_it_is_refused(tmp_path: Path) -> None:
    message = bot_problem(
        tmp_path, 'api_url = "https://api.telegram.org/bot123456789:AAH-abcdefghijklmnopqrstuv"\n'
    )
    assert "bot.api_url: must not contain the bot token" in message
    assert "AAH-abcdefghijklmnopqrstuv" not in message


def test_an_empty_bot_users_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MT5GATE_BOT_USERS: names no user"):
        load_settings(write(tmp_path, ONE), {"MT5GATE_BOT_USERS": " , "})
