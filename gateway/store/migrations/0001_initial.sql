-- The first schema: messages, their deliveries and attempts, receipts, the journal.
-- Times are UTC seconds since the epoch (REAL).

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    ref           TEXT    NOT NULL,
    meta          TEXT    NOT NULL DEFAULT '{}',
    raw           BLOB    NOT NULL,
    digest        TEXT    NOT NULL,        -- sha256 of raw: the same input twice is a duplicate
    received_at   REAL    NOT NULL,
    state         TEXT    NOT NULL,
    reason        TEXT,
    kind          TEXT,
    message_id    TEXT,
    reference_message_id TEXT,
    version       TEXT,
    canonical     BLOB,              -- NULL when the canonical form is the raw input
    updated_at    REAL    NOT NULL
);
CREATE INDEX messages_state ON messages (state);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_digest ON messages (source, digest);

CREATE TABLE attachments (
    message   INTEGER NOT NULL REFERENCES messages (id),
    name      TEXT    NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (message, name)
);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    message          INTEGER NOT NULL REFERENCES messages (id),
    partner          TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    reason           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    attempt_ref      TEXT,
    created_at       REAL    NOT NULL,
    first_attempt_at REAL,
    next_attempt_at  REAL,
    lease_owner      TEXT,
    lease_until      REAL,
    sent_at          REAL,
    receipt_due_at   REAL,
    overdue          INTEGER NOT NULL DEFAULT 0,
    replay_of        INTEGER REFERENCES deliveries (id),
    updated_at       REAL    NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_message ON deliveries (message);

CREATE TABLE attempts (
    ref         TEXT    PRIMARY KEY,
    delivery    INTEGER NOT NULL REFERENCES deliveries (id),
    number      INTEGER NOT NULL,
    started_at  REAL    NOT NULL,
    outcome     TEXT,
    detail      TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery);

CREATE TABLE receipts (
    id          INTEGER PRIMARY KEY,
    attempt_ref TEXT    NOT NULL,
    delivery    INTEGER REFERENCES deliveries (id),
    outcome     TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    info        TEXT    NOT NULL,
    at          REAL    NOT NULL,
    recorded_at REAL    NOT NULL,
    raw         BLOB
);
CREATE INDEX receipts_ref ON receipts (attempt_ref);

CREATE TABLE journal (
    seq       INTEGER PRIMARY KEY,
    at        REAL    NOT NULL,
    message   INTEGER,
    delivery  INTEGER,
    event     TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX journal_message ON journal (message);
