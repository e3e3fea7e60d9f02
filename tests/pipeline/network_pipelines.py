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
    """/second sets network=True: --no-network wins over it (offline, and its line says so)."""
    root = links()
    root["second"].set(network=True)
    return root


def needs_network() -> Serial:
    """/fetch sets network=True and fails without an interface besides loopback."""
    return Serial({"fetch": Exec(f"test $({LINKS}) -gt 2").set(network=True)})
