"""The SOAP transport against a real SOAP service: TLS with client certificates, faults, timeouts, auth.

The gateway runs in-process with its real plugins (tests/flow.py); the
service is :mod:`tests.soap_service`, on 127.0.0.1, serving the WSDL of
``fixtures/soap/migration.wsdl``.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from lxml import etree

from gateway.assembly import load_config
from gateway.cli import main
from gateway.config import write_initial_config
from gateway.errors import ConfigError
from plugins.soap.arguments import ITEM_FIELDS, plan
from plugins.soap.client import load_wsdl, operation_of
from plugins.soap.options import SoapOptions, SoapSourceOptions
from tests.flow import drop, message, plugin_manager, running, states, until, write_config
from tests.soap_service import FIXTURES, WSDL, Certs, SoapService, make_certs, serving

SUBMIT = {"message": "payload", "messageId": "message_id", "sender": "const:3-GE-1"}


def soap_config(tmp: Path, service: SoapService, *, client_cert: Path | None = None,
                operation: str = "SubmitMessage", arguments: dict[str, str] | None = None,
                extra: str = "", max_attempts: int = 6) -> Path:
    """A gateway whose partner ``canton`` is ``service``, over TLS with our client certificate."""
    cert = client_cert or service.certs.client
    args = "".join(f'"{k}" = "{v}"\n' for k, v in (arguments or SUBMIT).items())
    partner = (
        '[partners.canton]\ntransport = "soap"\n'
        f"[partners.canton.retry]\nmax_attempts = {max_attempts}\n"
        'initial = "20ms"\nmaximum = "50ms"\njitter = 0\n'
        f'[partners.canton.soap]\nwsdl = "{WSDL}"\naddress = "{service.url}"\n'
        f'operation = "{operation}"\nca_file = "{service.certs.ca}"\nclient_cert = "{cert}"\n'
        f'connect_timeout = "2s"\nread_timeout = "400ms"\n{extra}\n'
        f"[partners.canton.soap.arguments]\n{args}"
    )
    return write_config(tmp, partner=partner)


def deliveries(db: Path) -> dict[str, tuple[str, int, str | None]]:
    """eCH-0223 message id -> (state, attempts, reason) of its delivery."""
    rows = states(db, "SELECT m.message_id, d.state, d.attempts, d.reason FROM deliveries d"
                      " JOIN messages m ON m.id = d.message")
    return {mid: (state, attempts, reason) for mid, state, attempts, reason in rows}


def attempt_details(db: Path, message_id: str) -> list[tuple[str, str]]:
    """(outcome, detail) of each attempt of the delivery of ``message_id``, in order."""
    return states(db, "SELECT a.outcome, a.detail FROM attempts a JOIN deliveries d"
                      " ON d.id = a.delivery JOIN messages m ON m.id = d.message"
                      " WHERE m.message_id = ? ORDER BY a.number", (message_id,))


async def settle(db: Path, ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
    """Wait until the deliveries of ``ids`` are delivered or dead; their rows."""
    await until(lambda: all(deliveries(db).get(i, ("",))[0] in ("delivered", "dead")
                            for i in ids), timeout=20)
    return deliveries(db)


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "pki")


async def test_delivered_retried_and_dead_as_the_service_answers(tmp_path: Path,
                                                                 certs: Certs) -> None:
    plan_ = {"m-client": ["client"], "m-server": ["server", "server", "ok"],
             "m-hang": ["hang", "ok"], "m-trickle": ["trickle", "ok"],
             "m-503": ["http503", "ok"]}
    async with serving(SoapService(certs, plan={k: list(v) for k, v in plan_.items()})) as svc:
        config = soap_config(tmp_path, svc, extra='call_timeout = "1500ms"')
        db = tmp_path / "gateway.db"
        ids = ["m-ok", *plan_]
        sent = {mid: message(mid) for mid in ids}
        async with running(config):
            for mid in ids:
                drop(tmp_path / "in", f"{mid}.xml", sent[mid])
            rows = await settle(db, ids)

    assert rows["m-ok"][:2] == ("delivered", 1)
    # Bytes on the wire: the message itself, base64 as the WSDL types it, and the constant.
    received = {mid: data for _op, mid, data in svc.received}
    assert received["m-ok"] == sent["m-ok"]
    assert rows["m-client"][:2] == ("dead", 1)
    assert "refused: unknown municipality" in (rows["m-client"][2] or "")
    assert "soap:Client" in (rows["m-client"][2] or "")
    assert "m-client" not in received
    assert rows["m-server"][:2] == ("delivered", 3)
    assert "registry backend unavailable" in attempt_details(db, "m-server")[0][1]
    assert rows["m-hang"][:2] == ("delivered", 2)
    assert "timed out" in attempt_details(db, "m-hang")[0][1]
    assert rows["m-trickle"][:2] == ("delivered", 2)  # never silent for 400 ms, cut at 1.5 s
    assert "not complete within call_timeout (1.5 s)" in attempt_details(db, "m-trickle")[0][1]
    assert rows["m-503"][:2] == ("delivered", 2)
    assert "HTTP 503" in attempt_details(db, "m-503")[0][1]
    assert received["m-server"] == sent["m-server"]
    assert attempt_details(db, "m-ok")[0][1] == "SubmitMessage: 'r-1'"


async def test_a_batch_is_sent_concurrency_calls_at_a_time(tmp_path: Path, certs: Certs) -> None:
    """A slow service holds each call; the batch's calls run side by side, not one by one."""
    ids = [f"m-slow-{n}" for n in range(6)]
    async with serving(SoapService(certs, plan={i: ["slow"] for i in ids}, slow=1.0)) as svc:
        config = soap_config(tmp_path, svc, extra="concurrency = 6")
        config.write_text(config.read_text().replace('read_timeout = "400ms"', 'read_timeout = "5s"'))
        db = tmp_path / "gateway.db"
        for mid in ids:  # before the start: one scan takes them all, one batch sends them
            drop(tmp_path / "in", f"{mid}.xml", message(mid))
        async with running(config):
            rows = await settle(db, ids)
    assert all(rows[i][:2] == ("delivered", 1) for i in ids), rows
    assert svc.most_in_flight == 6


async def test_a_retry_after_of_the_service_puts_off_the_next_attempt(tmp_path: Path,
                                                                       certs: Certs) -> None:
    """HTTP 429 with Retry-After: 2 s: the retry waits that long, not the 20 ms of the policy."""
    async with serving(SoapService(certs, plan={"m-429": ["http429", "ok"]})) as svc:
        config = soap_config(tmp_path, svc)
        db = tmp_path / "gateway.db"
        async with running(config):
            drop(tmp_path / "in", "m.xml", message("m-429"))
            rows = await settle(db, ["m-429"])
    assert rows["m-429"][:2] == ("delivered", 2)
    [(first, _), (second, _)] = states(db, "SELECT a.started_at, a.outcome FROM attempts a"
                                           " ORDER BY a.number")
    assert second - first >= 2.0
    assert "HTTP 429" in attempt_details(db, "m-429")[0][1]
    assert "Retry-After 2s" in attempt_details(db, "m-429")[0][1]


@pytest.mark.parametrize("who", ["stranger", "nobody"])
async def test_a_client_certificate_the_service_refuses_is_retried_with_a_clear_reason(
        tmp_path: Path, certs: Certs, who: str) -> None:
    async with serving(SoapService(certs)) as svc:
        cert = certs.stranger if who == "stranger" else None
        config = soap_config(tmp_path, svc, client_cert=cert, max_attempts=2)
        if who == "nobody":
            text = config.read_text().replace(f'client_cert = "{certs.client}"\n', "")
            config.write_text(text)
        db = tmp_path / "gateway.db"
        async with running(config):
            drop(tmp_path / "in", "m.xml", message("m-tls"))
            rows = await settle(db, ["m-tls"])
    assert rows["m-tls"][:2] == ("dead", 2)  # retried: transient, until the retries ran out
    details = [d for _o, d in attempt_details(db, "m-tls")]
    assert all("client certificate" in d for d in details), details
    assert svc.received == []


@pytest.mark.parametrize(("auth", "password", "outcome", "why"), [
    ("basic", "s3cret", "delivered", None),
    ("basic", "wrong", "dead", "HTTP 401"),
    ("wsse", "s3cret", "delivered", None),
    ("wsse", "wrong", "dead", "FailedAuthentication"),
    ("wsse-digest", "s3cret", "delivered", None),
])
async def test_basic_auth_and_ws_security_are_checked_by_the_service(
        tmp_path: Path, certs: Certs, auth: str, password: str, outcome: str,
        why: str | None) -> None:
    kind = auth.split("-")[0]
    service = SoapService(certs, **{kind: ("gateway", "s3cret")})  # type: ignore[arg-type]
    (tmp_path / "password").write_text(password + "\n")
    extra = (f'auth = "{kind}"\nusername = "gateway"\npassword_file = "password"\n'
             f"wsse_digest = {'true' if auth == 'wsse-digest' else 'false'}")
    async with serving(service) as svc:
        config = soap_config(tmp_path, svc, extra=extra)
        db = tmp_path / "gateway.db"
        async with running(config):
            drop(tmp_path / "in", "m.xml", message("m-auth"))
            rows = await settle(db, ["m-auth"])
    assert rows["m-auth"][0] == outcome
    if why:
        assert rows["m-auth"][1] == 1 and why in (rows["m-auth"][2] or "")
        assert svc.received == []
    else:
        assert [mid for _op, mid, _d in svc.received] == ["m-auth"]


@pytest.mark.parametrize(("operation", "arguments"), [
    ("SubmitMessageText", {"message": "payload", "messageId": "message_id"}),
    ("SubmitMessageXml", {"message": "payload", "header.messageId": "message_id",
                          "header.attempt": "attempt"}),
])
async def test_the_message_goes_as_text_or_xml_as_the_wsdl_types_it(
        tmp_path: Path, certs: Certs, operation: str, arguments: dict[str, str]) -> None:
    async with serving(SoapService(certs)) as svc:
        config = soap_config(tmp_path, svc, operation=operation, arguments=arguments)
        db = tmp_path / "gateway.db"
        data = message("m-form")
        async with running(config):
            drop(tmp_path / "in", "m.xml", data)
            rows = await settle(db, ["m-form"])
    assert rows["m-form"][0] == "delivered"
    [(op, mid, got)] = svc.received
    assert (op, mid) == (operation, "m-form")
    canon = etree.tostring(etree.fromstring(data), method="c14n", exclusive=True)
    assert etree.tostring(etree.fromstring(got), method="c14n", exclusive=True) == canon


def check_config(config: Path) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--config", str(config), "check-config"])
    return code, out.getvalue()


def test_a_wsdl_importing_a_remote_schema_is_refused_at_check_config_and_start(
        tmp_path: Path, certs: Certs) -> None:
    partner = ('[partners.canton]\ntransport = "soap"\n[partners.canton.soap]\n'
               f'wsdl = "{FIXTURES / "remote-import.wsdl"}"\nca_file = "{certs.ca}"\n')
    config = write_config(tmp_path, partner=partner)
    code, out = check_config(config)
    assert code != 0
    assert "partners.canton.soap" in out
    assert "refused to fetch http://127.0.0.1:9/types.xsd" in out
    with pytest.raises(ConfigError, match="must be local files"):  # what `run` loads first
        load_config(config, plugin_manager())


def test_a_wsdl_url_is_refused_as_a_url_not_as_a_mangled_path(tmp_path: Path) -> None:
    """The canton serves its WSDL at ...?wsdl; the operator who names that URL is told to
    save the file, not that there is "no file <folder>/https:/canton.example/..."."""
    partner = ('[partners.canton]\ntransport = "soap"\n[partners.canton.soap]\n'
               'wsdl = "https://soap.canton.example/migration?wsdl"\n')
    config = write_config(tmp_path, partner=partner)
    code, out = check_config(config)
    assert code == 2
    assert ("partners.canton.soap.wsdl: https://soap.canton.example/migration?wsdl is a URL:"
            " this key takes the path of a local file") in out, out
    assert "no file" not in out


def test_check_config_names_an_argument_the_operation_lacks(tmp_path: Path, certs: Certs) -> None:
    service = SoapService(certs, url="https://127.0.0.1:1/x")
    config = soap_config(tmp_path, service, arguments={"message": "payload", "msgId": "message_id"})
    code, out = check_config(config)
    assert code != 0
    assert "partners.canton.soap.arguments" in out
    assert "SubmitMessage has no argument 'msgId' (it has: messageId, sender, message)" in out


def test_a_payload_argument_of_a_type_that_cannot_carry_it_is_refused() -> None:
    document = load_wsdl(WSDL)
    options = SoapOptions(wsdl=WSDL, operation="FetchMessages")
    body = operation_of(document, options, "FetchMessages").input.body
    with pytest.raises(ValueError, match=r"FetchMessages\.limit is of type int,"):
        plan(body, {"limit": "payload"}, "FetchMessages")
    with pytest.raises(ValueError, match="neither a field"):
        SoapOptions(wsdl=WSDL, arguments={"message": "body"})
    assert "payload" in ITEM_FIELDS


def test_the_example_configuration_loads(tmp_path: Path, certs: Certs) -> None:
    example = Path(__file__).parent.parent / "config" / "conf.d" / "40-soap.toml.example"
    config = write_initial_config(tmp_path)
    (tmp_path / "password").write_text("s3cret\n")
    text = (example.read_text()
            .replace("/etc/ech-gateway/soap/canton-migration.wsdl", str(WSDL))
            .replace("/etc/ech-gateway/soap/canton-ca.pem", str(certs.ca))
            .replace("/etc/ech-gateway/soap/gateway-client.pem", str(certs.client))
            .replace("/run/credentials/ech-gateway/canton-soap", str(tmp_path / "password")))
    (tmp_path / "conf.d" / "40-soap.toml").write_text(text)
    settings = load_config(config, plugin_manager())
    options = settings.partners["canton-soap"].parsed
    assert isinstance(options, SoapOptions)
    assert options.auth == "wsse" and options.password is not None
    assert options.password.get_secret_value() == "s3cret"
    assert isinstance(settings.sources["canton-soap"].parsed, SoapSourceOptions)
