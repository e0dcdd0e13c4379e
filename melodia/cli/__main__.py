"""``python -m melodia.cli``: the command line."""

import sys

from melodia.cli import main

sys.exit(main())
