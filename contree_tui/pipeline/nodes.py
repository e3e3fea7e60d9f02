"""The pipeline tree: Serial and Parallel parents, Exec leaves, addressed by path (`/build/test`).

Built in code, as Conducto does (`parent["name"] = node`, or children passed to the constructor, or a `with`
block and `.add`). Node parameters go through `.set(...)` only, so they never mix with a native function's
keyword arguments (Conducto's `Exec(fn, name=...)` ambiguity); each is inherited from the nearest parent that
sets it (`env` merges, nearer keys winning).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contree_tui.pipeline import with_blocks
from contree_tui.pipeline.functions import FunctionCall, describe_call

NAME_RE = re.compile(r"[^/\x00-\x1f]+")  # a path segment: anything printable but '/'
NAME_MAX = 100
IMAGE_RE = re.compile(r"^(tag:.+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:[:/.][A-Za-z0-9_-]+)*$")  # the API's tag pattern


class PipelineError(Exception):
    """A pipeline that cannot be built or run as written; str() is the message for the user."""


class TreeError(PipelineError):
    pass


_UNSET: Any = object()
PARAMS = ("image", "timeout", "env", "cwd", "disposable", "skip", "tag", "sync", "network")


@dataclass(frozen=True)
class FolderSync:
    """A host folder sent into an Exec's sandbox at `dest` (client/sync.py: .gitignore and `excludes` honoured,
    unchanged files not uploaded again). Its digest is one of the step's inputs, so a changed file re-runs the
    steps that get the folder, and (their results changing) every step after them."""

    local: Path
    dest: str = "/app"
    excludes: tuple[str, ...] = ()

    @classmethod
    def make(cls, value: FolderSync | str | Path, where: str) -> FolderSync:
        sync = value if isinstance(value, FolderSync) else cls(Path(value)) if isinstance(value, (str, Path)) \
            else None
        if sync is None:
            raise PipelineError(f"{where}: sync takes a folder (a path or FolderSync), not {value!r}")
        local = Path(sync.local).expanduser().resolve()
        if not local.is_dir():
            raise PipelineError(f"{where}: sync folder {str(sync.local)!r} is not a directory")
        if not sync.dest.startswith("/"):
            raise PipelineError(f"{where}: sync destination must be an absolute path, not {sync.dest!r}")
        return replace(sync, local=local, excludes=tuple(sync.excludes))


@dataclass(frozen=True)
class NodeParams:
    """What `.set()` stored on one node (None: not set here, inherit)."""

    image: str | None = None  # a reference: tag:NAME or an image UUID; on a node below the root it restarts
    # the chain from that image instead of the previous step's result
    timeout: int | None = None  # seconds, per Exec
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    disposable: bool | None = None  # the run leaves no snapshot (tests): the next step continues from its source
    skip: bool | None = None
    tag: str | None = None  # an Exec's checkpoint name: its result snapshot gets this tag (not inherited)
    sync: FolderSync | None = None  # a host folder sent into the sandbox (inherited, as image is)
    network: bool | None = None  # False: the step's sandbox gets loopback only (`networking: {"enabled": false}`),
    # the way a pipeline runs where the engine has no network to give (no pasta; /dev/net/tun 0600, #14)


@dataclass(frozen=True)
class Effective:
    """A node's parameters after inheritance."""

    image: str | None
    timeout: int | None
    env: Mapping[str, str]
    cwd: str | None
    disposable: bool
    skip: bool
    tag: str | None
    sync: FolderSync | None = None
    network: bool = True
    network_overridden: bool = False  # it sets network=True, but the whole run is offline (default_network)


class Node:
    """The common part of Serial, Parallel and Exec: a name, a parent, parameters."""

    kind = "node"

    def __init__(self) -> None:
        self.name = ""
        self.parent: Parent | None = None
        self.params = NodeParams()
        self.max_concurrent: int | None = None
        self.auto_named = False  # made in a `with` block, not named yet (with_blocks.py)
        self.offline_by: str | None = None  # on the root: what made every step offline (`--no-network`), which wins

    def set(self, *, name: str = _UNSET, image: str | None = _UNSET, timeout: int | None = _UNSET,
            env: Mapping[str, str] | None = _UNSET, cwd: str | None = _UNSET, disposable: bool | None = _UNSET,
            skip: bool | None = _UNSET, tag: str | None = _UNSET,
            sync: FolderSync | str | Path | None = _UNSET, network: bool | None = _UNSET) -> Node:
        """Set node parameters (None: back to inheriting); returns the node, for chaining. `name` names a
        node made in a `with` block (or renames one), as Conducto's `.set(name=...)` does."""
        if name is not _UNSET:
            if self.parent is not None:
                self.parent.rename(self, name)
            else:
                check_name(name, self.path)
                self.name = name
            self.auto_named = False
        given = {k: v for k, v in dict(image=image, timeout=timeout, env=env, cwd=cwd, disposable=disposable,
                                       skip=skip, tag=tag, sync=sync, network=network).items()
                 if v is not _UNSET}
        where = f"{self.path}: .set()"
        if given.get("timeout") is not None and (not isinstance(given["timeout"], int) or given["timeout"] <= 0):
            raise PipelineError(f"{where}: timeout must be a positive number of seconds, not {given['timeout']!r}")
        if given.get("env") is not None:
            env_given = given["env"]
            if not isinstance(env_given, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in env_given.items()):
                raise PipelineError(f"{where}: env must map str to str, not {env_given!r}")
            given["env"] = dict(env_given)
        if given.get("cwd") is not None and not str(given["cwd"]).startswith("/"):
            raise PipelineError(f"{where}: cwd must be an absolute path, not {given['cwd']!r}")
        for flag in ("disposable", "skip", "network"):
            if given.get(flag) is not None and not isinstance(given[flag], bool):
                raise PipelineError(f"{where}: {flag} must be True or False, not {given[flag]!r}")
        if given.get("image") is not None and not (isinstance(given["image"], str) and IMAGE_RE.match(given["image"])):
            hint = f" (did you mean tag:{given['image']}?)" if isinstance(given["image"], str) else ""
            raise PipelineError(f"{where}: image {given['image']!r} is not a reference: tag:NAME or an image "
                                f"UUID{hint}")
        if given.get("sync") is not None:
            given["sync"] = FolderSync.make(given["sync"], where)
        if given.get("tag") is not None:
            if not isinstance(self, Exec):
                raise PipelineError(f"{where}: tag= names an Exec's result snapshot; set it on an Exec")
            if not TAG_RE.match(given["tag"]):
                raise PipelineError(f"{where}: {given['tag']!r} is not a valid tag (letters, digits, _ and -, "
                                    "parts joined by : / or .)")
        self.params = replace(self.params, **given)
        return self

    # ---- the tree ----
    @property
    def path(self) -> str:
        parts: list[str] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    @property
    def root(self) -> Node:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    def ancestors(self) -> list[Parent]:
        """Parents from the root down to this node's parent."""
        found: list[Parent] = []
        node = self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return list(reversed(found))

    def walk(self) -> Iterator[Node]:
        """Pre-order: this node, then its descendants."""
        yield self

    def effective(self, default_image: str | None = None) -> Effective:
        chain = [*self.ancestors(), self]
        env: dict[str, str] = {}
        image = default_image
        values: dict[str, Any] = {"timeout": None, "cwd": None, "disposable": False, "skip": False, "sync": None,
                                  "network": True}
        for node in chain:
            p = node.params
            if p.env:
                env.update(p.env)
            if p.image is not None:
                image = p.image
            for key in values:
                value = getattr(p, key)
                if value is not None:
                    values[key] = value
            if p.skip:
                values["skip"] = True  # a skipped parent skips its whole subtree, whatever a child says
        asked = next((n.params.network for n in reversed(chain) if n.params.network is not None), None)
        forced = chain[0].offline_by is not None
        if forced:
            values["network"] = False
        return Effective(image=image, env=env, tag=self.params.tag, network_overridden=forced and asked is True,
                         **values)

    def describe(self) -> str:
        return ""

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


class Parent(Node):
    def __init__(self, children: Mapping[str, Node] | None = None, *, max_concurrent: int | None = None) -> None:
        super().__init__()
        self.children: dict[str, Node] = {}
        if max_concurrent is not None and (not isinstance(max_concurrent, int) or max_concurrent < 1):
            raise PipelineError(f"max_concurrent must be a positive int, not {max_concurrent!r}")
        self.max_concurrent = max_concurrent
        for name, child in (children or {}).items():
            self[name] = child

    def __setitem__(self, name: str, node: Node) -> None:
        if isinstance(name, str) and "/" in name:
            head, _, rest = name.partition("/")
            if not head or not rest or "" in rest.split("/"):
                raise TreeError(f"{self.path}: {name!r} is not a valid node name or relative path")
            if head not in self.children:
                raise TreeError(f"{_join(self.path, head)} does not exist, so {name!r} has no parent")
            target = self.children[head]
            if not isinstance(target, Parent):
                raise TreeError(f"{self.path}: {head!r} is an Exec and cannot hold {rest!r}")
            target[rest] = node
            return
        check_name(name, self.path)
        if not isinstance(node, Node):
            raise TreeError(f"{_join(self.path, name)}: {node!r} is not a Serial, Parallel or Exec")
        if node.auto_named and node.parent is not None:
            if node.parent is self:
                self.rename(node, name)
                return
            del node.parent.children[node.name]  # made in an enclosing block, placed here
            node.parent = None
        node.auto_named = False
        if name in self.children:
            raise TreeError(f"{_join(self.path, name)} already exists: sibling names must be unique")
        if node.parent is not None:
            raise TreeError(f"{node.path} is already in a pipeline; a node has one place (build another for "
                            f"{_join(self.path, name)})")
        if node is self.root or (isinstance(node, Parent) and any(n is self for n in node.walk())):
            raise TreeError(f"{_join(self.path, name)}: a node cannot contain itself")
        node.name = name
        node.parent = self
        self.children[name] = node

    def rename(self, node: Node, name: str) -> None:
        """A child's new name, in its place among its siblings."""
        check_name(name, self.path)
        if name == node.name:
            return
        if name in self.children:
            raise TreeError(f"{_join(self.path, name)} already exists: sibling names must be unique")
        self.children = {name if key == node.name else key: child for key, child in self.children.items()}
        node.name = name
        node.auto_named = False

    def __enter__(self) -> Parent:
        with_blocks.enter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with_blocks.leave(self)

    def add(self, name: str, node: Node) -> Node:
        """`parent[name] = node`, returning the node (for `.set()` chaining)."""
        self[name] = node
        return node

    def __getitem__(self, path: str) -> Node:
        node: Node = self.root if path.startswith("/") else self
        for part in (p for p in path.split("/") if p):
            if not isinstance(node, Parent) or part not in node.children:
                raise KeyError(f"no node {_join(node.path, part)}")
            node = node.children[part]
        return node

    def __contains__(self, path: str) -> bool:
        try:
            self[path]
        except KeyError:
            return False
        return True

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children.values():
            yield from child.walk()

    def __len__(self) -> int:
        return len(self.children)


class Serial(Parent):
    """Children one after another, each on the previous child's result snapshot."""

    kind = "serial"

    def __init__(self, children: Mapping[str, Node] | None = None, *, stop_on_error: bool = True,
                 max_concurrent: int | None = None) -> None:
        super().__init__(children, max_concurrent=max_concurrent)
        self.stop_on_error = stop_on_error
        with_blocks.adopt(self)


class Parallel(Parent):
    """Children at the same time, every one from the same snapshot (sibling branches).

    What the step after it (in a Serial) runs on: by default the Parallel's own source snapshot, the one every
    branch started from; the branches are side by side and none of them is merged or preferred. With
    `continue_from="name"` it is that child's result instead (its files, none of the other branches'): e.g.
    a build branch and a lint branch, then the tests on the build's result. The name must be one of its
    children: checked when the Parallel is built with its children, else when the run starts (before anything
    runs)."""

    kind = "parallel"

    def __init__(self, children: Mapping[str, Node] | None = None, *, max_concurrent: int | None = None,
                 continue_from: str | None = None) -> None:
        super().__init__(children, max_concurrent=max_concurrent)
        if continue_from is not None and (not isinstance(continue_from, str) or "/" in continue_from
                                          or not continue_from):
            raise PipelineError(f"continue_from takes the name of one of the Parallel's children, not "
                                f"{continue_from!r}")
        self.continue_from = continue_from
        if children:
            self.check_continue_from()
        with_blocks.adopt(self)

    def check_continue_from(self) -> None:
        """PipelineError when `continue_from` names no child of this Parallel."""
        if self.continue_from is not None and self.continue_from not in self.children:
            names = ", ".join(repr(n) for n in self.children) or "none yet"
            raise PipelineError(f"{self.path}: continue_from={self.continue_from!r} is not a child of this "
                                f"Parallel (its children: {names})")


class Exec(Node):
    """A leaf: a shell command, or a Python function of the pipeline's file with its arguments
    (`Exec(sieve, 30)`; checked against the function's hints now, before anything runs)."""

    kind = "exec"

    def __init__(self, command: str | Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.function: FunctionCall | None = None
        if callable(command):
            self.function = FunctionCall.make(command, args, kwargs)
            self.command = self.function.display
        elif isinstance(command, str):
            if args or kwargs:
                raise PipelineError(f"Exec({command!r}, ...): a shell command takes no arguments; node parameters "
                                    "go through .set(...)")
            if not command.strip():
                raise PipelineError("Exec(''): the command is empty")
            self.command = command
        else:
            raise PipelineError(f"Exec({command!r}): give a shell command (str) or a function")
        with_blocks.adopt(self)

    def describe(self) -> str:
        return describe_call(self.function) if self.function else self.command


def default_network(root: Node, network: bool, by: str = "--no-network") -> Node:
    """`--no-network` (CLI `pipeline` and `build`, `:pipeline`; `by` ":network off" for the TUI's): every step runs
    offline, including one that sets network=True (its Effective says `network_overridden`, the views and its
    failure say so). The flag wins, unlike `--image`, which only fills in for nodes that set none: it is how a
    pipeline runs where the engine has no network to give (no pasta; /dev/net/tun 0600, #14), where a step let
    through would only be refused, with advice to pass the flag already given. Kept on the root, so a re-run of
    the same tree (the view's `r`) stays offline."""
    if not network:
        root.offline_by = by
    return root


def check_name(name: str, where: str) -> None:
    if not isinstance(name, str) or not name or not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise TreeError(f"{where}: {name!r} is not a valid node name (non-empty, no '/', no control characters)")
    if len(name) > NAME_MAX:
        raise TreeError(f"{where}: node name {name[:20]!r}... is longer than {NAME_MAX} characters")
    if name != name.strip():
        raise TreeError(f"{where}: node name {name!r} starts or ends with spaces")


def _join(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name


def execs(root: Node) -> list[Exec]:
    return [n for n in root.walk() if isinstance(n, Exec)]


def _parent_label(node: Node) -> str:
    follow = getattr(node, "continue_from", None)
    return f"[{node.kind}, continue_from={follow}]" if follow else f"[{node.kind}]"


def pretty(root: Node) -> str:
    """The tree drawn as Conducto's dry run does: Serial children numbered, Exec lines with their command."""
    lines = [root.path + (f"   {_parent_label(root)}" if isinstance(root, Parent) else f"   {root.describe()}")]

    def walk(node: Parent, prefix: str) -> None:
        items = list(node.children.items())
        for index, (name, child) in enumerate(items):
            last = index == len(items) - 1
            branch = "└─" if last else "├─"
            number = f"{index} " if isinstance(node, Serial) else ""
            detail = child.describe() if isinstance(child, Exec) else _parent_label(child)
            skip = "  (skip)" if child.params.skip else ""
            lines.append(f"{prefix}{branch}{number}{name}   {detail}{skip}")
            if isinstance(child, Parent):
                walk(child, prefix + ("  " if last else "│ "))

    if isinstance(root, Parent):
        walk(root, "")
    return "\n".join(lines)


__all__ = ["Effective", "Exec", "FolderSync", "Node", "NodeParams", "Parallel", "Parent", "PipelineError", "Serial",
           "TreeError", "default_network", "execs", "pretty"]
