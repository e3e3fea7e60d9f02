"""Where an image with python3 comes from, as the messages that need one say it (a function step, a staged
build): `engine bootstrap debian` tags its image `debian:SUITE`, the host's own suite (bookworm on Debian 12)."""

from __future__ import annotations

from contree_tui.client.debian_bootstrap import default_suite


def bootstrapped_image() -> str:
    return f"debian:{default_suite()}"


def python_image_hint() -> str:
    return f"`contree-tui engine bootstrap debian` makes one: --image {bootstrapped_image()}"


__all__ = ["bootstrapped_image", "python_image_hint"]
