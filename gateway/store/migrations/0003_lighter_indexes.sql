-- Indexes that cost more than they served (store benchmark, CPU per message).
-- messages_state was rewritten on every state change (about 20 us a message);
-- the only lookup by state is for inputs still 'received' (recovery at start).
DROP INDEX messages_state;
CREATE INDEX messages_received ON messages (id) WHERE state = 'received';
-- Receipts are looked up by delivery (`messages show`), never by attempt_ref
-- (attempts has it): index what is asked for, in insertion order.
DROP INDEX receipts_ref;
CREATE INDEX receipts_delivery ON receipts (delivery);
