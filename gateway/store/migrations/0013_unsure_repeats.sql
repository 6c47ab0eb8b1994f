-- How often an attempt was unsure (its files could not be made durable) and repeated as
-- the same attempt: each repeat waits twice as long as the one before, up to the retry
-- policy's maximum, and a restart keeps that schedule. An attempt made before this
-- migration starts from none.
ALTER TABLE attempts ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
