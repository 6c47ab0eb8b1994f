"""One exception hierarchy for the gateway.

Transports and sources raise these; the core decides what they mean for a
message (quarantine, retry, dead letter). Nothing else is caught broadly.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""


class InputRejected(GatewayError):
    """Input that can never be processed: it is quarantined with this reason.

    :param message_id: the eCH-0223 header's ``messageId``, where it could be read all the
        same (kept on the quarantined message: ``messages list`` and ``show`` name it).
    :param sender_id: the header's ``senderId``, likewise.
    """

    def __init__(self, reason: str, where: str | None = None, *, message_id: str | None = None,
                 sender_id: str | None = None) -> None:
        super().__init__(reason if where is None else f"{reason} (at {where})")
        self.reason = reason
        self.where = where
        self.message_id = message_id
        self.sender_id = sender_id


class ConversionRefused(InputRejected):
    """A message cannot be put into another eCH-0223 version without changing what it says.

    Its ``personEvent`` does not exist in that version and the policy
    (``unsupported_event``) is to refuse rather than send ``othercaseOfMigration``.
    """

    def __init__(self, event: str, version: str) -> None:
        super().__init__(f"personEvent {event} is not in eCH-0223 {version}"
                         " (unsupported_event is refuse)", "/personEventMessage/content/personEvent")
        self.event = event
        self.version = version

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.event, self.version)


class KeyReuseRejected(InputRejected):
    """An input came with an idempotency key that an input with other bytes had: nothing is stored.

    Raised by :meth:`~gateway.contracts.Intake.submit` and ``quarantine``;
    ``first`` is the id of the input stored with that key (``None``: it came
    in the same call, so it is not stored either).
    """

    def __init__(self, source: str, key: str, first: int | None) -> None:
        earlier = f" (message {first})" if first is not None else " in the same batch"
        super().__init__(f"idempotency key {key!r} of source {source} was used for other bytes"
                         f"{earlier}; a new message needs a new key")
        self.source, self.key, self.first = source, key, first

    def __reduce__(self) -> tuple[type, tuple[str, str, int | None]]:
        return type(self), (self.source, self.key, self.first)


class ConfigError(GatewayError):
    """The configuration is invalid; ``problems`` lists (file, key, reason)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        #: A line per problem, as ``check-config`` lists them: ``file: key: reason``.
        self.lines = [f"{file}: {key}: {reason}" for file, key, reason in problems]
        super().__init__("invalid configuration:\n" + "\n".join(self.lines))
        self.problems = problems


class DeliveryError(GatewayError):
    """Base class of what a transport raises when a send did not succeed."""


class TransientError(DeliveryError):
    """The send failed but may succeed later: the delivery is retried.

    :param retry_after: seconds the partner asked us to wait (HTTP ``Retry-After``):
        the next attempt is scheduled no earlier (:meth:`gateway.retry.RetryPolicy.next_attempt_at`).
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """The send can never succeed as it is: the delivery becomes a dead letter."""


class PluginError(GatewayError):
    """An installed plugin cannot be used: it fails to load, or clashes with another."""


class LocalFault(TransientError):
    """The send failed on our own side (our outbox missing, read-only or full).

    Not the partner's fault: the attempt is not counted, the partner is
    paused until the fault clears, and the same attempt is made again then.
    """


class UnsureError(TransientError):
    """The send did not finish, and whether it reached the partner is not known (a write
    into a folder whose file system hangs).

    The attempt is ``unsure``: it is repeated later as the same attempt (same
    ``attempt_ref``, ``resumed``), never as a new one, so that what arrived is not
    sent twice.
    """


class LocalHang(UnsureError):
    """The send did not finish because something on this machine hangs (the outbox's file
    system did not answer in time): unsure, as :class:`UnsureError` (the same attempt is
    repeated later), and this machine's fault, as a :class:`LocalFault`: the partner is
    paused until a probe finds it answering again, so that no further send waits on it.
    """


class FolderHang(GatewayError, ValueError):
    """A folder did not answer a look within its time (a share whose server is gone), or one
    above it did not and has not since: checking the configuration was given up on there.

    A :class:`ValueError`, so that in an options model's validator (``same_folder``) it is
    the problem of the key that names the folder.
    """

    def __init__(self, folder: object, timeout: float) -> None:
        super().__init__(f"folder {folder} did not answer within {timeout:g}s"
                         " (is its share down?)")
        self.folder, self.timeout = folder, timeout

    def __reduce__(self) -> tuple[type, tuple[object, float]]:
        return type(self), (self.folder, self.timeout)


class StoreError(GatewayError):
    """The store cannot do what was asked (missing row, bad state transition)."""


class StoreUnavailable(StoreError):
    """The store cannot write for now (its disk is full, or another program held the
    database's write lock for longer than ``[store] busy_timeout``); the same write may
    succeed later."""


class StoreConflict(StoreError):
    """A row is not in the state the operation expects; nothing was changed.

    Another writer changed it first, or the operation does not apply to its
    state (replaying a delivery that is not dead, requeueing a routed message).
    """


class StoreLost(StoreError):
    """The database was deleted or replaced, or its journal does not match its anchor.

    Nothing more may be written: the daemon stops taking input and alerts.
    """


class NodeRunning(StoreError):
    """Another process runs this node (``[gateway] node_id``) on the database: a second one
    would take the first's work for its own (:meth:`Store.hold_node
    <gateway.store.base.Store.hold_node>`)."""


class NotFound(GatewayError):
    """What was asked for does not exist (a database, a message, a delivery), or a file named
    on the command line cannot be read."""


class Ambiguous(GatewayError):
    """What was asked for matches several things; ``candidates`` describes each."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class ConfigExists(GatewayError):
    """``init`` would overwrite an existing configuration."""


class WorkerLost(GatewayError):
    """A worker process died while running offloaded work; running it again may succeed."""


class WorkerStartFailed(GatewayError):
    """Worker processes cannot start: their initializer fails there (a plugin that does not
    import in a spawned process, an unreadable schema, a broken installation), as ``cause`` says.

    No input's fault: at the start the daemon stops with it; later the work waits
    (:meth:`gateway.workers.WorkerPool.run`).
    """

    def __init__(self, cause: str) -> None:
        super().__init__(f"worker processes cannot start: {cause}")
        self.cause = cause
