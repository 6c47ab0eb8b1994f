"""The hooks a plugin implements; ``docs/plugins.md`` adds the lifecycle, rules and testing.

A plugin is a module (or object) with functions named like the hooks
below, decorated with :data:`hookimpl`, registered through the entry-point
group ``ech_gateway``::

    [project.entry-points.ech_gateway]
    myvendor = "myvendor_gateway.plugin"

Hooks are synchronous (pluggy); a hook that needs I/O returns an object
whose coroutine methods the core awaits (sources, transports). The
built-in plugins in ``plugins/`` use exactly this API.

``gateway_normalise`` and ``gateway_decide`` run in worker processes when
``[gateway] workers`` > 0: keep them free of I/O and of state shared with
the daemon (``gateway_person_lookup`` runs in the daemon and may do I/O).
Each worker loads the plugins from their entry points; when a plugin was
registered by code instead, the daemon normalises in its own process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from gateway.contracts import Attachment, Decision, NormaliseContext, Normalised, RawInput
    from gateway.ech0223 import PersonIdentificationLight
    from gateway.person_state import PersonState
    from gateway.plugin_types import Command, GatewayEvent, HttpRoute, SourceType, TransportType

PROJECT = "ech_gateway"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------
# Types: what can be configured
# ---------------------------------------------------------------------------


@hookspec
def gateway_source_types() -> list[SourceType]:
    """Declare the source types this plugin provides.

    A source obtains raw input (polling a folder, a SOAP service, ...) and
    hands it to the core's intake. ``type = "<name>"`` in a
    ``[sources.<name>]`` table selects it; its other keys are validated by
    the type's ``options`` model.

    :return: the source types.

    Example::

        @hookimpl
        def gateway_source_types():
            return [SourceType("folder", FolderOptions, FolderSource)]
    """


@hookspec
def gateway_transport_types() -> list[TransportType]:
    """Declare the transport types this plugin provides.

    A transport delivers to one partner and reports receipts.
    ``transport = "<name>"`` in ``[partners.<name>]`` selects it; the table
    ``[partners.<name>.<type>]`` holds its options.

    :return: the transport types.

    Example::

        @hookimpl
        def gateway_transport_types():
            return [TransportType("sedex", SedexOptions, SedexTransport)]
    """


@hookspec
def gateway_fact_values() -> Mapping[str, Collection[str]]:
    """Declare the values each fact this plugin's normaliser sets can take.

    The facts a normaliser puts in ``Normalised.facts`` are what a rule's
    ``[rules.match] fields`` match on (``source_event = "changeOccupation"``).
    ``check-config`` refuses a rule whose ``fields`` give a fact a value nobody
    declares (a typo would never match), naming the values that are. Declare
    the values of the messages rules decide: input your normaliser makes not
    relevant itself never reaches them. What every plugin declares for a fact
    is taken together, with the core's own (``person_event``: the eCH-0223
    personEvents; ``kind``): a plugin that sets a fact another declares (``format``)
    declares its own values too, else rules matching them are refused. A fact
    nobody declares values for is not checked.

    :return: each fact's possible values, by fact name.

    Example::

        @hookimpl
        def gateway_fact_values():
            return {"format": ["nova-xml"], "source_event": ["zuzug", "wegzug", "tod"]}
    """


# ---------------------------------------------------------------------------
# The flow of one message
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def gateway_normalise(raw: RawInput, context: NormaliseContext) -> Normalised | None:
    """Turn raw input into canonical eCH-0223 (version 1.5), or decline with ``None``.

    The first plugin that returns a result wins. Raise
    :class:`gateway.errors.InputRejected` when the input is recognisably
    yours but unusable (hostile XML, zip bomb): it is quarantined with that
    reason. When every plugin declines, the input is quarantined as
    unrecognised.

    :param raw: the stored input.
    :param context: the limits to apply to untrusted bytes, and each partner's
        eCH-0223 version (``context.partners``, by name = source name): what a partner
        sends without a version attribute is in that version, and
        :func:`gateway.api.upgrade` makes it 1.5.
    :return: the canonical message, or ``None`` to decline.

    Example::

        @hookimpl
        def gateway_normalise(raw, context):
            if raw.meta.get("content_type") != "application/json":
                return None
            return my_json_to_ech0223(raw.data)
    """


@hookspec(firstresult=True)
def gateway_decide(message: Normalised, raw: RawInput, facts: Mapping[str, Any],
                   settings: Any) -> Decision | None:
    """Decide who gets ``message`` and with what (a code rule).

    Asked before the declarative rules of the configuration (``[[rules]]``,
    the built-in ``rules`` plugin, which answers last): the first plugin that
    returns a :class:`~gateway.contracts.Decision` decides, and the journal
    names its ``rule``. A decision without partners means "decided: nobody"
    (not relevant, for its reason); ``None`` means "no opinion".

    :param message: the normalised message (its draft completed).
    :param raw: the input it came from (source name, metadata).
    :param facts: what rules match on: ``event`` (the eCH-0223 personEvent),
        ``source``, ``kind``, the person's state *before* the event
        (``nationality``: ``swiss``/``foreign``/``stateless``/``unknown``,
        ``permit``, ``permit_category``, ``municipality``, ``age``, ``sex``...)
        and the fields the normaliser exposes (``message.facts``).
    :param settings: the validated configuration.
    :return: the decision, or ``None``.

    Example::

        @hookimpl
        def gateway_decide(message, raw, facts, settings):
            if facts["event"] == "death" and facts["age"] is not None and facts["age"] < 18:
                return Decision("vendor: minors", "deaths of minors go to the canton",
                                partners=("canton",), business_key="allg_K")
            return None
    """


@hookspec
def gateway_documents(message: Normalised, decision: Decision, facts: Mapping[str, Any],
                      settings: Any) -> list[Attachment] | None:
    """Supply document files to send with a message a decision sends somewhere.

    For a registry plugin whose registry keeps the scans of a case (a signed
    declaration of commitment, a permit): asked in the convert stage, once a
    decision routes the message to a partner, in a worker process when
    ``[gateway] workers`` > 0 (files read there stay off the event loop).
    Every plugin's files are added, after those the decision's ``documents``
    patterns name in the documents folder. Each becomes an eCH-0039
    ``document`` in the message (the file name without extension as title,
    the MIME type read from its bytes, its SHA-256) and is sent under
    ``files/<name>``. The files count against ``[limits] max_attachments``
    and ``max_attachment_bytes``; names must be plain file names, unique
    within the message. Raise :class:`gateway.errors.InputRejected` when a
    document the message needs cannot be had: the message is quarantined with
    that reason (replayed once the document exists), never sent without it.

    :param message: the message as decided (``message.subject``: the person's keys).
    :param decision: the decision that sends it (``decision.partners``, ``decision.rule``).
    :param facts: what rules matched on (``event``, ``nationality``...).
    :param settings: the validated configuration.
    :return: the files to attach, or ``None`` (nothing from this plugin).

    Example::

        @hookimpl
        def gateway_documents(message, decision, facts, settings):
            if facts["event"] != "declarationOfCommitment":
                return None
            return [Attachment(f"{scan.id}.pdf", scan.pdf) for scan in my_scans(message.subject)]
    """


@hookspec(firstresult=True)
def gateway_person_lookup(keys: Sequence[str], settings: Any
                          ) -> PersonState | Awaitable[PersonState | None] | None:
    """Supply a person's current data when the gateway's own state lacks it.

    Asked (stage *enrich*, in the daemon's event loop) for a person a message
    is about whom the gateway has no state for yet, several persons at once
    (``[gateway] person_lookup_concurrency``): a registry plugin looks the
    person up in the registry. May return an awaitable (the core awaits it,
    within ``[gateway] person_lookup_timeout``). The plugins are asked in turn:
    the first state one answers is used; one that raises, answers late or
    answers something else counts as not knowing the person (a warning names
    the plugin and the message).

    :param keys: the person's keys (``vn:<13 digits>``, ``local:<category>:<id>``).
    :param settings: the validated configuration.
    :return: the person's state, or ``None`` when unknown.

    Example::

        @hookimpl
        def gateway_person_lookup(keys, settings):
            return registry_client.fetch(keys)  # a coroutine: awaited by the core
    """


@hookspec
def gateway_person_resolve(identification: PersonIdentificationLight, settings: Any
                           ) -> Sequence[PersonState] | Awaitable[Sequence[PersonState] | None] | None:
    """Name the residents a partner's message may be about, when the gateway does not know them.

    Asked (in the daemon's event loop, for several messages at once: ``[gateway]
    person_lookup_concurrency``) for a message from a partner (the canton)
    whose person the gateway's own state does not find, by VN, local person
    id, nor official name + first name + date of birth: a registry plugin
    searches the registry, in the same order. Every plugin's candidates are
    taken, each person once (by keys). Exactly one candidate and the message
    goes to the registry about that person, whose state is stored; none or
    several and it waits in ``needs_review`` with them, for an operator to
    assign (``ech-gateway messages assign``). May return an awaitable (the
    core awaits it, within ``[gateway] person_lookup_timeout``). Raise when
    the registry could not be searched: the message waits saying so (``messages
    replay`` searches again), not as if nobody were found. A plugin that
    raises or answers late counts as finding nobody, the others'
    candidates are taken all the same.

    :param identification: the person as the message names them (eCH-0044
        ``personIdentificationLight``: ``vn``, ``local_person_id``,
        ``official_name``, ``first_name``, ``date_of_birth``...).
    :param settings: the validated configuration.
    :return: the candidates' states (empty or ``None``: nobody found).

    Example::

        @hookimpl
        def gateway_person_resolve(identification, settings):
            return registry_client.search(vn=identification.vn,  # a coroutine: awaited
                                          name=identification.official_name,
                                          first_name=identification.first_name,
                                          born=identification.date_of_birth)
    """


# ---------------------------------------------------------------------------
# Operating
# ---------------------------------------------------------------------------


@hookspec
def gateway_commands() -> list[Command]:
    """Add commands to the ``ech-gateway`` command line.

    The command line sets up their logging as for its own commands (WARNING and above, on
    stderr, in the configured format, without VN numbers) before it runs them.

    :return: the commands; each gets its own sub-parser.

    Example::

        @hookimpl
        def gateway_commands():
            return [Command("sedex-sim", "simulate a sedex client", add_args, run)]
    """


@hookspec
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """Check what this plugin reads beyond its options, with the configuration loaded.

    For files an option names and the plugin reads (a mapping file, say):
    their problems stop ``run`` and are listed by ``check-config`` like any
    other configuration error.

    :param settings: the validated configuration, plugin options parsed.
    :return: the problems as (file, key, reason); empty when all is well. For a
        configuration key, ``file`` may be :data:`gateway.api.CONFIGURATION`: the problem then
        names the file (or environment variable) that set the key.

    Example::

        @hookimpl
        def gateway_check_config(settings):
            return [(str(path), "(file)", "missing") for path in my_files(settings)
                    if not path.is_file()]
    """


@hookspec
def gateway_http_routes(settings: Any) -> list[HttpRoute]:
    """Add routes to the gateway's HTTP server (``[http] listen``; not asked when it is off).

    For a plugin's own endpoints (a registry's callbacks, a status page). The
    routes are served beside those of the sources and transports (which register
    theirs through ``context.routes``) and those of every other plugin; two
    routes with the same method and path stop the start. A handler runs in the
    daemon's event loop: it must not block, and a slow one delays nothing else
    but its own answer. The server's TLS and client certificates
    (``[http.tls]``) apply to every route; it authenticates no caller: a route
    that takes input or shows data checks its callers itself (a token, as the
    ``http`` source does) or relies on the client certificates.

    :param settings: the validated configuration.
    :return: the routes.

    Example::

        @hookimpl
        def gateway_http_routes(settings):
            async def ping(request):
                return aiohttp.web.json_response({"ok": True})
            return [HttpRoute("GET", "/myvendor/ping", ping)]
    """


# ---------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------


@hookspec
def gateway_event(event: GatewayEvent) -> None:
    """Be told of something that happened, after it was committed.

    Called once per committed state change or decision, in journal order,
    from the event loop. The kinds and their details are listed in one
    place, :data:`gateway.events.KINDS`: ``message.quarantined``,
    ``message.duplicate``, ``message.not_relevant``, ``message.replayed``,
    ``message.needs_review``, ``message.answer``, ``delivery.sent``, ``delivery.delivered``,
    ``delivery.acknowledged``, ``delivery.rejected``, ``delivery.needs_review``,
    ``delivery.retry``, ``delivery.unsure``, ``delivery.dead``,
    ``delivery.replayed``, ``partner.paused``, ``partner.resumed``,
    ``receipt.overdue``, ``receipt.wait``, ``receipt.failed``, ``receipt.late``,
    ``receipt.unmatched``, ``store.pruned``, ``store.persons_pruned``,
    ``store.receipts_pruned``, ``store.space_low`` and ``store.space_ok``. The
    last failed attempt of a delivery is ``delivery.dead``, never
    ``delivery.retry``. Three kinds come directly,
    not from the journal, because the store is what failed
    (:data:`gateway.events.DIRECT`): ``intake.paused``, ``intake.resumed``
    and ``store.lost``.
    Must return quickly and never raise: use it for alerts and metrics, not
    for work that can fail.

    :param event: what happened, with the ids of its message and delivery.

    Example::

        @hookimpl
        def gateway_event(event):
            if event.kind == "delivery.dead":
                page_the_operator(event.delivery)
    """


@hookspec
def gateway_stop() -> None:
    """The daemon stops: its drain is over, and every event committed was told (``gateway_event``).

    For a plugin that holds something back between events (a summary of alerts
    not yet due, notifications waiting to be sent in one batch): say or send it
    now, for the process ends soon after. Called once, from the event loop,
    after the sources, transports and workers stopped and before the store
    closes. Must return quickly and never raise. Not called when the daemon is
    killed (SIGKILL, a crash).

    Example::

        @hookimpl
        def gateway_stop():
            MY_BATCH.send_now()
    """
