"""``python -m robolearn`` is the ``robolearn`` command."""

import sys

from robolearn.cli.main import main

sys.exit(main())
