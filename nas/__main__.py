"""``python -m nas``: the ``nas`` command line."""

import sys

from nas.cli import main

if __name__ == "__main__":
    sys.exit(main())
