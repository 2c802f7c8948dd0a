"""``python -m xrfdask`` runs the ``xrfdask`` command."""

import sys

from xrfdask.cli import main

sys.exit(main())
