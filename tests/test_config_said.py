"""What the configuration's checks say to the operator: ports, typos, participant IDs,
document patterns and files in conf.d that are not read. Real files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.assembly import load_config
from gateway.cli import main
from gateway.config import check_plugin_options, load_settings, write_initial_config
from gateway.document_picking import pattern_problem
from gateway.errors import ConfigError
from gateway.plugins import get_plugin_manager
from tests.test_config import (
    MINIMAL,
    SOURCE_TYPES,
    TRANSPORT_TYPES,
    keyed,
    problems_of,
    write,
)


def test_listen_takes_a_port_written_as_a_number(tmp_path: Path) -> None:
    """``listen = 8443`` (a TOML number) is the port, as the reference says "PORT" is."""
    main_file = write(tmp_path / "gateway.toml", MINIMAL + "[http]\nlisten = 8443\n")
    assert load_settings(main_file, env={}).http.address == ("127.0.0.1", 8443)
    write(tmp_path / "gateway.toml", MINIMAL + "[http]\nlisten = true\n")
    [(_file, key, _reason)] = problems_of(main_file)
    assert key == "http.listen"


def test_a_misspelt_transport_table_or_transport_is_named_as_the_typo_it_is(
        tmp_path: Path) -> None:
    main_file = write(tmp_path / "gateway.toml", MINIMAL.replace(
        "[partners.canton.sedex]", "[partners.canton.sedx]"))
    assert keyed(problems_of(main_file)) == {
        (str(main_file), "partners.canton.sedx"): "unknown table (did you mean 'sedex'?)"}
    write(tmp_path / "gateway.toml", MINIMAL.replace('transport = "sedex"', 'transport = "sedx"'))
    with pytest.raises(ConfigError) as caught:
        load_settings(main_file, env={}, source_types=SOURCE_TYPES,
                      transport_types=TRANSPORT_TYPES)
    assert keyed(caught.value.problems)[(str(main_file), "partners.canton.transport")] == (
        "unknown transport 'sedx' (did you mean 'sedex'?); known: sedex")


def test_a_misspelt_file_key_is_named_as_the_file_key_it_is(tmp_path: Path) -> None:
    """``tokenfile`` meant ``token_file``, not ``token``."""
    main_file = write(tmp_path / "gateway.toml", MINIMAL.replace(
        'token = "t"', 'tokenfile = "token.txt"'))
    settings = load_settings(main_file, env={})
    problems = keyed(check_plugin_options(settings, SOURCE_TYPES, TRANSPORT_TYPES))
    reason = problems[(str(main_file), "partners.canton.sedex.tokenfile")]
    assert reason.startswith("unknown key 'tokenfile' for the transport 'sedex'; did you mean"
                             " 'token_file'"), reason


def _sedex_problems(tmp_path: Path, **ids: str) -> dict[str, str]:
    """``key -> reason`` of what the real plugins find in ``init``'s configuration with the
    sedex ``ids`` given."""
    config = write_initial_config(tmp_path)
    text = config.read_text()
    for key, value in ids.items():
        text = text.replace(f'{key} = "{"T1-2511-1" if key == "sender_id" else "T2-2-1"}"',
                            f'{key} = "{value}"')
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(config, get_plugin_manager())
    return {key: reason for _file, key, reason in caught.value.problems}


def test_a_participant_id_in_the_wrong_form_is_refused_with_examples(tmp_path: Path) -> None:
    """An example of the form, not the regular expression it is checked with."""
    reason = _sedex_problems(tmp_path, recipient_id="canton")["partners.canton.sedex.recipient_id"]
    assert reason.startswith("'canton' is not a sedex participant ID: ")
    assert "'3-123-1'" in reason and "'T2-2-1'" in reason
    assert "[" not in reason and "?" not in reason


def test_a_recipient_id_that_is_our_own_sender_id_is_refused(tmp_path: Path) -> None:
    problems = _sedex_problems(tmp_path, recipient_id="T1-2511-1")
    reason = problems.pop("partners.canton.sedex.recipient_id")
    assert problems == {}
    assert "'T1-2511-1' is sender_id too" in reason and "recipient_id" in reason


@pytest.mark.parametrize(("pattern", "said"), [
    ("/{vn}/*.pdf", "no leading /"),
    ("{vn}\\*.pdf", "folders are separated by /, not \\"),
    ("{vn}/../*.pdf", "no .."),
])
def test_a_pattern_outside_the_documents_folder_is_refused_saying_why(pattern: str,
                                                                      said: str) -> None:
    """``{vn}/*.pdf`` has a /: the problem is a leading one, and says so."""
    found = pattern_problem(pattern) or ""
    assert said in found, found
    assert "(no /," not in found


def test_check_config_warns_of_files_in_conf_d_it_does_not_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    conf_d = tmp_path / "conf.d"
    for name in ("20-canton.conf", "30-x.toml.bak", "40-y.toml~"):
        write(conf_d / name, "[gateway]\nlog_level = \"DEBUG\"\n")
    write(conf_d / "50-read.toml", "[gateway]\nlog_level = \"INFO\"\n")
    (conf_d / "old").mkdir()
    capsys.readouterr()
    assert main(["check-config", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"{conf_d / name}: (file): warning: not read, only files in conf.d"
                         " whose name ends in .toml are (rename it so to use it)"
                         for name in ("20-canton.conf", "30-x.toml.bak", "40-y.toml~")]
    assert lines[3].startswith("configuration is valid (") and "50-read.toml" in lines[3]
    assert len(lines) == 4
