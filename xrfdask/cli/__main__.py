"""``python -m xrfdask.cli`` runs the ``xrfdask`` command (as ``python -m xrfdask`` does)."""

import sys

from xrfdask.cli import main

sys.exit(main())
