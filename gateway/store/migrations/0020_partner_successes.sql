-- When an attempt to each partner last got through (its transport took it: sent, or
-- delivered at once): one row per partner, written once per batch of outcomes, not an
-- index on every delivery. `status` reports a partner as failing while it has deliveries
-- retrying for longer than its failing_after whose last failure came after this time:
-- once the partner takes a delivery again, the reason is gone, though deliveries that
-- failed before still wait for their next attempt. Filled from the deliveries sent so far.
CREATE TABLE partner_successes (
    partner TEXT PRIMARY KEY,
    at      REAL NOT NULL                  -- store time of the last attempt that got through
);
INSERT INTO partner_successes (partner, at)
    SELECT partner, max(sent_at) FROM deliveries WHERE sent_at IS NOT NULL GROUP BY partner;
