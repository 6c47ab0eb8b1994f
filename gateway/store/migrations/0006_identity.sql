-- The database's identity: a random id made once, when the database is made.
-- The journal anchor beside the database names it, so a database replaced by
-- another one (an older backup, an empty file) is told apart from the original.
CREATE TABLE store_identity (
    id TEXT NOT NULL
);
INSERT INTO store_identity (id) VALUES (lower(hex(randomblob(16))));
