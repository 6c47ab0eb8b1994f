"""Broken or clashing third-party plugins are named clearly, and never break the built-ins' tests.

Each plugin here is installed the way pip leaves one: a module and a
``*.dist-info`` folder with its ``entry_points.txt``, on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.contracts import NormaliseContext, RawInput
from gateway.errors import PluginError
from gateway.plugins import LOAD_ENV, fact_values, get_plugin_manager, transport_types

BUILT_IN = os.environ[LOAD_ENV]  # set by conftest: the gateway's own plugins


def install(site: Path, dist: str, entry: str, module: str, code: str) -> None:
    """Install distribution ``dist`` into ``site``: ``module``.py and an ``entry`` entry point."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ech_gateway]\n{entry} = {module}\n")


def failure(site: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> str:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(LOAD_ENV, ",".join([BUILT_IN, *names]))
    with pytest.raises(PluginError) as caught:
        transport_types(get_plugin_manager())
    return str(caught.value)


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                ) -> None:
    install(tmp_path, "acme-broken", "acme", "acme_broken_mod", "import not_installed_anywhere\n")
    assert failure(tmp_path, monkeypatch, "acme") == (
        "plugin 'acme' (acme_broken_mod from acme-broken 0.1) fails to load: ModuleNotFoundError:"
        " No module named 'not_installed_anywhere'")


def test_a_hook_with_a_wrong_argument_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               ) -> None:
    install(tmp_path, "acme-args", "acme", "acme_args_mod", """
        from gateway.api import hookimpl

        @hookimpl
        def gateway_decide(message, raw, config):
            return None
        """)
    reason = failure(tmp_path, monkeypatch, "acme")
    assert reason.startswith("plugin 'acme' (acme_args_mod from acme-args 0.1) cannot be used:")
    assert "'config'" in reason and "\n" not in reason


def test_a_hook_the_gateway_does_not_have_is_named(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, "acme-typo", "acme", "acme_typo_mod", """
        from gateway.api import hookimpl

        @hookimpl
        def gateway_transport_type():
            return []
        """)
    reason = failure(tmp_path, monkeypatch, "acme")
    assert reason.startswith("plugin 'acme' (acme_typo_mod from acme-typo 0.1) cannot be used:")
    assert "unknown hook 'gateway_transport_type'" in reason


def test_two_plugins_with_one_name_clash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, "acme-sedex", "sedex", "acme_sedex_mod", "")
    reason = failure(tmp_path, monkeypatch)
    assert reason.startswith("two plugins are named 'sedex': acme_sedex_mod from acme-sedex 0.1 and"
                             " plugins.sedex from ech-gateway ")
    assert reason.endswith("; uninstall one of them")


def test_two_plugins_declaring_one_transport_clash(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, "acme-dup", "acme", "acme_dup_mod", """
        from gateway.api import PluginOptions, TransportType, hookimpl

        @hookimpl
        def gateway_transport_types():
            return [TransportType("sedex", PluginOptions, None)]
        """)
    reason = failure(tmp_path, monkeypatch, "acme")
    assert reason == "plugins 'acme' and 'sedex' both declare the transport 'sedex'; uninstall one"


def test_fact_values_are_what_every_plugin_declares_and_must_be_strings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declares = """
        from gateway.api import hookimpl

        @hookimpl
        def gateway_fact_values():
            return {{"format": ["nova-xml"], "vendor_event": {}}}
        """
    install(tmp_path, "acmefacts", "acme", "acme_facts_mod", declares.format('["zuzug"]'))
    install(tmp_path, "acmestr", "acme_str", "acme_str_mod", declares.format('"zuzug"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(LOAD_ENV, "ech0020,ech0223,acme")
    values = fact_values(get_plugin_manager())
    assert values["format"] == {"eCH-0020", "eCH-0223", "nova-xml"}
    assert values["vendor_event"] == {"zuzug"}
    assert "changeOccupation" in values["source_event"] and "conversionBtoC" in values["person_event"]
    monkeypatch.setenv(LOAD_ENV, "ech0020,acme_str")
    with pytest.raises(PluginError) as caught:
        fact_values(get_plugin_manager())
    assert str(caught.value) == ("plugin 'acme_str' declares the values of fact 'vendor_event' as"
                                 " 'zuzug': give a collection of strings")


def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    install(tmp_path, "acme-broken", "acme", "acme_cli_mod", "raise RuntimeError('licence expired')\n")
    env = {k: v for k, v in os.environ.items() if k != LOAD_ENV}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "gateway", "plugins"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == ("ech-gateway: plugin 'acme' (acme_cli_mod from acme-broken 0.1) fails to"
                           " load: RuntimeError: licence expired\n")


def test_a_broken_third_party_plugin_leaves_the_gateways_own_tests_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, "acme-broken", "acme", "acme_ignored_mod", "raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager()  # with the conftest's ECH_GATEWAY_LOAD_PLUGINS
    assert sorted(name for name, _ in pm.list_name_plugin()) == BUILT_IN.split(",")
    assert "acme_ignored_mod" not in sys.modules


def test_a_vendors_normaliser_is_asked_before_the_ech0223_one_whatever_the_install_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Installed first on sys.path, the vendor's plugin is registered before the built-ins;
    # the eCH-0223 normaliser refuses whatever is no XML, so it must be asked last.
    install(tmp_path, "acme-json", "acme", "acme_json_mod", """
        import json

        from gateway.api import Normalised, hookimpl

        @hookimpl
        def gateway_normalise(raw, context):
            if raw.meta.get("content_type") != "application/vnd.acme+json":
                return None
            event = json.loads(raw.data)
            return Normalised(kind="personEventMessage", message_id=event["id"], xml=b"",
                              tree=None, not_relevant="an ACME event without counterpart")
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(LOAD_ENV, ",".join([BUILT_IN, "acme"]))
    pm = get_plugin_manager()
    raw = RawInput("acme", "event 1", b'{"id": "acme-1"}', {"content_type": "application/vnd.acme+json"})
    context = NormaliseContext(max_bytes=1 << 20, max_zip_entries=10, max_zip_bytes=1 << 20,
                               max_zip_ratio=10)
    normalised = pm.hook.gateway_normalise(raw=raw, context=context)
    assert (normalised.message_id, normalised.not_relevant) == (
        "acme-1", "an ACME event without counterpart")
