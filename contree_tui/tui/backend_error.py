"""The one exception the TUI's backend raises (data.py and the verb calls it mixes in, verb_calls.py), in a
module of its own so both import it from here and neither imports the other."""

from __future__ import annotations


class BackendError(Exception):
    """A failed call; `str()` says why, for the user."""
