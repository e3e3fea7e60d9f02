"""The staged build's vocabulary (seed 003): its stages, their checkpoints and default commands. Apart from
staged_build.py so the CLI's grammar can show them without loading the executor."""

# Seed 003's defaults (`pip install -e .`, `python -m build`, `pytest`) spelled through python3: PEP 394 has every
# Unix Python provide `python3`, while `python` is absent from Debian's and Ubuntu's (the bootstrapped image's
# included) unless python-is-python3 is installed; `-m` runs the pip and pytest of that same interpreter, where a
# bare `pytest` or `pip` may be another's or not on PATH (pip --user's ~/.local/bin).
DEFAULT_INSTALL = "python3 -m pip install -e ."
DEFAULT_BUILD = "python3 -m build"
DEFAULT_TEST = "python3 -m pytest"
STAGES = ("setup", "deps", "build", "test")
CHECKPOINTS = {"deps": "deps-installed", "build": "build-complete"}  # stage -> its checkpoint's name
RESUMABLE = {name: stage for stage, name in CHECKPOINTS.items()}  # checkpoint name -> the stage that made it

__all__ = ["CHECKPOINTS", "DEFAULT_BUILD", "DEFAULT_INSTALL", "DEFAULT_TEST", "RESUMABLE", "STAGES"]
