"""`python -m costmodel.cli`: the `gridcost` command (also how torchrun starts it)."""

import sys

from costmodel.cli import main

sys.exit(main())
