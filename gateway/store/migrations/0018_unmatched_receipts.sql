-- Retention (`[retention] keep`) deletes the bytes of a receipt that matched no delivery
-- (receipt.unmatched: delivery NULL; a shared sedex receipts folder holds many, for other
-- applications' messages) once it was recorded that long ago; the row, its code and info,
-- and the journal stay. The receipts that still hold their bytes, by when they came, for
-- retention to find them without passing the ones it cleared.
CREATE INDEX receipts_unmatched ON receipts (recorded_at) WHERE delivery IS NULL AND raw IS NOT NULL;
