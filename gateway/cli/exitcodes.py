"""Named exit codes of the ``ech-gateway`` command."""

OK = 0
#: validate found an invalid file; a check failed; an operation was refused; ``prune``
#: could not delete in an archive folder (it failed, or did not answer in time).
FAILED = 1
#: ``status``: something needs an operator (a partner paused by a fault on this machine,
#: a partner failing for longer than its failing_after, dead letters, rejections and
#: quarantined input not yet handled, deliveries to review, overdue receipts).
#: The same number as FAILED on purpose: a monitoring check treats anything but 0 as a finding.
ATTENTION = 1
#: the configuration is invalid (or the command line is), or the environment does not fit it
#: (``run``: a plugin fails to load, worker processes cannot start).
CONFIG = 2
#: what was asked for does not exist (message, delivery, database), or a file named on the
#: command line cannot be read (``validate``, ``rules explain``, ``map-test``, ``send``,
#: ``messages resubmit``).
NOT_FOUND = 3
#: a messageId names several messages; nothing was done (give a row id).
AMBIGUOUS = 4
#: the reader of our output went away (``ech-gateway messages list | head -1``): 128 + SIGPIPE,
#: what a shell reports for any tool a closed pipe stops.
CLOSED_PIPE = 141
#: the database was deleted or replaced, or does not reach its journal anchor
#: (``run`` refuses to start; see ``journal verify``).
STORE_LOST = 5
#: the store cannot write now: another program held the database's write lock for longer
#: than ``[store] busy_timeout`` (a tool with it open for writing), or its disk is full. What
#: the command was doing then is not written; the same command may succeed later.
UNAVAILABLE = 6

#: The codes from least to most severe. A command acting on several items (``messages replay
#: A B``) exits with the most severe of theirs (:func:`worst`), whatever their order: an item
#: refused (``FAILED``: done, but the outcome needs a person, or not possible in its state)
#: weighs less than an ID that names no message (``NOT_FOUND``) or several (``AMBIGUOUS``),
#: for which nothing was done at all; then what stops every item (``UNAVAILABLE``, ``CONFIG``,
#: ``STORE_LOST``).
SEVERITY = (OK, FAILED, NOT_FOUND, AMBIGUOUS, UNAVAILABLE, CONFIG, STORE_LOST)


def worst(*codes: int) -> int:
    """The most severe of ``codes`` (in the order of :data:`SEVERITY`)."""
    return max(codes, key=SEVERITY.index)
