"""What the following runs get besides their command: the working directory (`:cd`), environment (`:env`),
whether they leave a snapshot (`:disposable`) and get a network (`:network`). Per session, in memory: they
describe how this session runs, not the folder (the folder's sync setting lives with its position). No Textual."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field


@dataclass
class RunSettings:
    cwd: str | None = None  # None: the sync destination when syncing, else the image's default
    env: dict[str, str] = field(default_factory=dict)
    disposable: bool = False
    networking: bool = True  # `:network off`: the following runs get loopback only

    def cd(self, path: str | None, default: str = "/") -> str | None:
        """Change the working directory (relative to the current one, or `default`); None resets it."""
        if path is None:
            self.cwd = None
            return None
        joined = posixpath.join(self.cwd or default, path)
        self.cwd = posixpath.normpath(joined) if joined.startswith("/") else posixpath.normpath("/" + joined)
        if self.cwd.startswith("//"):
            self.cwd = "/" + self.cwd.lstrip("/")
        return self.cwd

    def update_env(self, set_: tuple[tuple[str, str], ...], unset: tuple[str, ...]) -> list[str]:
        """Apply `:env`; the names it removed that were not set (to tell the user)."""
        missing = [key for key in unset if key not in self.env]
        for key in unset:
            self.env.pop(key, None)
        self.env.update(set_)
        return missing

    def describe_env(self) -> str:
        return "\n".join(f"{k}={v}" for k, v in sorted(self.env.items())) or "no variables set (:env K=V sets one)"
