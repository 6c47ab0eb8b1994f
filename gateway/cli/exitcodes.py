"""Named exit codes of the ``ech-gateway`` command."""

OK = 0
#: validate found an invalid file; a check failed; an operation was refused.
FAILED = 1
#: the configuration is invalid (or the command line is).
CONFIG = 2
#: what was asked for does not exist (message, delivery, database).
NOT_FOUND = 3
