"""`python -m contree_tui.cli`, the way the embedded engine is started (client/embedded.py) and tests run the
program: the whole `contree-tui` program (main.py), the TUI included, as before cli/ was a package."""

import sys

from contree_tui.main import main

sys.exit(main())
