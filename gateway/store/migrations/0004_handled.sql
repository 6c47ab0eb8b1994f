-- Quarantined input an operator has dealt with: marked handled with a note, or
-- corrected by a resubmitted input (`messages handle`, `messages resubmit`).
-- `status` counts quarantined messages without a row here as needing attention.

CREATE TABLE handled (
    message    INTEGER PRIMARY KEY REFERENCES messages (id),
    at         REAL    NOT NULL,
    note       TEXT    NOT NULL,
    correction INTEGER REFERENCES messages (id)   -- the resubmitted input that corrects it
);
