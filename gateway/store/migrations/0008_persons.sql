-- Person state: the last known state of each person, found by VN and local ids,
-- with the messages about them (their timeline). Per-delivery payloads: a
-- partner on another eCH-0223 version gets its own bytes. Export files keep
-- their rows as messages of their own (parent).

CREATE TABLE persons (
    id          INTEGER PRIMARY KEY,
    state       TEXT    NOT NULL,          -- PersonState as JSON
    updated_at  REAL    NOT NULL,
    updated_by  INTEGER REFERENCES messages (id)
);

CREATE TABLE person_keys (
    key     TEXT    PRIMARY KEY,           -- vn:<13 digits> or local:<category>:<id>
    person  INTEGER NOT NULL REFERENCES persons (id)
) WITHOUT ROWID;
CREATE INDEX person_keys_person ON person_keys (person);

CREATE TABLE person_messages (
    person   INTEGER NOT NULL REFERENCES persons (id),
    message  INTEGER NOT NULL REFERENCES messages (id),
    PRIMARY KEY (person, message)
) WITHOUT ROWID;
CREATE INDEX person_messages_message ON person_messages (message);

ALTER TABLE deliveries ADD COLUMN payload BLOB;   -- NULL: the message's canonical payload
ALTER TABLE messages ADD COLUMN parent INTEGER REFERENCES messages (id);
CREATE INDEX messages_parent ON messages (parent) WHERE parent IS NOT NULL;
