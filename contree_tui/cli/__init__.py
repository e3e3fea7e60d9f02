"""The headless face: `contree-tui COMMAND …` parsed (parser.py), each command a coroutine over the client layer
that prints text or `--json` and returns the exit code. Uses client/ only — never tui/ or Textual; the program
that picks this face or the TUI is contree_tui/main.py."""
