"""What the views say about a pipeline's network (#13, #14), one wording for the headless lines and the TUI's view:
whether the whole run is offline and why (`--no-network`, `:network off`, the root's own `.set(network=False)`),
and, per step, where its network differs from the run's or where it asked for one the run does not give.

The cases (nodes.default_network: the flag wins over a step's own network=True):
  - no network= anywhere, no flag: nothing to say (the API's runs are networked by default);
  - the flag: the run is offline; a step that sets network=True runs offline too, and says it wanted one;
  - the root's `.set(network=False)`: the run is offline; a step's own network=True wins there (a node's
    setting, nearest first), and its line says it is networked;
  - a subtree's network=False in a networked run: its steps' lines say offline.
"""

from __future__ import annotations

from contree_tui.pipeline.nodes import Node


def node_at(root: Node, path: str) -> Node:
    """The node at `path` (`/` the root, which may be a lone Exec)."""
    return root if path == "/" else root[path]  # type: ignore[index]


def run_offline_reason(root: Node) -> str | None:
    """Why the whole run is offline (`--no-network`, `:network off`, `network=False`), None when it is not."""
    if root.offline_by is not None:
        return root.offline_by
    if root.effective().network is False:
        return "network=False"
    return None


def run_network_label(root: Node) -> str | None:
    """The header's words: `offline (--no-network)`, or None for a networked run."""
    reason = run_offline_reason(root)
    return f"offline ({reason})" if reason else None


def run_network_line(root: Node) -> str | None:
    """The headless run's first line for an offline run."""
    label = run_network_label(root)
    return f"pipeline {label}: its steps get loopback only" if label else None


def step_network_label(node: Node) -> str | None:
    """A few words for the step's row where its network is not the run's: `offline`, `networked`, or
    `offline, wants network` (it sets network=True, the run's flag wins)."""
    eff = node.effective()
    if eff.network_overridden:
        return "offline, wants network"
    if eff.network != node.root.effective().network:
        return "networked" if eff.network else "offline"
    return None


def step_network_note(node: Node) -> str | None:
    """The same, said in full (the selected node's header, a headless step's line, a failure's reason)."""
    eff = node.effective()
    if eff.network_overridden:
        by = node.root.offline_by
        return (f"it sets network=True, but the pipeline was started with {by}, which wins: it runs offline "
                "(loopback only)")
    if eff.network != node.root.effective().network:
        return "networked (its network=True)" if eff.network else "offline (its network=False: loopback only)"
    return None


__all__ = ["node_at", "run_network_label", "run_network_line", "run_offline_reason", "step_network_label",
           "step_network_note"]
