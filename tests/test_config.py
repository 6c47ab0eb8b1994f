"""Tests of gateway.config: real files in tmp_path, an explicit environment."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import NoReturn

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from gateway.config import (
    ConfigExists,
    Duration,
    PartnerSettings,
    Settings,
    check_plugin_options,
    load_settings,
    parse_duration,
    write_initial_config,
)
from gateway.config.reference import render_reference
from gateway.errors import ConfigError, GatewayError
from gateway.plugin_types import PluginContext, SourceType, TransportType

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

MINIMAL = textwrap.dedent(
    """
    [sources.registry]
    type = "folder"
    path = "in"
    route_to = ["canton"]

    [partners.canton]
    transport = "sedex"

    [partners.canton.sedex]
    outbox = "out"
    token = "t"
    """
)


class FolderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path
    pattern: list[str] = ["*.xml"]
    done_dir: Path | None = None
    settle: Duration = 1.0
    grace: Duration = 300.0


class SedexOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outbox: Path
    token: SecretStr
    message_type: int = 1
    pair_grace: Duration = 60.0
    settle: Duration = 1.0
    grace: Duration = 300.0


def _never(options: BaseModel, context: PluginContext) -> NoReturn:
    raise NotImplementedError


SOURCE_TYPES = {"folder": SourceType("folder", FolderOptions, _never)}
TRANSPORT_TYPES = {"sedex": TransportType("sedex", SedexOptions, _never)}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path | None, env: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env or {})
    return caught.value.problems


def keyed(problems: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    return {(file, key): reason for file, key, reason in problems}


def rule_problems(tmp_path: Path, rules: str) -> tuple[Path, dict[tuple[str, str], str]]:
    """A minimal configuration with ``rules`` in ``conf.d/50-rules.toml``: that file, and the
    problems loading it finds, by file and key."""
    main = write(tmp_path / "gateway.toml", MINIMAL)
    conf = write(tmp_path / "conf.d/50-rules.toml", rules)
    return conf, keyed(problems_of(main))


# ---------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------


def test_init_writes_a_config_that_loads(tmp_path: Path) -> None:
    path = write_initial_config(tmp_path / "gw")

    settings = load_settings(path, env={})

    assert path == tmp_path / "gw" / "gateway.toml"
    assert settings.config_files == [path]
    assert settings.gateway.data_dir == path.parent
    assert settings.store.path == path.parent / "gateway.db"
    for name in ("registry/outbox", "registry/done", "sedex/outbox", "sedex/inbox"):
        assert (path.parent / name).is_dir()
    assert (path.parent / "sedex/receipts").is_dir()
    assert (path.parent / "sedex/processed").is_dir()
    assert settings.sources["registry"].route_to == []
    assert [(r.name, r.then.route_to) for r in settings.rules] == [
        ("foreign-nationals", ["canton"]), ("registry-ech0223", ["canton"]), ("everyone-else", [])]
    assert settings.sources["registry"].options["pattern"] == ["*.xml", "*.zip"]
    canton = settings.partners["canton"]
    assert canton.receipt_timeout == 3600
    assert canton.options["message_type"] == 1900223
    assert canton.options["sender_id"] == "T1-2511-1"
    assert canton.options["pair_grace"] == "60s"
    assert "# " in path.read_text()  # commented for the operator


def test_init_config_passes_plugin_checks_with_paths_resolved(tmp_path: Path) -> None:
    class Sedex(BaseModel):
        outbox: Path
        inbox: Path
        receipts: Path
        processed: Path
        sender_id: str
        recipient_id: str
        message_type: int
        envelope_version: int
        pair_grace: Duration
        settle: Duration
        grace: Duration

    path = write_initial_config(tmp_path)
    settings = load_settings(path, env={})
    transports = {"sedex": TransportType("sedex", Sedex, _never),
                  "folder": TransportType("folder", RegistryInbox, _never)}

    assert check_plugin_options(settings, SOURCE_TYPES, transports) == []

    folder = settings.sources["registry"].parsed
    assert isinstance(folder, FolderOptions)
    assert folder.path == tmp_path / "registry/outbox"
    assert folder.done_dir == tmp_path / "registry/done"
    parsed = settings.partners["canton"].parsed
    assert isinstance(parsed, Sedex)
    assert parsed.outbox == tmp_path / "sedex/outbox"
    assert parsed.pair_grace == 60.0
    assert "parsed" not in settings.model_dump()["partners"]["canton"]
    registry = settings.partners["registry"]
    assert registry.role == "registry"
    assert isinstance(registry.parsed, RegistryInbox)
    assert registry.parsed.path == tmp_path / "registry/inbox"
    assert (tmp_path / "registry/inbox").is_dir()


class RegistryInbox(BaseModel):
    path: Path


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write(tmp_path / "gateway.toml", "# mine\n")

    with pytest.raises(ConfigExists, match="exists already") as caught:
        write_initial_config(tmp_path)

    assert isinstance(caught.value, GatewayError)
    assert path.read_text() == "# mine\n"


# ---------------------------------------------------------------------------
# layers: conf.d, environment, secrets, paths
# ---------------------------------------------------------------------------


def test_conf_d_overrides_key_by_key_in_name_order(tmp_path: Path) -> None:
    main = write(
        tmp_path / "gateway.toml",
        MINIMAL + "[partners.canton.retry]\nmax_attempts = 5\ninitial = \"2s\"\n",
    )
    later = write(tmp_path / "conf.d/20-b.toml", "[partners.canton.retry]\nmax_attempts = 9\n")
    earlier = write(
        tmp_path / "conf.d/10-a.toml",
        "[partners.canton.retry]\nmax_attempts = 7\nmaximum = '5m'\n[gateway]\nlog_level = 'DEBUG'",
    )

    settings = load_settings(main, env={})

    retry = settings.partners["canton"].retry
    assert (retry.max_attempts, retry.initial, retry.maximum) == (9, 2.0, 300.0)
    assert settings.gateway.log_level == "DEBUG"
    assert settings.partners["canton"].options == {"outbox": "out", "token": "t"}
    assert settings.config_files == [main, earlier, later]


def test_environment_overrides_files(tmp_path: Path) -> None:
    main = write(tmp_path / "etc/gateway.toml", MINIMAL)
    write(tmp_path / "etc/conf.d/10-x.toml", "[partners.canton.retry]\nmax_attempts = 7\n")
    env = {
        "ECH_GATEWAY_CONFIG": str(main),
        "ECH_GATEWAY_PARTNERS__CANTON__RETRY__MAX_ATTEMPTS": "3",
        "ECH_GATEWAY_STORE__PATH": str(tmp_path / "x.db"),
        "ECH_GATEWAY_GATEWAY__DRAIN_TIMEOUT": "2m",
        "ECH_GATEWAY_SOURCES__REGISTRY__ROUTE_TO": '["canton"]',
        "ECH_GATEWAY_PARTNERS__CANTON__SEDEX__OUTBOX": "/srv/out",
        "ECH_GATEWAY_LOAD_PLUGINS": "sedex",  # not a configuration key
    }

    settings = load_settings(env=env)

    assert settings.config_files[0] == main
    assert settings.partners["canton"].retry.max_attempts == 3
    assert settings.store.path == tmp_path / "x.db"
    assert settings.gateway.drain_timeout == 120.0
    assert settings.partners["canton"].options["outbox"] == "/srv/out"


def test_an_environment_variable_with_one_underscore_after_its_section_is_named(
        tmp_path: Path) -> None:
    """``ECH_GATEWAY_GATEWAY_LOG_LEVEL`` (one ``_`` where ``__`` belongs) was skipped as
    silently as ``ECH_GATEWAY_CONFIG``: the operator's setting did nothing."""
    main = write(tmp_path / "gateway.toml", MINIMAL)
    env = {"ECH_GATEWAY_GATEWAY_LOG_LEVEL": "DEBUG", "ECH_GATEWAY_CONFIG": str(main),
           "ECH_GATEWAY_LOAD_PLUGINS": "sedex", "ECH_GATEWAY_STORE_": "x"}

    assert problems_of(None, env) == [
        ("env ECH_GATEWAY_GATEWAY_LOG_LEVEL", "gateway_log_level", "not a configuration key;"
         " did you mean ECH_GATEWAY_GATEWAY__LOG_LEVEL? (__ between section and key, and"
         " between tables)")]


def test_environment_values_that_are_not_json_lists(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL)
    env = {
        "ECH_GATEWAY_SOURCES__REGISTRY__ROUTE_TO": "canton",
        "ECH_GATEWAY_SOURCES__OTHER__ROUTE_TO": "[canton",
    }

    problems = keyed(problems_of(main, env))

    route_to = problems[
        ("env ECH_GATEWAY_SOURCES__REGISTRY__ROUTE_TO", "sources.registry.route_to")
    ]
    assert 'give a JSON value, e.g. ["a", "b"]' in route_to
    invalid = problems[("env ECH_GATEWAY_SOURCES__OTHER__ROUTE_TO", "sources.other.route_to")]
    assert invalid.startswith("invalid JSON")


def test_secrets_are_read_from_files(tmp_path: Path) -> None:
    write(tmp_path / "secrets/node", "node-7\n")
    write(tmp_path / "conf.d/secrets/token", "s3cret\n")
    main = write(tmp_path / "gateway.toml", MINIMAL + '[gateway]\nnode_id_file = "secrets/node"\n')
    # a later file's token_file replaces the main file's token
    write(
        tmp_path / "conf.d/50-secrets.toml",
        '[partners.canton.sedex]\ntoken_file = "secrets/token"\n',
    )

    settings = load_settings(main, env={})

    assert settings.gateway.node_id == "node-7"
    assert check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES) == []
    parsed = settings.partners["canton"].parsed
    assert isinstance(parsed, SedexOptions)
    assert parsed.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(parsed)


def test_unreadable_secret_file_is_reported(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL + '[gateway]\nnode_id_file = "missing"\n')

    problems = keyed(problems_of(main))

    reason = problems[(str(main), "gateway.node_id_file")]
    assert "cannot read" in reason and str(tmp_path / "missing") in reason


def test_secret_files_empty_or_of_more_lines_are_refused(tmp_path: Path) -> None:
    """An empty token file sent ``Bearer `` (a 401: every message dead), one with an empty
    line at its end a token with a line break, which no request can carry; a Windows line
    end is a line end."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/token").write_bytes(b"s3cret\r\n")
    conf = write(tmp_path / "conf.d/50-secrets.toml",
                 '[partners.canton.sedex]\ntoken_file = "../secrets/token"\n')
    main = write(tmp_path / "gateway.toml", MINIMAL)
    settings = load_settings(main, env={})
    assert check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES) == []
    parsed = settings.partners["canton"].parsed
    assert isinstance(parsed, SedexOptions) and parsed.token.get_secret_value() == "s3cret"

    (tmp_path / "secrets/token").write_text("s3cret\n\n")  # an empty line at its end
    settings = load_settings(main, env={})
    assert check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES) == [
        (str(conf), "partners.canton.sedex.token_file",
         f"{tmp_path / 'secrets/token'} holds more than one line (an empty line at its end?):"
         " write the value alone on one line; only the line end after it is left out")]

    (tmp_path / "secrets/node").write_text("")
    main.write_text(MINIMAL + '[gateway]\nnode_id_file = "secrets/node"\n')
    assert keyed(problems_of(main))[(str(main), "gateway.node_id_file")] == (
        f"{tmp_path / 'secrets/node'} is empty: write the value into it")


def test_relative_paths_resolve_against_the_file_that_sets_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = write(tmp_path / "etc/gateway.toml", MINIMAL + '[store]\npath = "db/gw.db"\n')
    write(tmp_path / "etc/conf.d/10-x.toml", '[partners.canton.sedex]\noutbox = "../sedex/out"\n')
    monkeypatch.chdir(tmp_path)

    settings = load_settings(main, env={"ECH_GATEWAY_SOURCES__REGISTRY__PATH": "cwd-in"})
    assert check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES) == []

    assert settings.gateway.data_dir == tmp_path / "etc"
    assert settings.store.path == tmp_path / "etc/db/gw.db"
    sedex = settings.partners["canton"].parsed
    folder = settings.sources["registry"].parsed
    assert isinstance(sedex, SedexOptions) and isinstance(folder, FolderOptions)
    assert sedex.outbox == tmp_path.resolve() / "etc/sedex/out"  # shown without "conf.d/.."
    assert folder.path == tmp_path / "cwd-in"


def test_a_relative_path_out_of_a_linked_conf_d_is_where_the_link_leads(tmp_path: Path) -> None:
    """conf.d may be a symlink: "../x" in it is the x beside the link's target, as the file
    system opens it, not beside the link."""
    main = write(tmp_path / "etc/gateway.toml", MINIMAL)
    write(tmp_path / "shared/conf.d/10-x.toml", '[partners.canton.sedex]\noutbox = "../sedex/out"\n')
    (tmp_path / "etc/conf.d").symlink_to(tmp_path / "shared/conf.d")

    settings = load_settings(main, env={})
    assert check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES) == []
    sedex = settings.partners["canton"].parsed
    assert isinstance(sedex, SedexOptions)
    assert sedex.outbox == tmp_path.resolve() / "shared/sedex/out"


def test_settings_can_be_built_directly() -> None:
    settings = Settings(partners={"canton": PartnerSettings(transport="stub", options={"a": 1})})

    assert settings.partners["canton"].options == {"a": 1}
    assert settings.store.path == settings.gateway.data_dir / "gateway.db"
    assert settings.gateway.node_id


# ---------------------------------------------------------------------------
# durations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (0.5, 0.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1.5h", 5400.0),
        ("45", 45.0),
        (" 2 m ", 120.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 weeks", "", "m", -1, True, "1h30m"])
def test_parse_duration_rejects(value: str | float) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_durations_in_toml(tmp_path: Path) -> None:
    main = write(
        tmp_path / "gateway.toml",
        MINIMAL + '[dispatcher]\nlease = "2m"\nidle_poll = "250ms"\n[store]\nbusy_timeout = "5s"\n'
        '[retention]\nkeep = 0\nkeep_files = "0"\nwarn_free_below = 0\n'
        '[limits]\nmax_document_bytes = 1048576\nmax_zip_bytes = "512B"\n',
    )

    settings = load_settings(main, env={})

    assert (settings.dispatcher.lease, settings.dispatcher.idle_poll) == (120.0, 0.25)
    assert settings.store.busy_timeout == 5.0
    assert (settings.retention.keep, settings.retention.keep_files) == (0.0, 0.0)  # 0: forever
    assert settings.retention.warn_free_below == 0
    assert (settings.limits.max_document_bytes, settings.limits.max_zip_bytes) == (1 << 20, 512)


def test_a_duration_without_unit_is_refused_with_the_units_meant(tmp_path: Path) -> None:
    """``keep = 90`` would delete bodies after 90 seconds where 90 days were meant."""
    main = write(tmp_path / "gateway.toml", MINIMAL + "[retention]\nkeep = 90\n"
                 "[[rules]]\nname = \"late\"\nthen = { route_to = [\"canton\"], deadline = 30 }\n")
    env = {"ECH_GATEWAY_STORE__BUSY_TIMEOUT": "30", "ECH_GATEWAY_DISPATCHER__LEASE": "0.5"}

    problems = keyed(problems_of(main, env))

    assert problems == {
        (str(main), "retention.keep"): '90 has no unit and would be 90 seconds: did you mean'
        ' "90d" or "90s"? (durations take a unit: "500ms", "30s", "5m", "2h", "7d"; 0 needs none)',
        (str(main), "rules[1].then.deadline"): "rule 'late': 30 has no unit and would be 30"
        ' seconds: did you mean "30d" or "30s"? (durations take a unit: "500ms", "30s", "5m",'
        ' "2h", "7d"; 0 needs none)',  # said once: not also "give whole days"
        ("env ECH_GATEWAY_STORE__BUSY_TIMEOUT", "store.busy_timeout"): '30 has no unit and would'
        ' be 30 seconds: did you mean "30s" or "30m"? (durations take a unit: "500ms", "30s",'
        ' "5m", "2h", "7d"; 0 needs none)',
        ("env ECH_GATEWAY_DISPATCHER__LEASE", "dispatcher.lease"): '0.5 has no unit and would'
        ' be 0.5 seconds: did you mean "0.5m" or "0.5s"? (durations take a unit: "500ms",'
        ' "30s", "5m", "2h", "7d"; 0 needs none)',
    }


def test_a_size_of_a_few_bytes_without_unit_is_refused(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL + "[limits]\nmax_document_bytes = 10\n"
                 'max_zip_bytes = "200"\n')

    problems = keyed(problems_of(main))

    assert problems == {
        (str(main), "limits.max_document_bytes"): '10 has no unit and would be 10 bytes: did'
        ' you mean "10KiB" or "10MiB"? (a size below 1024 bytes takes a unit: "10B" if bytes'
        " are meant)",
        (str(main), "limits.max_zip_bytes"): '200 has no unit and would be 200 bytes: did you'
        ' mean "200KiB" or "200MiB"? (a size below 1024 bytes takes a unit: "200B" if bytes'
        " are meant)",
    }


def test_a_plugin_duration_without_unit_is_refused(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml",
                 MINIMAL.replace('path = "in"', 'path = "in"\nsettle = 2\ngrace = 0'))
    settings = load_settings(main, env={})

    problems = check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES)

    assert problems == [(str(main), "sources.registry.settle", '2 has no unit and would be 2'
                         ' seconds: did you mean "2s" or "2m"? (durations take a unit: "500ms",'
                         ' "30s", "5m", "2h", "7d"; 0 needs none)')]


# ---------------------------------------------------------------------------
# errors: every one, with file and key
# ---------------------------------------------------------------------------


def test_all_errors_are_reported_with_file_and_key(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL + '[gateway]\nlog_level = "LOUD"\n')
    conf = write(tmp_path / "conf.d/10-x.toml", '[partners.canton.retry]\nmax_attempts = "many"\n')
    env = {"ECH_GATEWAY_DISPATCHER__BATCH_SIZE": "abc"}

    with pytest.raises(ConfigError) as caught:
        load_settings(main, env=env)

    problems = keyed(caught.value.problems)
    assert len(caught.value.problems) == 3
    assert "'INFO'" in problems[(str(main), "gateway.log_level")]
    assert "integer" in problems[(str(conf), "partners.canton.retry.max_attempts")]
    env_var = "env ECH_GATEWAY_DISPATCHER__BATCH_SIZE"
    assert "integer" in problems[(env_var, "dispatcher.batch_size")]
    message = str(caught.value)
    assert f"{conf}: partners.canton.retry.max_attempts: " in message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL + '[gateway]\nlog_level = "LOUD"\n')
    broken = write(tmp_path / "conf.d/10-x.toml", "[store]\n# fine\npath = \n")

    problems = keyed(problems_of(main))

    assert "TOML syntax error" in problems[(str(broken), "line 3")]
    assert (str(main), "gateway.log_level") in problems  # the rest is still checked


def test_the_folder_init_wrote_given_as_config_names_its_file(tmp_path: Path) -> None:
    """``init DIR`` then ``--config DIR``: the reason says which file to give."""
    write_initial_config(tmp_path / "site")
    assert problems_of(tmp_path / "site") == [
        (str(tmp_path / "site"), "(file)",
         f"a folder, not a configuration file: give the file, {tmp_path / 'site' / 'gateway.toml'}")]
    (tmp_path / "empty").mkdir()
    assert problems_of(tmp_path / "empty") == [
        (str(tmp_path / "empty"), "(file)", "a folder, not a configuration file")]


def test_missing_files_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.toml"
    assert problems_of(missing) == [(str(missing), "(file)", "file not found")]

    monkeypatch.chdir(tmp_path)
    if Path("/etc/ech-gateway/gateway.toml").exists():
        pytest.skip("a system-wide configuration exists")
    [(file, key, reason)] = problems_of(None)
    assert (file, key) == (str(tmp_path / "gateway.toml"), "(file)")
    assert "ech-gateway init" in reason


def test_unknown_keys_names_and_partners(tmp_path: Path) -> None:
    main = write(
        tmp_path / "gateway.toml",
        MINIMAL
        + textwrap.dedent(
            """
            [gateway]
            log_levle = "DEBUG"

            [sources."Bad Name"]
            type = "folder"

            [partners.canton.sedx]
            outbox = "x"
            """
        ),
    )

    problems = keyed(problems_of(main, {"ECH_GATEWAY_STOER__PATH": "/x"}))

    assert problems[(str(main), "gateway.log_levle")] == "unknown key (did you mean 'log_level'?)"
    assert problems[(str(main), "sources.Bad Name")].startswith("invalid name")
    assert problems[(str(main), "partners.canton.sedx")] == (
        "unknown table (did you mean 'sedex'?)")
    assert problems[("env ECH_GATEWAY_STOER__PATH", "stoer.path")] == "not a configuration key"


def test_an_unknown_key_close_to_a_known_one_is_named_as_the_typo_it_is(tmp_path: Path) -> None:
    """In tables, named tables and rules alike; a key like none is only unknown."""
    main = write(tmp_path / "gateway.toml", MINIMAL + textwrap.dedent(
        """
        [gateway]
        frobnicate = 1
        [partners.canton.retry]
        max_attempt = 3
        [[rules]]
        name = "foreign"
        match = { nationalty = ["foreign"] }
        then = { route_to = ["canton"] }
        """))
    problems = keyed(problems_of(main))
    assert problems == {
        (str(main), "gateway.frobnicate"): "unknown key",
        (str(main), "partners.canton.retry.max_attempt"):
            "unknown key (did you mean 'max_attempts'?)",
        (str(main), "rules[1].match.nationalty"):
            "rule 'foreign': unknown key (did you mean 'nationality'?)"}


def test_an_unknown_table_close_to_a_known_one_is_named_as_the_typo_it_is(
        tmp_path: Path) -> None:
    """``[retension]`` was only "unknown table", its keys silently not set; a partner's table
    like none is said to be where transport options go."""
    main = write(tmp_path / "gateway.toml", MINIMAL + textwrap.dedent(
        """
        [retension]
        keep = "30d"
        [http.tsl]
        cert = "x.pem"
        [partners.canton.retyr]
        max_attempts = 3
        [partners.canton.ftp]
        outbox = "x"
        [frobnicate]
        a = 1
        """))
    assert keyed(problems_of(main)) == {
        (str(main), "retension"): "unknown table (did you mean 'retention'?)",
        (str(main), "http.tsl"): "unknown table (did you mean 'tls'?)",
        (str(main), "partners.canton.retyr"): "unknown table (did you mean 'retry'?)",
        (str(main), "partners.canton.ftp"):
            "unknown table; transport options go in [partners.canton.<transport>]",
        (str(main), "frobnicate"): "unknown table"}


def test_unknown_route_to_partner(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL + '[gateway]\nlog_format = "xml"\n')
    conf = write(tmp_path / "conf.d/10-x.toml", '[sources.registry]\nroute_to = ["kanton"]\n')

    problems = keyed(problems_of(main))

    reason = problems[(str(conf), "sources.registry.route_to")]
    assert "'kanton'" in reason and "canton" in reason.split(";")[1]
    assert (str(main), "gateway.log_format") in problems  # reported together


def test_rules_naming_unknown_partners_sources_fields_or_values_are_refused(
        tmp_path: Path) -> None:
    conf, problems = rule_problems(tmp_path, """
        [[rules]]
        name = "ok"
        match = { nationality = ["foreign"], fields = { source_event = "moveIn" }, permit = ["02"] }
        then = { route_to = ["canton"] }
        [[rules]]
        name = "typos"
        match = { source = ["registy"], fields = { sorce_event = "moveIn" } }
        then = { route_to = ["kanton"] }
        [[rules]]
        name = "values"
        match = { event = ["undoSeparation"], nationality = ["alien"] }
        then = { not_relevant = "x", business_key = "Verfuegung" }
        [[rules]]
        name = "both"
        then = { route_to = ["canton"], not_relevant = "x" }
        [[rules]]
        name = "codes"
        [rules.match]
        permit = ["0202", "9999"]
        canton = ["ZH", "zh"]
        event = ["changeOccupation"]
        permit_category = ["Z"]
        [rules.then]
        route_to = ["canton"]
        """)

    # numbered as the journal and `rules explain` number them, and named
    assert problems[(str(conf), "rules[2].then.route_to")].startswith(
        "rule 'typos': unknown partner 'kanton'")
    assert "unknown source 'registy'" in problems[(str(conf), "rules[2].match.source")]
    assert "did you mean 'source_event'" in problems[
        (str(conf), "rules[2].match.fields.sorce_event")]
    assert "undoSeperation" in problems[(str(conf), "rules[3].match.event")]  # the XSD spelling
    assert "foreign" in problems[(str(conf), "rules[3].match.nationality")]
    assert "Verfügung" in problems[(str(conf), "rules[3].then.business_key")]
    assert problems[(str(conf), "rules[4].then")].startswith("rule 'both': give either route_to")
    permit = problems[(str(conf), "rules[5].match.permit")]
    assert "rule 'codes'" in permit and "'9999'" in permit and "'0202'" not in permit
    assert "'zh' (did you mean 'ZH'?)" in problems[(str(conf), "rules[5].match.canton")]
    assert problems[(str(conf), "rules[5].match.permit_category")].endswith(", not 'Z'")
    occupation = problems[(str(conf), "rules[5].match.event")]
    assert "not in eCH-0223 1.5" in occupation and "source_event" in occupation
    assert not [key for _file, key in problems if key.startswith("rules[1]")]


def test_rules_matching_values_no_plugin_declares_are_refused(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL)
    conf = write(tmp_path / "conf.d/50-rules.toml", """
        [[rules]]
        name = "ok"
        match = { fields = { source_event = ["moveIn", "move"], format = "eCH-0020", row = 3 } }
        then = { route_to = ["canton"] }
        [[rules]]
        name = "typos"
        [rules.match.fields]
        source_event = ["moveIn", "moveout"]
        format = ["eCH-020", 20]
        mapping = "anything"
        [rules.then]
        route_to = ["canton"]
        """)
    events = ["moveIn", "moveOut", "move", *(f"event{n:02}" for n in range(20))]
    values = {"source_event": events, "format": ["eCH-0020", "eCH-0223"]}

    with pytest.raises(ConfigError) as caught:
        load_settings(main, env={}, fact_values=values)
    problems = caught.value.problems

    key = "rules[2].match.fields"
    assert [p for p in problems if p[1].startswith("rules[")] == [
        (str(conf), f"{key}.source_event", "rule 'typos': unknown source_event 'moveout' (did you"
         " mean 'moveOut'?); values rules see: event00, event01, event02, event03, event04,"
         " event05, event06, event07, event08, event09, event10, event11, ... (23 in all)"),
        (str(conf), f"{key}.format", "rule 'typos': unknown format 'eCH-020' (did you mean"
         " 'eCH-0020'?); values rules see: eCH-0020, eCH-0223"),
        (str(conf), f"{key}.format", "rule 'typos': format 20 is not a string; values rules see:"
         " eCH-0020, eCH-0223"),
    ]
    # without the plugins' declarations (a bare load_settings) the values are not checked
    assert len(load_settings(main, env={}).rules) == 2


def test_rules_with_one_name_or_an_empty_age_range_are_refused(tmp_path: Path) -> None:
    conf, problems = rule_problems(tmp_path, """
        [[rules]]
        name = "adults"
        match = { age_min = 18 }
        then = { route_to = ["canton"] }
        [[rules]]
        name = "adults"
        match = { age_min = 70, age_max = 18 }
        then = { not_relevant = "minors" }
        """)

    assert problems[(str(conf), "rules[2].name")].startswith(
        "rule 'adults': rules[1] has this name too")
    assert "age_min 70 is above age_max 18: no age matches" in problems[
        (str(conf), "rules[2].match")]
    assert not [key for _file, key in problems if key.startswith("rules[1]")]


def test_a_rule_value_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    """Which entry of a list is wrong: "a valid integer" alone left the operator guessing."""
    conf, problems = rule_problems(tmp_path, """
        [[rules]]
        name = "by-name"
        match = { municipality = [230, "Bern"], age_max = "17 years" }
        then = { route_to = ["canton"] }
        """)

    assert problems[(str(conf), "rules[1].match.municipality")].endswith(", not 'Bern'")
    assert problems[(str(conf), "rules[1].match.age_max")].endswith(", not '17 years'")


def test_a_deadline_of_part_of_a_day_is_refused(tmp_path: Path) -> None:
    """The deadline is a date: "12h" landed on the message's own date without a word."""
    conf, problems = rule_problems(tmp_path, """
        [[rules]]
        name = "soon"
        then = { route_to = ["canton"], deadline = "12h" }
        [[rules]]
        name = "month"
        then = { route_to = ["canton"], deadline = "30d" }
        """)

    assert problems[(str(conf), "rules[1].then.deadline")] == (
        """rule 'soon': the deadline is a date: give whole days ("30d"), not 0.5 days""")
    assert not [key for _file, key in problems if key.startswith("rules[2]")]


def test_a_rule_comment_xml_cannot_carry_is_refused(tmp_path: Path) -> None:
    """A form feed pasted from a letter passed, then crashed rules explain with a traceback."""
    conf, problems = rule_problems(tmp_path, """
        [[rules]]
        name = "pasted"
        then = { route_to = ["canton"], business_comment = "Seite 1\\u000cSeite 2" }
        """)

    assert problems[(str(conf), "rules[1].then.business_comment")] == (
        "rule 'pasted': contains the control character U+000C, which XML cannot carry")


def test_cross_section_checks(tmp_path: Path) -> None:
    write(tmp_path / "blocker", "a file, not a directory")
    main = write(
        tmp_path / "gateway.toml",
        MINIMAL
        + '[store]\npath = "blocker/gw.db"\n[validation]\nschemas = "official"\n'
        + "[partners.canton.retry]\ninitial = '1h'\nmaximum = '1m'\n",
    )

    problems = keyed(problems_of(main))

    assert "not a directory" in problems[(str(main), "store.path")]
    assert "required" in problems[(str(main), "validation.official_catalog")]
    assert "initial" in problems[(str(main), "partners.canton.retry.maximum")]


# ---------------------------------------------------------------------------
# plugin options
# ---------------------------------------------------------------------------


def test_plugin_option_errors_name_file_and_key(tmp_path: Path) -> None:
    main = write(
        tmp_path / "gateway.toml",
        MINIMAL + '[sources.upload]\ntype = "ftp"\n[sources.drop]\ntype = "folder"\npatern = "*"\n',
    )
    conf = write(tmp_path / "conf.d/10-x.toml", '[partners.canton.sedex]\nmessage_type = "x"\n')
    settings = load_settings(main, env={})

    problems = keyed(check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES))

    unknown = "unknown source type 'ftp'; known: folder"
    assert problems[(str(main), "sources.upload.type")] == unknown
    assert problems[(str(main), "sources.drop.patern")] == (
        "unknown key 'patern' for the source type 'folder'; did you mean 'pattern' or 'path'?")
    assert problems[(str(main), "sources.drop.path")] == "required key is missing"
    assert "integer" in problems[(str(conf), "partners.canton.sedex.message_type")]
    assert len(problems) == 4
    assert settings.sources["registry"].parsed is not None
    assert settings.sources["drop"].parsed is None
    assert settings.partners["canton"].parsed is None


class LaxOptions(BaseModel):
    """An options model written without any ``model_config``: pydantic would ignore extras."""

    class Retry(BaseModel):
        tries: int = 3

    url: str
    retry: Retry = Retry()
    hosts: dict[str, Retry] = {}


class OpenOptions(BaseModel):
    """An options model that asks for other keys explicitly."""

    model_config = ConfigDict(extra="allow")
    url: str


def _lax(plugin: str = "acme") -> dict[str, TransportType]:
    return {"webhook": TransportType("webhook", LaxOptions, _never, plugin=plugin)}


def test_plugin_model_without_config_still_refuses_unknown_keys(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", """
        [partners.canton]
        transport = "webhook"
        [partners.canton.webhook]
        ulr = "https://x"
        url = "https://x"
        [partners.canton.webhook.retry]
        tires = 5
        [partners.canton.webhook.hosts.a]
        colour = "blue"
        """)
    settings = load_settings(main, env={})

    problems = keyed(check_plugin_options(settings, SOURCE_TYPES, _lax()))

    owner = "for the transport 'webhook' (plugin 'acme')"
    assert problems == {
        (str(main), "partners.canton.webhook.ulr"): f"unknown key 'ulr' {owner}; did you mean 'url'?",
        (str(main), "partners.canton.webhook.retry.tires"):
            f"unknown key 'tires' {owner}; did you mean 'tries'?",
        (str(main), "partners.canton.webhook.hosts.a.colour"):
            f"unknown key 'colour' {owner}; it takes tries",
    }
    assert settings.partners["canton"].parsed is None


def test_unknown_key_is_reported_once_when_the_model_forbids_it_too(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL.replace('token = "t"', 'token = "t"\ntokn = "x"'))
    settings = load_settings(main, env={})

    problems = check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES)

    assert problems == [(str(main), "partners.canton.sedex.tokn",
                         "unknown key 'tokn' for the transport 'sedex'; did you mean 'token'?")]


def test_plugin_model_may_opt_in_to_other_keys(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml",
                 "[partners.canton]\ntransport = 'webhook'\n"
                 "[partners.canton.webhook]\nurl = 'https://x'\nheader_x = 'y'\n")
    settings = load_settings(main, env={})
    open_types = {"webhook": TransportType("webhook", OpenOptions, _never)}

    assert check_plugin_options(settings, SOURCE_TYPES, open_types) == []
    parsed = settings.partners["canton"].parsed
    assert isinstance(parsed, OpenOptions) and parsed.model_extra == {"header_x": "y"}


def test_unknown_transport_names_the_known_ones(tmp_path: Path) -> None:
    main = write(
        tmp_path / "gateway.toml", "[partners.canton]\ntransport = 'x'\n[partners.canton.x]\n"
    )
    settings = load_settings(main, env={})

    problems = check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES)

    reason = "unknown transport 'x'; known: sedex"
    assert problems == [(str(main), "partners.canton.transport", reason)]


# ---------------------------------------------------------------------------
# reference page
# ---------------------------------------------------------------------------


def test_reference_page_is_up_to_date() -> None:
    committed = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    assert committed == render_reference(), (
        "docs/configuration.md is out of date; regenerate it with "
        "`python -m gateway.config.reference > docs/configuration.md`"
    )


def test_example_configuration_is_what_init_writes(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "config"
    written = write_initial_config(tmp_path / "site")
    assert (example / "gateway.toml").read_text() == written.read_text(), (
        "config/gateway.toml is out of date: copy what `ech-gateway init` writes")


def test_site_override_example_loads(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "config" / "conf.d" / "20-site.toml.example"
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "20-site.toml").write_text(
        example.read_text().replace("/var/lib/ech-gateway", str(tmp_path)))
    settings = load_settings(config, env={})
    assert settings.gateway.node_id == "gw-commune-1"
    assert settings.partners["canton"].options["sender_id"] == "3-1234-1"


def test_a_value_in_other_case_is_suggested_as_it_is_spelled(tmp_path: Path) -> None:
    main = write(tmp_path / "gateway.toml", MINIMAL)
    write(tmp_path / "conf.d/50-rules.toml", """
        [[rules]]
        name = "shouting"
        match = { fields = { source_event = "MOVEIN" } }
        then = { route_to = ["canton"] }
        """)
    values = {"source_event": ["moveIn", "moveOut", "move"]}

    with pytest.raises(ConfigError) as caught:
        load_settings(main, env={}, fact_values=values)

    [(_file, key, reason)] = [p for p in caught.value.problems if p[1].startswith("rules[")]
    assert key == "rules[1].match.fields.source_event"
    assert reason.startswith("rule 'shouting': unknown source_event 'MOVEIN' (did you mean 'moveIn'?)")
