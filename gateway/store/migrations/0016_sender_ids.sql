-- A messageId is unique only with its sender: sedex asks the pair (senderId, messageId)
-- to be unique, and registries that number their messages 1, 2, 3 ... send the same
-- messageIds. So a message routed with a messageId is a duplicate only of one routed
-- with the same messageId from the same sender.
--
-- messages.sender_id: the header senderId of a normalised message (NULL: not known), so
-- that an answer's referenceMessageId names the message of the sender it answers, and
-- `messages show` says whose messageId it is. Set in the update that records the
-- message's outcome: no statement of its own, no index (looked up with message_id only).
--
-- routed_message_ids is keyed by (message_id, sender_id), the messageId first, so that a
-- look-up by messageId alone still uses the key. sender_id is '' where the sender is not
-- known: a message routed before this migration, or normalised by a plugin that does not
-- say. Those rows keep their messageId for the messages of unknown sender only; a message
-- whose sender is known is never a duplicate of them. That is the safer error: were the
-- old rows to match every sender, a registry numbering 1, 2, 3 ... would have each message
-- whose number another registry used before the upgrade taken for a duplicate and never
-- sent, for as long as the old numbers last. Matching none, an old message sent again
-- after the upgrade with other bytes (the same bytes from the same source are still a
-- duplicate by their digest, input_originals) reaches the partner a second time, under
-- the same (senderId, messageId) pair, which the partner can tell as a repeat.

ALTER TABLE messages ADD COLUMN sender_id TEXT;

CREATE TABLE routed_sender_ids (
    message_id TEXT    NOT NULL,
    sender_id  TEXT    NOT NULL,              -- the header senderId; '': not known
    message    INTEGER NOT NULL REFERENCES messages (id),
    PRIMARY KEY (message_id, sender_id)
);
INSERT INTO routed_sender_ids (message_id, sender_id, message)
    SELECT message_id, '', message FROM routed_message_ids;
DROP TABLE routed_message_ids;
ALTER TABLE routed_sender_ids RENAME TO routed_message_ids;
