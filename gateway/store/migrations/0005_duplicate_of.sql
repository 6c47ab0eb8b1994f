-- A duplicate names the message it duplicates (the same bytes, or the same eCH messageId).
ALTER TABLE messages ADD COLUMN duplicate_of INTEGER REFERENCES messages (id);
