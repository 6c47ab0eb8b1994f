"""``python -m gateway`` runs the command line."""

import sys

from gateway.entry import main

if __name__ == "__main__":
    sys.exit(main())
