"""Every hook in ``gateway/hookspecs.py`` is documented, implemented and exercised.

Three checks per hook (a hook is a function of :mod:`gateway.hookspecs`
whose name starts with ``gateway_``):

* **documented**: a docstring with ``:param <name>:`` for each parameter,
  ``:return:`` when it returns something, and an ``Example::`` block that
  defines the hook with the spec's own parameter names; firstresult hooks
  say that the first result wins;
* **implemented** by at least one built-in plugin (an ``ech_gateway`` entry
  point from ``plugins/``);
* **exercised**: this module holds a test named ``test_hook_<hook>`` (the
  datasette habit), and that test proves, through the hook-call monitor of
  ``tests/conftest.py``, that the product itself called the hook while the
  test drove a real code path (the CLI, or a running gateway) — naming the
  hook in a test is not enough.

A new hook without a docstring, without an example, or without its
``test_hook_`` test makes this module fail.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stdout
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import aiohttp
import pluggy
import pytest
from aiohttp import web
from lxml import etree

from gateway import hookspecs
from gateway.cli import main
from gateway.config import write_initial_config
from gateway.contracts import Attachment, Decision, NormaliseContext, Normalised, RawInput
from gateway.ech0223 import Country, CountryInfo, NationalityData, PersonIdentificationLight
from gateway.errors import InputRejected
from gateway.hookspecs import hookimpl
from gateway.person_state import PersonState
from gateway.plugin_types import GatewayEvent, HttpRoute
from tests.flow import StubTransport, drop, message, plugin_manager, running, states, until, write_config

HOOKS: dict[str, Callable[..., Any]] = {
    name: fn for name, fn in vars(hookspecs).items()
    if name.startswith("gateway_") and inspect.isfunction(fn)
}
#: Hooks no built-in plugin implements yet; each entry must name why (strict xfail).
NOT_BUILT_IN: dict[str, str] = {
    "gateway_documents": "scans from a registry's document store come from a vendor's registry"
                         " plugin; the built-in way is [[rules]] then.documents (a folder)",
    "gateway_http_routes": "the built-in http source serves its route through its context;"
                           " the hook is for a plugin's own endpoints (a registry's callbacks)",
}


def test_the_hook_list_is_not_empty() -> None:
    assert {"gateway_source_types", "gateway_transport_types", "gateway_normalise",
            "gateway_decide", "gateway_commands",
            "gateway_event"} <= set(HOOKS)


# ---------------------------------------------------------------------------
# documented
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_a_spec_and_typed(name: str) -> None:
    fn = HOOKS[name]
    assert hasattr(fn, f"{hookspecs.PROJECT}_spec"), f"{name} is not decorated with @hookspec"
    sig = inspect.signature(fn)
    untyped = [p for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: untyped parameters {untyped}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented(name: str) -> None:
    fn = HOOKS[name]
    doc = inspect.getdoc(fn)
    assert doc, f"{name} has no docstring"
    sig = inspect.signature(fn)
    for param in sig.parameters:
        assert f":param {param}:" in doc, f"{name}: no ':param {param}:'"
    if sig.return_annotation not in ("None", None):
        assert ":return:" in doc, f"{name} returns {sig.return_annotation} but has no ':return:'"
    assert "Example::" in doc, f"{name}: no 'Example::' block"
    example = doc.split("Example::", 1)[1]
    assert "@hookimpl" in example, f"{name}: the example does not show @hookimpl"
    defined = re.search(rf"def {name}\(([^)]*)\)", example)
    assert defined, f"{name}: the example does not define {name}()"
    example_params = [p.strip() for p in defined[1].split(",") if p.strip()]
    assert example_params == list(sig.parameters), f"{name}: the example's parameters differ"
    if getattr(fn, f"{hookspecs.PROJECT}_spec").get("firstresult"):
        assert "first" in doc.lower(), f"{name} is firstresult but its docstring does not say so"


# ---------------------------------------------------------------------------
# implemented by a built-in plugin
# ---------------------------------------------------------------------------


def _built_in_implementers(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    monkeypatch.delenv("ECH_GATEWAY_LOAD_PLUGINS", raising=False)
    from gateway.plugins import get_plugin_manager

    pm = get_plugin_manager()
    built_in = {ep.name for ep in entry_points(group=hookspecs.PROJECT)
                if ep.value.split(".")[0] == "plugins"}
    return {name: {impl.plugin_name for impl in getattr(pm.hook, name).get_hookimpls()} & built_in
            for name in HOOKS}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=NOT_BUILT_IN[n], strict=True))
    if n in NOT_BUILT_IN else n
    for n in sorted(HOOKS)
])
def test_hook_has_a_built_in_implementation(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _built_in_implementers(monkeypatch)[name], f"no built-in plugin implements {name}"


def test_built_in_plugins_are_the_ones_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    implementers = _built_in_implementers(monkeypatch)
    assert set().union(*implementers.values()) == {"alerts", "ech0020", "ech0223", "folder",
                                                   "http_push", "mapping", "registry_rest", "rest", "rules",
                                                   "sedex", "soap"}


# ---------------------------------------------------------------------------
# exercised: one test_hook_<name> per hook, each driving a real code path
# ---------------------------------------------------------------------------


def test_every_hook_has_its_test() -> None:
    missing = [name for name in HOOKS if f"test_hook_{name}" not in globals()]
    assert not missing, f"hooks without a test_hook_<name> test in {__name__}: {missing}"


def _in_process(directory: Path) -> None:
    """Normalise and route in this process (``workers = 0``), where the test's plugins live."""
    (directory / "conf.d").mkdir(exist_ok=True)
    (directory / "conf.d" / "10-in-process.toml").write_text("[gateway]\nworkers = 0\n")


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_hook_gateway_source_types(tmp_path: Path, hook_calls: list[str]) -> None:
    """check-config validates ``[sources.registry]`` with the folder type's options model."""
    config = write_initial_config(tmp_path)
    assert _cli("--config", str(config), "check-config")[0] == 0
    assert "gateway_source_types" in hook_calls
    (tmp_path / "conf.d" / "10-x.toml").write_text('[sources.registry]\ncolour = "blue"\n')
    code, out = _cli("--config", str(config), "check-config")
    assert code == 2
    assert "sources.registry.colour: unknown key" in out


def test_hook_gateway_transport_types(tmp_path: Path, hook_calls: list[str]) -> None:
    """check-config validates ``[partners.canton.sedex]`` with the sedex type's options model."""
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-x.toml").write_text('[partners.canton.sedex]\ncolour = "blue"\n')
    code, out = _cli("--config", str(config), "check-config")
    assert code == 2
    assert "partners.canton.sedex.colour: unknown key" in out
    assert "gateway_transport_types" in hook_calls


def test_hook_gateway_check_config(tmp_path: Path, hook_calls: list[str]) -> None:
    """check-config lists the problems of a mapping file a source names, with file and key."""
    config = write_initial_config(tmp_path)
    mapping = tmp_path / "nova.toml"
    mapping.write_text('name = "Nova"\nformat = "xlsx"\n')
    (tmp_path / "conf.d" / "10-x.toml").write_text(
        f'[sources.registry]\nmapping = "{mapping}"\n')
    code, out = _cli("--config", str(config), "check-config")
    assert code == 2
    assert f"{mapping}: format: Input should be 'csv' or 'json' (mapping of sources.registry)" in out
    assert "gateway_check_config" in hook_calls


def test_hook_gateway_fact_values(tmp_path: Path, hook_calls: list[str]) -> None:
    """check-config refuses a rule matching a ``source_event`` the ech0020 plugin never sets."""
    config = write_initial_config(tmp_path)
    rules = tmp_path / "conf.d" / "50-rules.toml"
    rule = ('[[rules]]\nname = "jobs"\nmatch = {{ fields = {{ source_event = "{}" }} }}\n'
            'then = {{ route_to = ["canton"] }}\n')
    rules.write_text(rule.format("changeOccupation"))
    assert _cli("--config", str(config), "check-config")[0] == 0
    assert "gateway_fact_values" in hook_calls
    rules.write_text(rule.format("changeOccupaton"))
    code, out = _cli("--config", str(config), "check-config")
    assert code == 2
    assert out.startswith(f"{rules}: rules[1].match.fields.source_event: rule 'jobs': unknown"
                          " source_event 'changeOccupaton' (did you mean 'changeOccupation'?);"
                          " values rules see: adoption, birth, ")
    assert len(out.splitlines()) == 1


def test_hook_gateway_commands(hook_calls: list[str]) -> None:
    """A plugin's command (``sedex-sim``) is a sub-command of the CLI."""
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(["sedex-sim", "--help"])
    assert exit_.value.code == 0
    assert "sedex-sim" in out.getvalue()
    assert "gateway_commands" in hook_calls


class _MarkerNormaliser:
    """A vendor normaliser: ``MSG <id>`` lines become an eCH-0223 message."""

    taken: list[str]

    def __init__(self) -> None:
        self.taken = []

    @hookimpl
    def gateway_normalise(self, raw: RawInput, context: NormaliseContext) -> Normalised | None:
        if not raw.data.startswith(b"MSG "):
            return None
        message_id = raw.data[4:].decode().strip()
        xml = message(message_id)
        self.taken.append(raw.ref)
        return Normalised("personEventMessage", message_id, xml,
                          etree.ElementTree(etree.fromstring(xml)))


async def test_hook_gateway_normalise(tmp_path: Path, hook_calls: list[str]) -> None:
    """The first normaliser that answers wins; the others still see what it declines."""
    config = write_config(tmp_path)
    _in_process(tmp_path)
    pm = plugin_manager()
    vendor = _MarkerNormaliser()
    pm.register(vendor, name="vendor")
    db = tmp_path / "gateway.db"
    async with running(config, pm):
        drop(tmp_path / "in", "a.xml", b"MSG vendor-1\n")
        drop(tmp_path / "in", "b.xml", message("plain-1"))
        await until(lambda: len(states(db, "SELECT id FROM deliveries WHERE state = 'delivered'"))
                    == 2)
    assert vendor.taken == ["a.xml"]
    assert sorted(i.message_id or "" for i in StubTransport.sent["canton"]) == ["plain-1", "vendor-1"]
    [(canonical,)] = states(db, "SELECT canonical FROM payloads JOIN messages ON id = message"
                                   " WHERE ref = 'a.xml'")
    assert bytes(canonical) == message("vendor-1")  # the canonical form is what was delivered
    assert "gateway_normalise" in hook_calls


class _VipRouter:
    """A code rule: messages whose id starts with ``vip-`` go to the canton."""

    @hookimpl
    def gateway_decide(self, message: Normalised, raw: RawInput, facts: Mapping[str, Any],
                       settings: Any) -> Decision | None:
        if (message.message_id or "").startswith("vip-"):
            return Decision("vip", "VIP rule", partners=("canton",))
        return None


async def test_hook_gateway_decide(tmp_path: Path, hook_calls: list[str]) -> None:
    """A code rule decides; no decision at all means not relevant."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('route_to = ["canton"]', "route_to = []"))
    _in_process(tmp_path)
    pm = plugin_manager()
    pm.register(_VipRouter(), name="vip")
    db = tmp_path / "gateway.db"
    async with running(config, pm):
        drop(tmp_path / "in", "a.xml", message("vip-1"))
        drop(tmp_path / "in", "b.xml", message("plain-1"))
        # (a message not normalised yet has no message_id: sort by text, None included)
        await until(lambda: sorted(states(db, "SELECT message_id, state FROM messages"),
                                   key=repr) == [
            ("plain-1", "not_relevant"), ("vip-1", "routed")])
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
    journal = states(db, "SELECT detail FROM journal WHERE event = 'delivery.queued'")
    assert [json.loads(d)["reason"] for (d,) in journal] == ["VIP rule"]
    assert "gateway_decide" in hook_calls


class _Registry:
    """A registry plugin whose look-up is a coroutine: it knows one person, a German national."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    @hookimpl
    def gateway_person_lookup(self, keys: Sequence[str], settings: Any) -> Any:
        self.asked.append(list(keys))

        async def fetch() -> PersonState | None:
            if "vn:7561234567897" not in keys:
                return None
            germany = Country(country_id=8207, country_id_iso2="DE", country_name_short="Deutschland")
            return PersonState(
                identification=PersonIdentificationLight(
                    vn=7561234567897, official_name="Muster", first_name="Anna"),
                nationality_data=NationalityData(
                    nationality_status="2", country_info=[CountryInfo(country=germany)]))

        return fetch()


def _with_vn(message_id: str, vn: str) -> bytes:
    return message(message_id).replace(
        b"<eCH-0044:officialName>", f"<eCH-0044:vn>{vn}</eCH-0044:vn><eCH-0044:officialName>".encode(),
        1)


async def test_hook_gateway_person_lookup(tmp_path: Path, hook_calls: list[str]) -> None:
    """A person the gateway has no state for is looked up once; the rules see the answer."""
    config = write_config(tmp_path, extra=(
        '[[rules]]\nname = "foreign"\nmatch = { nationality = ["foreign"] }\n'
        'then = { route_to = ["canton"] }\n'
        '[[rules]]\nname = "rest"\nthen = { not_relevant = "not foreign before the event" }\n'))
    config.write_text(config.read_text().replace('route_to = ["canton"]\n[partners', "[partners"))
    _in_process(tmp_path)
    pm = plugin_manager()
    registry = _Registry()
    pm.register(registry, name="registry-lookup")
    db = tmp_path / "gateway.db"
    async with running(config, pm):
        drop(tmp_path / "in", "a.xml", _with_vn("known-1", "7561234567897"))
        await until(lambda: states(db, "SELECT state FROM messages") == [("routed",)])
        drop(tmp_path / "in", "b.xml", _with_vn("known-2", "7561234567897"))
        drop(tmp_path / "in", "c.xml", message("nobody-1"))
        await until(lambda: sorted(states(db, "SELECT message_id, state FROM messages"),
                                   key=repr) == [("known-1", "routed"), ("known-2", "routed"),
                                                 ("nobody-1", "not_relevant")])
    assert registry.asked == [["vn:7561234567897"]]  # the second message found the stored state
    # one person holds the VN: created from the look-up, then updated by what known-1 states
    [(pid,)] = states(db, "SELECT person FROM person_keys WHERE key = 'vn:7561234567897'")
    assert states(db, "SELECT m.message_id FROM person_messages pm JOIN messages m"
                      " ON m.id = pm.message WHERE pm.person = ? ORDER BY m.id", (pid,)) == [
        ("known-1",), ("known-2",)]
    created = [json.loads(d) for (d,) in states(
        db, "SELECT detail FROM journal WHERE event = 'person.created' ORDER BY seq")]
    assert created[0] == {"person": pid}
    rules = [json.loads(d)["rule"] for (d,) in
             states(db, "SELECT detail FROM journal WHERE event = 'message.decided' ORDER BY seq")]
    assert rules == ["rules[1] foreign", "rules[1] foreign", "rules[2] rest"]
    assert "gateway_person_lookup" in hook_calls


#: A registry (the way back's destination) and a source bringing the canton's messages.
WAY_BACK = ('[partners.registry]\ntransport = "folder"\nrole = "registry"\n'
            '[partners.registry.folder]\npath = "registry-inbox"\n'
            '[sources.from-canton]\ntype = "folder"\npath = "from-canton"\npartner = "canton"\n'
            'poll_interval = "50ms"\nsettle = "50ms"\n')


class _Residents:
    """A registry plugin that searches residents: two Anna Muster, one Berta Beispiel."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @staticmethod
    def _person(vn: int, first: str) -> PersonState:
        return PersonState(identification=PersonIdentificationLight(
            vn=vn, official_name="Muster" if first == "Anna" else "Beispiel", first_name=first))

    @hookimpl
    def gateway_person_resolve(self, identification: PersonIdentificationLight,
                               settings: Any) -> Any:
        self.asked.append(identification.first_name)

        async def search() -> list[PersonState]:
            if identification.first_name == "Anna":
                return [self._person(7561234567897, "Anna"), self._person(7569876543214, "Anna")]
            return [self._person(7565555555553, "Berta")]

        return search()


async def test_hook_gateway_person_resolve(tmp_path: Path, hook_calls: list[str]) -> None:
    """The canton's message about a resident the gateway does not know: the registry plugin
    names the candidates; one is delivered to the registry, two wait for review."""
    config = write_config(tmp_path, extra=WAY_BACK)
    _in_process(tmp_path)
    (tmp_path / "registry-inbox").mkdir()
    pm = plugin_manager()
    residents = _Residents()
    pm.register(residents, name="registry-residents")
    db = tmp_path / "gateway.db"
    berta = message("canton-berta").replace(b">Muster<", b">Beispiel<").replace(b">Anna<",
                                                                                b">Berta<")
    async with running(config, pm):
        drop(tmp_path / "from-canton", "a.xml", message("canton-anna"))
        drop(tmp_path / "from-canton", "b.xml", berta)
        await until(lambda: sorted(states(db, "SELECT message_id, state FROM messages"),
                                   key=repr) == [("canton-anna", "needs_review"),
                                                 ("canton-berta", "routed")])
        await until(lambda: states(db, "SELECT partner, state FROM deliveries")
                    == [("registry", "delivered")])
    assert sorted(residents.asked) == ["Anna", "Berta"]
    [(candidates,)] = states(db, "SELECT candidates FROM reviews")
    assert sorted(c["keys"][0] for c in json.loads(candidates)) == ["vn:7561234567897",
                                                                    "vn:7569876543214"]
    [(state,)] = states(db, "SELECT state FROM persons")  # the one found is stored
    assert json.loads(state)["identification"]["vn"] == 7565555555553
    assert [p.read_bytes().count(b"canton-berta") for p in
            (tmp_path / "registry-inbox").iterdir()] == [1]
    assert "gateway_person_resolve" in hook_calls


class _DocumentStore:
    """A registry plugin with a document store: the signed declaration of one person."""

    PDF = b"%PDF-1.4\n% signed declaration of commitment\n%%EOF\n"

    @hookimpl
    def gateway_documents(self, message: Normalised, decision: Decision,
                          facts: Mapping[str, Any], settings: Any) -> list[Attachment] | None:
        if "vn:7561234567897" in message.subject:
            return [Attachment("declaration.pdf", self.PDF)]
        if "vn:7568982977671" in message.subject:
            raise InputRejected("the declaration of this person is not scanned yet")
        return None


async def test_hook_gateway_documents(tmp_path: Path, hook_calls: list[str]) -> None:
    """A plugin's files travel with the message; its refusal quarantines the message."""
    config = write_config(tmp_path)
    _in_process(tmp_path)
    pm = plugin_manager()
    pm.register(_DocumentStore(), name="document-store")
    db = tmp_path / "gateway.db"
    async with running(config, pm):
        drop(tmp_path / "in", "a.xml", _with_vn("scanned-1", "7561234567897"))
        drop(tmp_path / "in", "b.xml", _with_vn("waiting-1", "7568982977671"))
        drop(tmp_path / "in", "c.xml", message("plain-1"))
        await until(lambda: len(StubTransport.sent.get("canton", [])) == 2
                    and len(states(db, "SELECT id FROM messages WHERE state = 'quarantined'")) == 1)
    sent = {item.message_id: item for item in StubTransport.sent["canton"]}
    assert sent["scanned-1"].attachments == (Attachment("declaration.pdf", _DocumentStore.PDF),)
    assert sent["plain-1"].attachments == ()
    root = etree.fromstring(sent["scanned-1"].payload)
    e39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
    assert root.findtext(f".//{e39}pathFileName") == "files/declaration.pdf"
    assert root.findtext(f".//{e39}hashCode") == hashlib.sha256(_DocumentStore.PDF).hexdigest()
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE message_id = 'waiting-1'")
    assert reason == "the declaration of this person is not scanned yet"
    assert "gateway_documents" in hook_calls


class _Listener:
    """Records each event with the state the database shows at that moment."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        if event.delivery is not None:
            rows = states(self.db, "SELECT state FROM deliveries WHERE id = ?", (event.delivery,))
        else:
            rows = states(self.db, "SELECT state FROM messages WHERE id = ?", (event.message,))
        self.seen.append((event.kind, rows[0][0] if rows else "?"))


async def test_hook_gateway_event(tmp_path: Path, hook_calls: list[str]) -> None:
    """Listeners hear of quarantines and failures after the change was committed."""
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.stub]\n'
               "fail_permanent = true\n")
    config = write_config(tmp_path, partner)
    db = tmp_path / "gateway.db"
    pm: pluggy.PluginManager = plugin_manager()
    listener = _Listener(db)
    pm.register(listener, name="listener")
    async with running(config, pm):
        drop(tmp_path / "in", "bad.xml", b"<not-closed>")
        drop(tmp_path / "in", "good.xml", message("refused-1"))
        await until(lambda: len(listener.seen) >= 2)
    assert sorted(listener.seen) == [("delivery.dead", "dead"),
                                     ("message.quarantined", "quarantined")]
    assert "gateway_event" in hook_calls


class _Told:
    """Hears the events and the stop, in order."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        self.heard.append(event.kind)

    @hookimpl
    def gateway_stop(self) -> None:
        self.heard.append("stop")


async def test_hook_gateway_stop(tmp_path: Path, hook_calls: list[str],
                                 caplog: pytest.LogCaptureFixture) -> None:
    """The stop comes once, after the last event; the built-in alerts say then that the
    partner works again, which they would otherwise say a minute later, after the exit."""
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.retry]\n'
               'initial = "10ms"\njitter = 0\n[partners.canton.stub]\nfail_transient = 2\n')
    config = write_config(tmp_path, partner)
    pm = plugin_manager()
    told = _Told()
    pm.register(told, name="told")
    with caplog.at_level(logging.INFO):
        async with running(config, pm):
            drop(tmp_path / "in", "m.xml", message("stop-1"))
            await until(lambda: "delivery.delivered" in told.heard)
            assert not [r for r in caplog.records if "works again" in r.getMessage()]
    assert told.heard == ["delivery.retry", "delivery.retry", "delivery.delivered", "stop"]
    [end] = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert end.startswith("delivery.retry for canton: works again after 0s, 2 in all")
    assert "gateway_stop" in hook_calls


class _Ping:
    @hookimpl
    def gateway_http_routes(self, settings: Any) -> list[HttpRoute]:
        async def ping(request: web.Request) -> web.Response:
            return web.json_response({"node": settings.gateway.node_id,
                                      "echo": request.query.get("q")})
        return [HttpRoute("GET", "/test/ping", ping)]


async def test_hook_gateway_http_routes(tmp_path: Path, hook_calls: list[str]) -> None:
    """A plugin's route is served by the daemon's HTTP server, beside the sources' routes."""
    config = write_config(tmp_path, extra='[http]\nlisten = "127.0.0.1:0"\n')
    pm = plugin_manager()
    pm.register(_Ping(), name="ping")
    async with running(config, pm) as gw, aiohttp.ClientSession() as session:
        assert gw.http is not None
        async with session.get(f"http://127.0.0.1:{gw.http.port}/test/ping?q=hi") as response:
            assert response.status == 200
            assert await response.json() == {"node": "test", "echo": "hi"}
    assert "gateway_http_routes" in hook_calls


async def test_plugins_on_the_given_manager_are_used_with_worker_processes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('route_to = ["canton"]', "route_to = []"))
    pm = plugin_manager()
    pm.register(_VipRouter(), name="vip")
    db = tmp_path / "gateway.db"
    async with running(config, pm):
        drop(tmp_path / "in", "a.xml", message("vip-1"))
        await until(lambda: states(db, "SELECT state FROM messages") != [("received",)]
                    and states(db, "SELECT state FROM messages") != [])
    assert states(db, "SELECT state FROM messages") == [("routed",)]
