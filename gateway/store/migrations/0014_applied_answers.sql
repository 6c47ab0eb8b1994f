-- A partner's answers (eventReports) applied to the deliveries they answer: each once.
-- A message processed again (assigned after review, replayed), or the same report
-- stored again as a message of its own (the same messageId from the same partner),
-- finds its answer here and settles nothing a second time.
CREATE TABLE applied_answers (
    message    INTEGER PRIMARY KEY REFERENCES messages (id),
    partner    TEXT    NOT NULL,
    message_id TEXT,                       -- the answer's eCH-0223 messageId
    at         REAL    NOT NULL
);
CREATE UNIQUE INDEX applied_answers_message_id ON applied_answers (partner, message_id)
    WHERE message_id IS NOT NULL;
-- The answers applied before: the journal names each (message.answer).
INSERT OR IGNORE INTO applied_answers (message, partner, message_id, at)
SELECT j.message, json_extract(j.detail, '$.partner'), m.message_id, min(j.at)
FROM journal j JOIN messages m ON m.id = j.message
WHERE j.event = 'message.answer' AND json_extract(j.detail, '$.partner') IS NOT NULL
GROUP BY j.message ORDER BY j.message;
