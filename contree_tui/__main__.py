"""`python -m contree_tui`: the `contree-tui` program (main.py)."""

import sys

from contree_tui.main import main

sys.exit(main())
