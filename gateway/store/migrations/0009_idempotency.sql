-- Idempotency keys: a source that is given a key with an input (an HTTP
-- Idempotency-Key, RawInput.meta "idempotency_key") stores the input once per
-- (source, key); a repeat gets the first input's id back and is not stored again.
-- The key is claimed by its primary key (INSERT ... ON CONFLICT DO NOTHING), like
-- input_originals: two writers racing cannot both store an input for one key.
-- digest: SHA-256 of the first input's bytes (a repeat with other bytes is refused).
-- message: set in the transaction that claims the key.

CREATE TABLE idempotency_keys (
    source  TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    digest  TEXT    NOT NULL,
    message INTEGER REFERENCES messages (id),
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
