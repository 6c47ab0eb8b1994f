"""The store: messages, deliveries, receipts and the journal.

:class:`SQLiteStore` is the embedded default. A PostgreSQL backend will
implement the same methods (claims with ``FOR UPDATE SKIP LOCKED`` and
expiring leases); the core uses nothing else.
"""

from gateway.store.records import Claim, Outcome, Pending, Processed
from gateway.store.sqlite import SQLiteStore, StoreReader
from gateway.store.states import DeliveryState, MessageState

__all__ = [
    "Claim",
    "DeliveryState",
    "MessageState",
    "Outcome",
    "Pending",
    "Processed",
    "SQLiteStore",
    "StoreReader",
]
