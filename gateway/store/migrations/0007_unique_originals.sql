-- Uniqueness by constraint, not by looking first: two writers (the daemon and a
-- command-line tool, or several nodes) racing cannot both store an original.
--
-- input_originals: the message that holds the bytes (digest) received from a
-- source; a later input with the same bytes is its duplicate. A quarantined
-- input is nobody's original: it lets go when it is quarantined (trigger below)
-- and claims again when an operator sends it through processing again.
-- routed_message_ids: the message routed with an eCH-0223 messageId; a later
-- message routed with the same messageId is its duplicate.
-- Both start from what the lookups they replace found: the first such message.

CREATE TABLE input_originals (
    source  TEXT    NOT NULL,
    digest  TEXT    NOT NULL,
    message INTEGER NOT NULL REFERENCES messages (id),
    PRIMARY KEY (source, digest)
) WITHOUT ROWID;
INSERT INTO input_originals (source, digest, message)
    SELECT source, digest, min(id) FROM messages WHERE state != 'quarantined'
    GROUP BY source, digest;

CREATE TABLE routed_message_ids (
    message_id TEXT    NOT NULL PRIMARY KEY,
    message    INTEGER NOT NULL REFERENCES messages (id)
) WITHOUT ROWID;
INSERT INTO routed_message_ids (message_id, message)
    SELECT message_id, min(id) FROM messages WHERE state = 'routed' AND message_id IS NOT NULL
    GROUP BY message_id;

CREATE TRIGGER input_originals_let_go AFTER UPDATE OF state ON messages
    WHEN NEW.state = 'quarantined'
BEGIN
    DELETE FROM input_originals
    WHERE source = NEW.source AND digest = NEW.digest AND message = NEW.id;
END;

-- (source, digest) was looked up only to find the original: input_originals has it.
DROP INDEX messages_digest;
