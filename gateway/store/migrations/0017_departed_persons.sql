-- Persons who left the register: a registry's moveOut, death or deletedinRegister event
-- marks its person departed (when: departed_at, store time), and any later event of a
-- registry about them that is not a correction clears the mark again (a moveIn, say). A
-- person departed for longer than `[retention] keep`, none of whose messages still has its
-- body, is deleted by retention: their state, keys, date of birth and message links (their
-- cases stay, without the person). The states of residents stay: the events that follow
-- need them.
ALTER TABLE persons ADD COLUMN departed_at REAL;
CREATE INDEX persons_departed ON persons (departed_at) WHERE departed_at IS NOT NULL;
