"""The staged build's vocabulary (seed 003): its stages, their checkpoints and default commands. Apart from
staged_build.py so the CLI's grammar can show them without loading the executor."""

DEFAULT_INSTALL = "pip install -e ."
DEFAULT_BUILD = "python -m build"
DEFAULT_TEST = "pytest"
STAGES = ("setup", "deps", "build", "test")
CHECKPOINTS = {"deps": "deps-installed", "build": "build-complete"}  # stage -> its checkpoint's name
RESUMABLE = {name: stage for stage, name in CHECKPOINTS.items()}  # checkpoint name -> the stage that made it

__all__ = ["CHECKPOINTS", "DEFAULT_BUILD", "DEFAULT_INSTALL", "DEFAULT_TEST", "RESUMABLE", "STAGES"]
