"""A Python function as a pipeline step, on the host side: which functions can be called by name in a sandbox,
their arguments checked and encoded when the node is defined, the command that calls them, and the same call
made here (`call_local`, what `contree-tui call FILE FUNC --n=30` runs to reproduce a step).

In the sandbox the step gets the pipeline file's folder (synced as `contree-tui sync` does, at SANDBOX_DIR, so
the file's own imports work, as Conducto's `copy_dir="."`) and the runner at RUNNER_PATH.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contree_tui.client.step_result import RESULT_MARK
from contree_tui.pipeline import function_runner
from contree_tui.pipeline.function_runner import ArgumentError

SANDBOX_DIR = "/contree-pipeline"  # the pipeline file's folder, synced (client/sync.py: .gitignore, excludes)
RUNNER_PATH = "/.contree-pipeline/function_runner.py"  # outside the folder: no name of the user's can clash
RUNNER_SOURCE = Path(function_runner.__file__)


class FunctionStepError(ArgumentError):
    """A function that cannot be a step, or arguments that do not fit it. str() names the function and the
    parameter."""


@dataclass(frozen=True)
class FunctionCall:
    function: Callable[..., Any]
    file: Path  # the pipeline file that defines it (realpath)
    argv: tuple[str, ...]  # encoded arguments, as the runner reads them
    unhinted: tuple[str, ...]  # parameters without a hint: passed as str

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def display(self) -> str:
        """What the node shows as its command: the host call that reproduces it."""
        return shlex.join(["contree-tui", "call", self.file.name, self.name, *self.argv])

    @property
    def folder(self) -> Path:
        """The folder synced into the sandbox with the step: the pipeline file's (its own imports live there)."""
        return self.file.parent

    def sandbox_command(self) -> str:
        return shlex.join(["python3", RUNNER_PATH, f"{SANDBOX_DIR}/{self.file.name}", self.name, *self.argv])

    @classmethod
    def make(cls, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> FunctionCall:
        file = callable_by_name(function)
        try:
            argv = function_runner.encode_call(function, args, kwargs)
        except ArgumentError as exc:
            raise FunctionStepError(str(exc)) from None
        _signature, hints = function_runner.parameter_hints(function)
        params = inspect.signature(function).parameters
        unhinted = tuple(name for name in params if name not in hints)
        return cls(function, file, tuple(argv), unhinted)


def callable_by_name(function: Callable[..., Any]) -> Path:
    """The file a sandbox can import `function` from by name; FunctionStepError for anything it cannot: lambdas,
    nested functions, methods, builtins, functions typed into an interactive session."""
    name = getattr(function, "__name__", None)
    shown = name or repr(function)
    if not inspect.isfunction(function):
        raise FunctionStepError(f"{shown}: only plain Python functions can be steps (not a {type(function).__name__})")
    if name == "<lambda>":
        raise FunctionStepError("a lambda cannot be a step: the sandbox calls the function by its name; define it "
                                "with def at the top level of the pipeline file")
    if "<locals>" in function.__qualname__ or function.__qualname__ != name:
        raise FunctionStepError(f"{function.__qualname__}: a nested function or method cannot be a step (the sandbox "
                                "imports the pipeline file and calls the function by name); move it to the top "
                                "level of the file")
    module = sys.modules.get(function.__module__)
    source = getattr(module, "__file__", None) if module is not None else None
    if source is None or function.__code__.co_filename.startswith("<"):
        raise FunctionStepError(f"{name}: it was defined in an interactive session ({function.__module__}), "
                                "which no sandbox can import; put it in a .py file")
    if getattr(module, name, None) is not function:
        raise FunctionStepError(f"{name}: {function.__module__}.{name} is not this function (redefined or "
                                "renamed), so the sandbox could not find it by name")
    file = Path(os.path.realpath(function.__code__.co_filename))
    if not file.is_file() or file.suffix != ".py":
        raise FunctionStepError(f"{name}: its source {file} is not a .py file the sandbox can import")
    return file


def describe_call(call: FunctionCall) -> str:
    text = call.display
    if call.unhinted:
        text += f"  (no type hint on {', '.join(call.unhinted)}: passed as str)"
    return text


@dataclass(frozen=True)
class ReturnValue:
    """A function step's return value as the runner reported it: JSON data when it fits, else its repr."""

    data: Any = None
    text: str | None = None  # the repr, for values JSON cannot carry

    def show(self) -> str:
        return self.text if self.text is not None else json.dumps(self.data, sort_keys=True)


def split_result(stdout: bytes) -> tuple[bytes, ReturnValue | None]:
    """The function's own output, and the return value the runner appended (None if it returned None)."""
    mark = RESULT_MARK.encode()
    at = stdout.rfind(mark)
    if at < 0:
        return stdout, None
    line, _, after = stdout[at + len(mark):].partition(b"\n")
    try:
        payload = json.loads(line)
    except ValueError:
        return stdout, None
    value = ReturnValue(payload["json"]) if "json" in payload else ReturnValue(text=str(payload.get("repr")))
    return stdout[:at] + after, value


def call_local(file: str | Path, func: str, argv: list[str]) -> Any:
    """The step's call made on the host: import FILE, decode ARGV per FUNC's hints, call it, return its value."""
    return function_runner.call(str(file), func, list(argv))


__all__ = ["FunctionCall", "FunctionStepError", "ReturnValue", "call_local", "callable_by_name", "describe_call",
           "split_result"]
