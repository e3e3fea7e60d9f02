"""Conducto's context manager syntax (seed 004): inside `with Serial() as root:` every node made is a child of
the innermost open block at once, named by its position ("1", "2", …) until `root["name"] = node` or
`node.set(name=...)` names it (in place: the order is the order the nodes were made). A node made in a block
and then placed elsewhere (`root["kw/c"] = node`) moves there. Pipelines are built by one thread (the loader
calls FUNC), so the open blocks are a plain stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contree_tui.pipeline.nodes import Node, Parent

_open: list[Parent] = []


def enter(parent: Parent) -> None:
    _open.append(parent)


def leave(parent: Parent) -> None:
    if _open and _open[-1] is parent:
        _open.pop()
    elif parent in _open:  # blocks closed out of order (a generator holding one open): drop it and those above
        del _open[_open.index(parent):]


def adopt(node: Node) -> None:
    """A node just made: a child of the innermost open block, if any (not of itself: `with Serial()` makes the
    Serial before it opens)."""
    if not _open or _open[-1] is node:
        return
    parent = _open[-1]
    index = len(parent.children) + 1
    while str(index) in parent.children:
        index += 1
    parent[str(index)] = node
    node.auto_named = True
