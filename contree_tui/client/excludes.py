"""What a directory sync leaves out: built-in directory names, the folder's .gitignore files, user globs.

- Built-in: directories named .git, __pycache__, .venv, node_modules, target, dist, .mypy_cache,
  .pytest_cache, at any depth (directories only: a file called `dist` is synced).
- `.gitignore` files at any depth, with git's semantics (pathspec's GitIgnoreSpec): a pattern applies
  below the directory holding its file, a deeper file overrides a shallower one, `!` re-includes, and
  nothing inside an excluded directory can be re-included (the walk never enters it) — as in git.
  Not read: .git/info/exclude and the user's global excludesfile (they describe one clone, not the tree).
- User excludes are globs in the same gitignore syntax, relative to the synced folder: `*.log` matches at
  any depth, `build/` only directories, `/notes.txt` only at the top, `docs/**/*.png` across levels.
  They apply before the .gitignore files and cannot be re-included by them.

Matching costs ~7 µs per path per spec (pathspec compiles one regex per pattern), too slow to repeat for
10,000 files on every re-sync, so verdicts are memoised until a .gitignore changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pathspec import GitIgnoreSpec

DEFAULT_EXCLUDED_DIRS = frozenset({
    ".git", "__pycache__", ".venv", "node_modules", "target", "dist", ".mypy_cache", ".pytest_cache"})
GITIGNORE = ".gitignore"


def has_default_excluded_part(rel: str) -> bool:
    """Whether any directory on the relative path `rel` is a built-in exclude (a cheap pre-filter)."""
    parts = rel.split("/")
    return any(part in DEFAULT_EXCLUDED_DIRS for part in parts[:-1])


class Excludes:
    """The exclusion rules of one synced folder; `.gitignore` specs are loaded as the walk meets them."""

    def __init__(self, root: Path, user_globs: Sequence[str] = (), *, gitignore: bool = True,
                 excluded_dirs: Iterable[str] = DEFAULT_EXCLUDED_DIRS) -> None:
        self.root = root
        self.user_globs = tuple(user_globs)
        self.use_gitignore = gitignore
        self.excluded_dirs = frozenset(excluded_dirs)
        self._user = GitIgnoreSpec.from_lines(self.user_globs) if self.user_globs else None
        self._specs: dict[str, GitIgnoreSpec] = {}  # directory rel path ("" = root) -> its .gitignore
        self._signatures: dict[str, tuple[int, int, int]] = {}  # same key -> (ino, size, mtime_ns) read
        self.memo: dict[str, bool] = {}  # rel (files) or rel + '/' (directories) -> excluded

    def note_directory(self, dir_rel: str, gitignore_stat: os.stat_result | None) -> bool:
        """The walk reports each directory it enters with its .gitignore's stat (None: it has none).
        (Re)loads the spec when that file appeared, changed or went; returns True if the rules changed."""
        if not self.use_gitignore:
            return False
        if gitignore_stat is None:
            if dir_rel not in self._signatures:
                return False
            del self._signatures[dir_rel]
            self._specs.pop(dir_rel, None)
            self.memo.clear()
            return True
        signature = (gitignore_stat.st_ino, gitignore_stat.st_size, gitignore_stat.st_mtime_ns)
        if self._signatures.get(dir_rel) == signature:
            return False
        self._signatures[dir_rel] = signature
        path = self.root / dir_rel / GITIGNORE if dir_rel else self.root / GITIGNORE
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        spec = GitIgnoreSpec.from_lines(lines)
        if len(spec):
            self._specs[dir_rel] = spec
        else:
            self._specs.pop(dir_rel, None)
        self.memo.clear()
        return True

    def forget_below(self, dir_rel: str) -> None:
        """A directory went away: drop the specs loaded at or below it."""
        prefix = dir_rel + "/"
        gone = [key for key in self._signatures if key == dir_rel or key.startswith(prefix)]
        for key in gone:
            del self._signatures[key]
            self._specs.pop(key, None)
        if gone:
            self.memo.clear()

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """Whether the path `rel` (relative to the root, '/'-separated) is left out of the sync."""
        key = rel + "/" if is_dir else rel
        verdict = self.memo.get(key)
        if verdict is None:
            verdict = self.memo[key] = self._decide(rel, key, is_dir)
        return verdict

    def _decide(self, rel: str, key: str, is_dir: bool) -> bool:
        name = rel.rpartition("/")[2]
        if is_dir and name in self.excluded_dirs:
            return True
        if self._user is not None and self._user.check_file(key).include:
            return True
        if not self._specs:
            return False
        verdict = False
        parts = rel.split("/")
        for depth in range(len(parts)):  # root first, so deeper .gitignore files decide last
            base = "/".join(parts[:depth])
            spec = self._specs.get(base)
            if spec is None:
                continue
            inner = key[len(base) + 1:] if base else key
            result = spec.check_file(inner).include
            if result is not None:
                verdict = result
        return verdict
