"""`engine serve --write-profile NAME`: the engine's profile in $CONTREE_HOME/auth.ini, written the way
contree-cli writes it, and made the active one when nothing else is.

contree-sdk (`Contree()`), contree-mcp and contree-cli without `-p` read the active profile only: `[DEFAULT]
profile`, else the one named `default`. A `[profile:local]` alone left them on the hosted default URL: the
seed's `client.images.pull("alpine:latest")` went to api.tokenfactory.nebius.com (seen following the README
as a stranger). A profile the user already made active stays so: then the message says how to pick this one.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from contree_client.profiles import DEFAULT_PROFILE, PROFILE_PREFIX, Profile, contree_home


@dataclass(frozen=True)
class WrittenProfile:
    path: Path
    name: str
    active: str  # the profile the official clients use with no --profile / CONTREE_PROFILE

    def message(self) -> str:
        if self.active == self.name:
            return (f"profile {self.name!r} written to {self.path}, the active one: contree-cli, contree-mcp and "
                    "contree-sdk reach this engine with no --profile")
        return (f"profile {self.name!r} written to {self.path}; the active profile stays {self.active!r}: pick "
                f"this one with CONTREE_PROFILE={self.name} (or `contree -p {self.name} ...`, "
                f"`contree auth switch {self.name}`)")


def write_profile(name: str, url: str, token: str, home: Path | None = None) -> WrittenProfile:
    """Add or replace `[profile:NAME]` (mode 0600); `[DEFAULT] profile = NAME` unless another saved profile is
    already the active one."""
    path = (home or contree_home()) / "auth.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser()
    config.read(path)
    active = config.defaults().get("profile", DEFAULT_PROFILE)
    if active == name or not config.has_section(f"{PROFILE_PREFIX}{active}"):
        config.defaults()["profile"] = active = name
    Profile(name=name, url=url, token=token).save(config)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        config.write(fh)
    os.chmod(path, 0o600)
    return WrittenProfile(path, name, active)
