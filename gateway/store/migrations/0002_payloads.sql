-- The bytes of a message move out of `messages` into `payloads`, written once.
-- A message row changes state several times; SQLite writes a changed row anew,
-- and a row holding a 5 KB document spills into overflow pages, so every state
-- change used to rewrite (and checkpoint) the whole document.

CREATE TABLE payloads (
    message   INTEGER PRIMARY KEY REFERENCES messages (id),
    raw       BLOB    NOT NULL,
    canonical BLOB              -- NULL when the canonical form is the raw input
);
INSERT INTO payloads (message, raw, canonical) SELECT id, raw, canonical FROM messages;
ALTER TABLE messages DROP COLUMN raw;
ALTER TABLE messages DROP COLUMN canonical;
