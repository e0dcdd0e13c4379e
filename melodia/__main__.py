"""``python -m melodia``: the command line, as ``melodia``."""

import sys

from melodia.cli import main

sys.exit(main())
