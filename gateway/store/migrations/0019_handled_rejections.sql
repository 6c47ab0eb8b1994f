-- A partner's rejection (a negative eventReport) an operator has dealt with: the
-- rejected delivery marked handled with a note (`messages handle`). `status` counts
-- rejected deliveries without a row here as needing attention; a replay of the
-- delivery ends its rejection too (it is `replayed`, its copy a delivery of its own).

CREATE TABLE handled_rejections (
    delivery INTEGER PRIMARY KEY REFERENCES deliveries (id),
    at       REAL    NOT NULL,
    note     TEXT    NOT NULL
);
