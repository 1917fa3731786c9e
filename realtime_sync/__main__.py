"""``python -m realtime_sync``: the command line (see :mod:`realtime_sync._cli`)."""

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
