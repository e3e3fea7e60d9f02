"""Busybox-only pipelines for the offline tests (test_no_network_pipeline.py): each step prints how many lines
`ip link` shows, 2 when loopback is the only interface."""

from __future__ import annotations

from contree_tui.pipeline import Exec, Serial

LINKS = "ip link | wc -l"


def links() -> Serial:
    """No network= anywhere: networked by default, offline with --no-network."""
    return Serial({"first": Exec(LINKS), "second": Exec(f"echo second; {LINKS}")})


def marked() -> Serial:
    """The root says network=False, its steps inherit it: offline with no flag."""
    root = links()
    root.set(network=False)
    return root


def one_online() -> Serial:
    """--no-network is the default of the steps that set none: /second's own network=True wins."""
    root = links()
    root["second"].set(network=True)
    return root
