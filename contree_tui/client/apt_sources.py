"""The machine's configured Debian apt sources, rewritten for the suite a bootstrap builds.

`engine bootstrap debian` builds from the mirrors this machine already uses (a corporate mirror, a
snapshot.debian.org pin, a proxy), not from deb.debian.org: a machine with no registry may reach only those.
Both formats apt reads are understood: one-line `deb [opts] URI SUITE COMPONENT...` in sources.list and
*.list, and deb822 stanzas in *.sources (files with other suffixes, e.g. `.disabled`, are ignored, as apt
ignores them).

Only the host's Debian family is kept: entries whose suite is the host's codename or `codename-*`
(bookworm, bookworm-updates, bookworm-security). Third-party repositories (nodesource's `nodistro`,
`cloud-sdk-bookworm`) are left out: they are not part of the distribution being bootstrapped. For another
suite (`--suite trixie` on a bookworm host) each kept suite is renamed: bookworm-security → trixie-security.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")
SUITE_RE = re.compile(r"^[a-z][a-z0-9.+-]*$")


@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None
    architectures: tuple[str, ...] = ()
    trusted: bool = False  # `[trusted=yes]` / `Trusted: yes`: a local mirror apt takes unsigned, as here

    def for_suite(self, host: str, suite: str) -> AptSource:
        """This entry with its suites renamed from the host's codename family to `suite`'s."""
        renamed = tuple(suite + s[len(host):] for s in self.suites)
        return AptSource(self.uris, renamed, self.components, self.signed_by, self.architectures, self.trusted)

    def deb822(self) -> str:
        lines = ["Types: deb", f"URIs: {' '.join(self.uris)}", f"Suites: {' '.join(self.suites)}",
                 f"Components: {' '.join(self.components)}"]
        if self.architectures:
            lines.append(f"Architectures: {' '.join(self.architectures)}")
        if self.signed_by:
            lines.append(f"Signed-By: {self.signed_by}")
        if self.trusted:
            lines.append("Trusted: yes")
        return "\n".join(lines) + "\n"


def host_codename(os_release: Path = Path("/etc/os-release")) -> str | None:
    """VERSION_CODENAME of a Debian host (None on other distributions: their sources are not Debian's)."""
    try:
        text = os_release.read_text()
    except OSError:
        return None
    fields = dict(_os_release_field(line) for line in text.splitlines() if "=" in line)
    if fields.get("ID") != "debian":
        return None
    return fields.get("VERSION_CODENAME") or None


def _os_release_field(line: str) -> tuple[str, str]:
    key, _, value = line.partition("=")
    return key.strip(), value.strip().strip('"')


def read_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Every binary (`deb`) entry apt would read, in apt's order: sources.list, then sources.list.d/ sorted."""
    found: list[AptSource] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        found += parse_one_line(main.read_text())
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*"))):
        try:
            if path.endswith(".list"):
                found += parse_one_line(Path(path).read_text())
            elif path.endswith(".sources"):
                found += parse_deb822(Path(path).read_text())
        except OSError:  # an unreadable file apt would complain about; not ours to judge
            continue
    return found


def parse_one_line(text: str) -> list[AptSource]:
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        options: dict[str, str] = {}
        if "[" in line and "]" in line:  # `deb [signed-by=/k.gpg arch=amd64] http://… suite main`
            head, _, rest = line.partition("[")
            inner, _, tail = rest.partition("]")
            for item in inner.split():
                key, _, value = item.partition("=")
                options[key.lower()] = value
            line = f"{head} {tail}"
        words = line.split()
        if len(words) < 3 or words[0] != "deb":
            continue
        arch = tuple(a for a in options.get("arch", "").split(",") if a)
        found.append(AptSource((words[1],), (words[2],), tuple(words[3:]), options.get("signed-by") or None, arch,
                               options.get("trusted", "").lower() == "yes"))
    return found


def parse_deb822(text: str) -> list[AptSource]:
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:  # a continuation line (a multi-line Signed-By key block)
                fields[key] += "\n" + raw
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                key = None
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by") or None
        if signed and "\n" in signed:
            signed = None  # an inline key block: mmdebstrap finds the keyring itself (its "signed-by value")
        found.append(AptSource(tuple(fields.get("uris", "").split()), tuple(fields.get("suites", "").split()),
                               tuple(fields.get("components", "").split()), signed,
                               tuple(fields.get("architectures", "").split()),
                               fields.get("trusted", "").lower() == "yes"))
    return [s for s in found if s.uris and s.suites]


def debian_sources(suite: str, host: str | None, sources: list[AptSource]) -> list[AptSource]:
    """The host's Debian-family entries (see the module doc), for `suite`; [] when there are none."""
    if host is None:
        return []
    kept = []
    for source in sources:
        family = tuple(s for s in source.suites if s == host or s.startswith(host + "-"))
        if family:
            kept.append(AptSource(source.uris, family, source.components, source.signed_by,
                                  source.architectures, source.trusted).for_suite(host, suite))
    return kept


def render(sources: list[AptSource]) -> str:
    return "\n".join(s.deb822() for s in sources)
