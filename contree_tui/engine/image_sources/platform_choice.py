"""Which manifest of an image index (manifest list) this host runs: linux on its own architecture."""

from __future__ import annotations

import platform
from typing import Any

from contree_tui.engine.models import Unprocessable

# uname -m → the OCI architecture name (and the variant an index may name for it)
_ARCHES = {"x86_64": ("amd64", ""), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
           "i686": ("386", ""), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine, in OCI's names."""
    machine = platform.machine()
    arch, variant = _ARCHES.get(machine, (machine, ""))
    return "linux", arch, variant


def choose_platform(manifests: list[Any], where: str) -> tuple[dict[str, Any], str]:
    """The index entry for this host, and its "os/arch[/variant]"; Unprocessable (422) when none matches.
    An entry without a variant matches any variant (amd64 has none; arm64 indexes often omit v8)."""
    os_name, arch, variant = host_platform()
    candidates = []
    offered = []
    for entry in manifests:
        if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
            continue
        plat = entry["platform"]
        name = "/".join(x for x in (plat.get("os"), plat.get("architecture"), plat.get("variant")) if x)
        offered.append(name)
        if plat.get("os") != os_name or plat.get("architecture") != arch:
            continue
        entry_variant = plat.get("variant") or ""
        if entry_variant and variant and entry_variant != variant:
            continue
        candidates.append((0 if entry_variant == variant else 1, len(candidates), entry, name))
    if not candidates:
        want = "/".join(x for x in (os_name, arch, variant) if x)
        raise Unprocessable(f"{where}: no image for this host's platform {want} in the index "
                            f"(it offers: {', '.join(offered) or 'no platforms'})")
    _, _, entry, name = min(candidates, key=lambda c: (c[0], c[1]))
    return entry, name
