-- Retention (`[retention] keep`): a settled message that has not changed for that long
-- loses its bodies (the input, its eCH-0223 text, its attachments, each delivery's
-- payload, its receipts' bytes); its records and the journal stay, so its history
-- can still be told and verified. pruned_at: when (NULL: the message is whole).
ALTER TABLE messages ADD COLUMN pruned_at REAL;
-- The whole messages, for retention to go through without passing the pruned ones
-- (its scan would otherwise grow with the store's age).
CREATE INDEX messages_whole ON messages (id) WHERE pruned_at IS NULL;
