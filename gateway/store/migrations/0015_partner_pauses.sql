-- Partners paused by a fault on one node's machine (that node's transport outbox missing,
-- read-only or full): one row per node and partner while the pause lasts, from the first
-- outcome that met the fault (partner.paused) to that node's probe that got through
-- (partner.resumed). Kept per node: a fault on one machine pauses the partner on that node
-- only, and only that node's probe ends it; another node keeps sending to the partner.
-- Kept here, not only in the daemon's memory, so that a restart keeps the partner paused
-- and its resumption still takes the whole pause off the max_age of its deliveries, and so
-- that `status` can tell. A pause begun before this migration is not known: it ends with
-- the restart.
CREATE TABLE partner_pauses (
    node    TEXT NOT NULL,                 -- the node whose machine met the fault ([gateway] node_id)
    partner TEXT NOT NULL,
    since   REAL NOT NULL,                 -- store time the pause began
    error   TEXT NOT NULL,                 -- the fault that began it
    PRIMARY KEY (node, partner)
);
