"""``python -m chaos.gameday`` (the same as the ``gameday`` console script)."""

import sys

from chaos.gameday.cli import main

sys.exit(main())
