"""Calling a pipeline's Python function from a command line: the codec for its arguments (driven by the
function's type hints) and the runner that imports the pipeline file, decodes the arguments, calls the function
and reports its return value.

This one file is both halves. The host imports it to check and encode a node's arguments when the node is defined
(functions.py); the executor uploads the file itself into the sandbox, where `python3 function_runner.py FILE FUNC
--n=30` decodes them with the same code. So it must stay stdlib-only and importable on Python 3.9+: the image
needs python3 and nothing installed.

Argument format (one argv item per parameter, so a node's command reads like a CLI call):
  --name=TEXT     the value encoded per its hint (below)
  --name / --no-name   a bool
  --none-name     None, for a `T | None` parameter ('-' cannot occur in an identifier, so these never collide)
  TEXT            positionals fill the parameters in order
Encodings: str as is; int, float by str(); bytes as base64; Path as its text; an Enum by member name; date and
datetime in ISO 8601; a class with to_str/from_str through them; list[T], tuple, dict, dataclasses (and any
hint nesting those) as JSON, items encoded per their own hint. No hint: the text, as a str.

The return value goes to stdout as one marked line (RESULT_MARK + JSON) after the function's own output: the
sandbox's stdout is the only channel that reaches the host for every run, disposable ones included.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
import traceback
import types
import typing
import zlib
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

# client/step_result.py's mark, copied: this file runs alone in the sandbox (a test holds the two equal)
RESULT_MARK = "\x1e@contree-pipeline-result "  # \x1e (record separator) never starts a line of ordinary text
EXIT_BAD_CALL = 2  # the command line did not fit the function (as argparse exits)
STUB_ROOT = "contree_tui"


class ArgumentError(TypeError):
    """A value that does not fit its parameter's hint, or a hint this codec cannot carry. str() is the message."""


_MISSING = object()
_NONE_TYPE = type(None)
_JSON_ORIGINS = (list, tuple, dict)


def _optional_inner(hint: Any) -> Any:
    """T for `T | None` / Optional[T]; _MISSING for any other hint."""
    if typing.get_origin(hint) in (typing.Union, getattr(types, "UnionType", typing.Union)):
        args = [a for a in typing.get_args(hint) if a is not _NONE_TYPE]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return _MISSING


def _has_str_codec(hint: Any) -> bool:
    return isinstance(hint, type) and callable(getattr(hint, "to_str", None)) and callable(
        getattr(hint, "from_str", None))


def describe_hint(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def check_hint(hint: Any, where: str) -> None:
    """Raise ArgumentError if values of `hint` cannot be carried on a command line."""
    inner = _optional_inner(hint)
    if inner is not _MISSING:
        check_hint(inner, where)
        return
    origin = typing.get_origin(hint)
    if origin in (list, tuple, dict):
        for arg in typing.get_args(hint):
            if arg is not Ellipsis:
                check_hint(arg, where)
        return
    if hint in (str, int, float, bool, bytes, datetime.date, datetime.datetime, Path, PurePath) or hint is Any:
        return
    if isinstance(hint, type) and (issubclass(hint, (enum.Enum, PurePath, list, tuple, dict))
                                   or dataclasses.is_dataclass(hint) or _has_str_codec(hint)):
        return
    raise ArgumentError(f"{where}: the hint {describe_hint(hint)} is not supported (use int, float, str, bool, bytes, "
                        "Path, an Enum, date, datetime, list[T], tuple, dict, a dataclass, T | None, or a class "
                        "with to_str/from_str)")


def _type_error(where: str, value: Any, hint: Any) -> ArgumentError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ArgumentError(f"{where}={shown} is a {type(value).__name__}, but its hint is {describe_hint(hint)}")


def to_json(value: Any, hint: Any, where: str) -> Any:
    """`value` as plain JSON data, checked against `hint` on the way (ArgumentError naming `where`)."""
    inner = _optional_inner(hint)
    if inner is not _MISSING:
        return None if value is None else to_json(value, inner, where)
    if hint is Any:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ArgumentError(f"{where}={value!r} is not JSON data (its hint is Any)") from None
        return value
    origin = typing.get_origin(hint) or hint
    args = typing.get_args(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise _type_error(where, value, hint)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(where, value, hint)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(where, value, hint)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _type_error(where, value, hint)
        return value
    if hint is bytes:
        if not isinstance(value, (bytes, bytearray)):
            raise _type_error(where, value, hint)
        return base64.b64encode(bytes(value)).decode("ascii")
    if hint is datetime.datetime:
        if not isinstance(value, datetime.datetime):
            raise _type_error(where, value, hint)
        return value.isoformat()
    if hint is datetime.date:
        if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
            raise _type_error(where, value, hint)  # a datetime would lose its time on the way
        return value.isoformat()
    if isinstance(hint, type) and issubclass(hint, PurePath):
        if not isinstance(value, (str, PurePath)):
            raise _type_error(where, value, hint)
        return str(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if not isinstance(value, hint):
            raise _type_error(where, value, hint)
        return value.name
    if _has_str_codec(hint):
        if not isinstance(value, hint):
            raise _type_error(where, value, hint)
        return value.to_str()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise _type_error(where, value, hint)
        hints = typing.get_type_hints(hint)
        return {f.name: to_json(getattr(value, f.name), hints.get(f.name, Any), f"{where}.{f.name}")
                for f in dataclasses.fields(hint)}
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(where, value, hint)
        item = args[0] if args else Any
        return [to_json(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, tuple):
            raise _type_error(where, value, hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return [to_json(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        if args and len(args) != len(value):
            raise ArgumentError(f"{where} has {len(value)} items; its hint {describe_hint(hint)} has {len(args)}")
        return [to_json(v, args[i] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(where, value, hint)
        key, item = args if args else (str, Any)
        out = {}
        for k, v in value.items():
            encoded = to_json(k, key, f"{where} key")
            out[encoded if isinstance(encoded, str) else json.dumps(encoded)] = to_json(v, item, f"{where}[{k!r}]")
        return out
    raise ArgumentError(f"{where}: the hint {describe_hint(hint)} is not supported")


def from_json(data: Any, hint: Any, where: str) -> Any:
    """The inverse of to_json."""
    inner = _optional_inner(hint)
    if inner is not _MISSING:
        return None if data is None else from_json(data, inner, where)
    if hint is Any:
        return data
    origin = typing.get_origin(hint) or hint
    args = typing.get_args(hint)
    try:
        if hint in (bool, str):
            if not isinstance(data, hint):
                raise ValueError(f"expected a {hint.__name__}")
            return data
        if hint is int:
            return int(data) if isinstance(data, str) else _exact(data, int)
        if hint is float:
            return float(data)
        if hint is bytes:
            return base64.b64decode(data, validate=True)
        if hint is datetime.datetime:
            return datetime.datetime.fromisoformat(data)
        if hint is datetime.date:
            return datetime.date.fromisoformat(data)
        if isinstance(hint, type) and issubclass(hint, PurePath):
            return hint(data)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return hint[data]
        if _has_str_codec(hint):
            return hint.from_str(data)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            return hint(**{k: from_json(v, hints.get(k, Any), f"{where}.{k}") for k, v in data.items()})
        if origin is list:
            return [from_json(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(data)]
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(from_json(v, args[0], f"{where}[{i}]") for i, v in enumerate(data))
            return tuple(from_json(v, args[i] if args else Any, f"{where}[{i}]") for i, v in enumerate(data))
        if origin is dict:
            key, item = args if args else (str, Any)
            return {_dict_key(k, key, where): from_json(v, item, f"{where}[{k!r}]") for k, v in data.items()}
    except ArgumentError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ArgumentError(f"{where}: cannot read {data!r} as {describe_hint(hint)} ({exc})") from None
    raise ArgumentError(f"{where}: the hint {describe_hint(hint)} is not supported")


def _exact(data: Any, kind: type) -> Any:
    if isinstance(data, bool) or not isinstance(data, kind):
        raise ValueError(f"expected a {kind.__name__}")
    return data


def _dict_key(key: str, hint: Any, where: str) -> Any:
    if hint is str or hint is Any:
        return key
    try:
        return from_json(key, hint, f"{where} key")
    except ArgumentError:
        return from_json(json.loads(key), hint, f"{where} key")


def _is_json_hint(hint: Any) -> bool:
    inner = _optional_inner(hint)
    hint = hint if inner is _MISSING else inner
    origin = typing.get_origin(hint) or hint
    return (origin in _JSON_ORIGINS or hint is Any
            or (isinstance(hint, type) and dataclasses.is_dataclass(hint)))


def encode_value(value: Any, hint: Any, where: str) -> str:
    """One argument as text for the command line (None handled by the caller)."""
    data = to_json(value, hint, where)
    return json.dumps(data, separators=(",", ":"), sort_keys=True) if _is_json_hint(hint) else str(data)


def decode_value(text: str, hint: Any, where: str) -> Any:
    if _is_json_hint(hint):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ArgumentError(f"{where}: {text!r} is not JSON ({exc})") from None
        return from_json(data, hint, where)
    return from_json(text, hint, where)


# ---- the function's signature ---------------------------------------------------------------------------------

def parameter_hints(func: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    """The signature and the hint of every parameter (absent: no hint). Raises ArgumentError for *args, **kwargs
    and unsupported hints."""
    name = getattr(func, "__name__", repr(func))
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:  # noqa: BLE001  (a hint that does not evaluate: a name missing at run time)
        raise ArgumentError(f"{name}(): cannot read its type hints ({type(exc).__name__}: {exc})") from None
    signature = inspect.signature(func)
    found = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ArgumentError(f"{name}(): *{param.name} / **{param.name} parameters cannot be given on a command "
                                "line; name each parameter")
        if param.name in hints:
            check_hint(hints[param.name], f"{name}() parameter {param.name!r}")
            found[param.name] = hints[param.name]
    return signature, found


def encode_call(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """The argv that makes the runner call `func(*args, **kwargs)`: checked against the hints, ArgumentError
    naming the parameter otherwise. Only what was passed is encoded; defaults stay the function's."""
    name = func.__name__
    signature, hints = parameter_hints(func)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ArgumentError(f"{name}(): {exc}") from None
    argv = []
    for pname, value in bound.arguments.items():
        where = f"{name}() argument {pname}"
        if pname not in hints:
            argv.append(f"--{pname}={value}")  # no hint: a str, as Conducto does (the node's description says so)
        elif value is None and _optional_inner(hints[pname]) is not _MISSING:
            argv.append(f"--none-{pname}")
        elif hints[pname] is bool or _optional_inner(hints[pname]) is bool:
            to_json(value, bool, where)
            argv.append(f"--{pname}" if value else f"--no-{pname}")
        else:
            argv.append(f"--{pname}={encode_value(value, hints[pname], where)}")
    return argv


def decode_call(func: Callable[..., Any], argv: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """(args, kwargs) for `func` from the argv encode_call makes (positionals allowed, as a user would type)."""
    name = func.__name__
    signature, hints = parameter_hints(func)
    params = list(signature.parameters.values())
    kwargs: dict[str, Any] = {}
    positional: list[str] = []
    known = {p.name for p in params}
    for item in argv:
        if not item.startswith("--"):
            positional.append(item)
            continue
        flag, has_value, text = item[2:].partition("=")
        if not has_value and flag.startswith("none-") and flag[5:] in known:
            pname = flag[5:]
            if _optional_inner(hints.get(pname)) is _MISSING:
                raise ArgumentError(f"{name}(): --{flag}: parameter {pname!r} is not optional (its hint is "
                                    f"{describe_hint(hints.get(pname, str))})")
            kwargs[pname] = None
            continue
        if not has_value and flag.startswith("no-") and flag[3:] in known:
            pname, has_value, text = flag[3:], True, "false"
        elif not has_value and flag in known:
            pname, has_value, text = flag, True, "true"
        else:
            pname = flag.replace("-", "_")
        if pname not in known:
            raise ArgumentError(f"{name}(): unknown argument --{flag} (parameters: {', '.join(known) or 'none'})")
        kwargs[pname] = _decode_param(text, hints.get(pname), f"{name}() argument {pname}")
    free = [p for p in params if p.name not in kwargs]
    if len(positional) > len(free):
        raise ArgumentError(f"{name}(): {len(positional) - len(free)} positional argument(s) too many "
                            f"({len(params)} parameter(s))")
    for param, text in zip(free, positional):  # noqa: B905  (strict= is 3.10+; lengths checked above)
        kwargs[param.name] = _decode_param(text, hints.get(param.name), f"{name}() argument {param.name}")
    args = [kwargs.pop(p.name) for p in params if p.kind is p.POSITIONAL_ONLY and p.name in kwargs]
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ArgumentError(f"{name}(): {exc}") from None
    return args, kwargs


def _decode_param(text: str, hint: Any, where: str) -> Any:
    if hint is None:
        return text
    inner = _optional_inner(hint)
    if hint is bool or inner is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "y", "on"):
            return True
        if lowered in ("0", "false", "no", "n", "off"):
            return False
        raise ArgumentError(f"{where}: {text!r} is not a bool (true/false)")
    return decode_value(text, hint, where)


def return_hint(func: Callable[..., Any]) -> Any:
    """The function's return hint, for encode_result (none, or one that does not evaluate: the value goes as
    JSON or its repr anyway)."""
    try:
        return typing.get_type_hints(func).get("return", _MISSING)
    except Exception:  # noqa: BLE001  (a hint naming what is missing at run time)
        return _MISSING


def encode_result(value: Any, hint: Any) -> str:
    """The return value as the JSON on the result line: {"json": data} when it fits JSON, else {"repr": text}."""
    try:
        data = to_json(value, hint, "return value") if hint is not _MISSING else value
        return json.dumps({"json": data}, sort_keys=True)
    except (ArgumentError, TypeError, ValueError):
        return json.dumps({"repr": repr(value)})


# ---- importing the pipeline file --------------------------------------------------------------------------------

class _Stub:
    """Stands for the pipeline classes where contree-tui is not installed (the sandbox): a pipeline file imports
    them at its top, but only the function being called runs here, never the function that builds the tree."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __class_getitem__(cls, item: Any) -> Any:
        return cls


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `contree_tui` and any module below it as a stub whose every attribute is _Stub, so whatever way
    the pipeline file imports the pipeline classes (`from contree_tui.pipeline.nodes import Serial`, `import
    contree_tui.pipeline as cp`) works where contree-tui is not installed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname == STUB_ROOT or fullname.startswith(STUB_ROOT + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []  # type: ignore[attr-defined]
        module.__getattr__ = lambda attr: _Stub  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _install_stubs() -> None:
    try:
        import contree_tui.pipeline  # noqa: F401  (the host, or an image with contree-tui: the real thing)
        return
    except ImportError:
        pass
    if not any(isinstance(finder, _StubFinder) for finder in sys.meta_path):
        sys.meta_path.append(_StubFinder())


def load_module(path: str) -> types.ModuleType:
    """Import a Python file as a module (its folder on sys.path, so its own imports work), once per process."""
    full = os.path.realpath(path)
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and os.path.realpath(module.__file__) == full:  # type: ignore[arg-type]
            return module
    if not os.path.isfile(full):
        raise FileNotFoundError(f"{path}: no such file")
    _install_stubs()
    folder = os.path.dirname(full)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # unique per file: two pipeline files of one name (two projects' pipeline.py) must not replace each other
    name = f"contree_pipeline_{Path(full).stem}_{zlib.crc32(full.encode()):08x}".replace("-", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, full)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def find_function(path: str, func_name: str) -> Callable[..., Any]:
    module = load_module(path)
    func = getattr(module, func_name, None)
    if func is None or not callable(func):
        public = sorted(n for n, v in vars(module).items()
                        if inspect.isfunction(v) and not n.startswith("_") and v.__module__ == module.__name__)
        raise ArgumentError(f"{path} has no function {func_name!r} (its functions: {', '.join(public) or 'none'})")
    return func  # type: ignore[no-any-return]


def call(path: str, func_name: str, argv: list[str]) -> Any:
    """Import `path`, decode `argv` per the function's hints and call it; awaits a coroutine's result."""
    func = find_function(path, func_name)
    args, kwargs = decode_call(func, argv)
    result = func(*args, **kwargs)
    if inspect.iscoroutine(result):
        import asyncio
        result = asyncio.run(result)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2:
        print("usage: function_runner.py FILE FUNC [--param=value ...]", file=sys.stderr)
        return EXIT_BAD_CALL
    path, func_name, rest = argv[0], argv[1], argv[2:]
    try:
        func = find_function(path, func_name)
        args, kwargs = decode_call(func, rest)
    except (ArgumentError, FileNotFoundError, ImportError) as exc:
        print(f"contree pipeline: {exc}", file=sys.stderr)
        return EXIT_BAD_CALL
    try:
        result = func(*args, **kwargs)
        if inspect.iscoroutine(result):
            import asyncio
            result = asyncio.run(result)
    except Exception:  # noqa: BLE001  (the step failed: its traceback is its log, exit 1 its status)
        traceback.print_exc()
        return 1
    hint = return_hint(func)
    sys.stdout.flush()
    if result is not None:
        # found by the host wherever it lands (a function may leave a partial line): no newline needed before it
        sys.stdout.write(RESULT_MARK + encode_result(result, hint) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
