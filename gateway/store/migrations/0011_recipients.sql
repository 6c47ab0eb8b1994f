-- Receipts are correlated by content: the attempt's ref (sedex: the envelope messageId)
-- and whom it was addressed to (sedex: the recipientId). One sedex client's receipts
-- folder may hold the receipts of several partners, and a receipt for our ref but
-- another recipient settles nothing.
-- attempts.recipient: whom the transport addressed, as it reported when the send was
-- recorded. NULL where that is not known (attempts recorded before this migration,
-- transports that do not say, a send not recorded yet): the ref alone decides.
-- receipts.recipient: whom the receipt names (NULL: it names nobody).
ALTER TABLE attempts ADD COLUMN recipient TEXT;
ALTER TABLE receipts ADD COLUMN recipient TEXT;
