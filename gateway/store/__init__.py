"""The store: messages, deliveries, receipts and the journal.

The core uses :class:`Store` (the contract); :class:`SQLiteStore` is the
embedded default backend, :class:`StoreReader` the read side for the CLI.
"""

from gateway.store.base import Store
from gateway.store.reader import StoreReader
from gateway.store.records import Claim, Inbound, Outcome, Pending, Processed
from gateway.store.sqlite import SQLiteStore
from gateway.store.states import DeliveryState, MessageState

__all__ = [
    "Claim",
    "DeliveryState",
    "Inbound",
    "MessageState",
    "Outcome",
    "Pending",
    "Processed",
    "SQLiteStore",
    "Store",
    "StoreReader",
]
