"""The user's keymap: a TOML file that remaps binding ids (the ids `?` lists) to keys, read once at startup.

    # $XDG_CONFIG_HOME/contree-tui/keymap.toml (or `contree-tui --keymap PATH`)
    [keys]
    rollback = "b"                # one key
    forward = "B,ctrl+y"          # several, comma-separated (or a list: ["B", "ctrl+y"])
    tree.down = "j,down,ctrl+n"   # dotted ids may stay bare: TOML nests them, they are joined back here

Keys are Textual key names (`ctrl+x`, `f5`, `question_mark` or `?`). A file that cannot be read or parsed is
rejected whole, so a typo never leaves half the keys remapped; ids no binding has are reported by the app,
which knows the bindings. No Textual import here: this is plain file parsing.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

APP_DIR = "contree-tui"
FILE_NAME = "keymap.toml"


class KeymapError(Exception):
    """The keymap file cannot be used; `str()` says why, naming the file."""


@dataclass(frozen=True)
class Keymap:
    """Binding id → keys (`"b,ctrl+z"`), and where it came from (None: no file)."""

    keys: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    def unknown(self, known_ids: Iterable[str]) -> list[str]:
        """The ids in this keymap that no binding has (a typo, or a binding that was renamed)."""
        known = set(known_ids)
        return sorted(binding_id for binding_id in self.keys if binding_id not in known)


def default_keymap_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / APP_DIR / FILE_NAME


def _flatten(table: Mapping[str, object], prefix: str = "") -> Iterable[tuple[str, object]]:
    """`tree.down = "j"` parses as {"tree": {"down": "j"}}: give back ("tree.down", "j")."""
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _keys_value(binding_id: str, value: object, path: Path) -> str:
    if isinstance(value, str):
        keys = [key.strip() for key in value.split(",")]
    elif isinstance(value, list) and all(isinstance(key, str) for key in value):
        keys = [key.strip() for key in value]
    else:
        raise KeymapError(f"{path}: keys.{binding_id} must be a string like \"b,ctrl+z\" or a list of keys, "
                          f"not {type(value).__name__}")
    if not keys or not all(keys) or any(" " in key for key in keys):
        raise KeymapError(f"{path}: keys.{binding_id} = {value!r} is not a comma-separated list of key names")
    return ",".join(keys)


def parse_keymap(text: str, path: Path) -> Keymap:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeymapError(f"{path} is not valid TOML: {exc}") from None
    stray = sorted(name for name in document if name != "keys")
    if stray:
        raise KeymapError(f"{path}: unexpected {', '.join(stray)}; bindings go in a [keys] table "
                          f"(binding-id = \"key,key\")")
    table = document.get("keys", {})
    if not isinstance(table, dict):
        raise KeymapError(f"{path}: keys must be a table ([keys])")
    return Keymap({binding_id: _keys_value(binding_id, value, path) for binding_id, value in _flatten(table)},
                  path)


def read_keymap(path: str | Path | None = None) -> Keymap:
    """The keymap in `path` (which must exist), or in the default place (which may not: then no remaps)."""
    explicit = path is not None
    where = Path(path).expanduser() if path is not None else default_keymap_path()
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise KeymapError(f"keymap file {where} does not exist") from None
        return Keymap()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeymapError(f"cannot read keymap file {where}: {exc}") from None
    return parse_keymap(text, where)
