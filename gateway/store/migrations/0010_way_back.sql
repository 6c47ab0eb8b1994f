-- The way back: partners' messages matched to residents, waiting for review, and
-- linked to their cases (the conversation about one business process with one partner).

-- A person's date of birth (ISO; a year or year-month where only that is known), for
-- matching by official name + first name + date of birth: the few persons born on a
-- day are read and their names compared.
CREATE TABLE person_births (
    birth   TEXT    NOT NULL,
    person  INTEGER NOT NULL REFERENCES persons (id),
    PRIMARY KEY (birth, person)
) WITHOUT ROWID;
CREATE INDEX person_births_person ON person_births (person);
INSERT OR IGNORE INTO person_births (birth, person)
SELECT trim(b), id FROM (
    SELECT id, coalesce(
        json_extract(state, '$.identification.date_of_birth.year_month_day'),
        json_extract(state, '$.identification.date_of_birth.year_month'),
        json_extract(state, '$.identification.date_of_birth.year'),
        json_extract(state, '$.birth_data.date_of_birth.year_month_day'),
        json_extract(state, '$.birth_data.date_of_birth.year_month'),
        json_extract(state, '$.birth_data.date_of_birth.year')) AS b
    FROM persons) WHERE b IS NOT NULL;

-- A partner's message waiting for an operator: its candidates, and whom the operator chose.
CREATE TABLE reviews (
    message     INTEGER PRIMARY KEY REFERENCES messages (id),
    partner     TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    candidates  TEXT    NOT NULL,          -- JSON: [{"person", "keys", "name", "born"}]
    assigned    TEXT,                      -- JSON: the keys the operator assigned
    assigned_by TEXT,
    at          REAL    NOT NULL
);

CREATE TABLE cases (
    id                  INTEGER PRIMARY KEY,
    partner             TEXT    NOT NULL,
    person              INTEGER REFERENCES persons (id),
    business_process_id TEXT,
    our_reference       TEXT,              -- our ourBusinessReferenceId (their yourBusiness...)
    their_reference     TEXT,              -- the partner's ourBusinessReferenceId
    opened_at           REAL    NOT NULL,
    updated_at          REAL    NOT NULL
);
CREATE INDEX cases_process ON cases (partner, business_process_id)
    WHERE business_process_id IS NOT NULL;
CREATE INDEX cases_ours ON cases (partner, our_reference) WHERE our_reference IS NOT NULL;
CREATE INDEX cases_theirs ON cases (partner, their_reference) WHERE their_reference IS NOT NULL;
CREATE INDEX cases_person ON cases (person);

CREATE TABLE case_messages (
    case_id   INTEGER NOT NULL REFERENCES cases (id),
    message   INTEGER NOT NULL REFERENCES messages (id),
    direction TEXT    NOT NULL,            -- out: to the partner; in: from it
    at        REAL    NOT NULL,
    PRIMARY KEY (case_id, message)
) WITHOUT ROWID;
CREATE INDEX case_messages_message ON case_messages (message);
