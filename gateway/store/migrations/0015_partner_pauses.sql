-- Partners paused by a fault on this machine (their transport's outbox missing, read-only
-- or full): one row while the pause lasts, from the first outcome that met the fault
-- (partner.paused) to the probe that got through (partner.resumed). Kept here, not only in
-- the daemon's memory, so that a restart keeps the partner paused and its resumption
-- still takes the whole pause off the max_age of its deliveries, and so that `status`
-- can tell. A pause begun before this migration is not known: it ends with the restart.
CREATE TABLE partner_pauses (
    partner TEXT PRIMARY KEY,
    since   REAL NOT NULL,                 -- store time the pause began
    error   TEXT NOT NULL                  -- the fault that began it
);
