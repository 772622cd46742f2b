"""``python -m face3d_nb``: the ``face3d-nb`` command, for environments without its script on the path."""

import sys

from .cli import main

sys.exit(main())
