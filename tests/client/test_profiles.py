"""Which Contree a session talks to: auth.ini as contree-cli writes it, the environment, and the default."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest
from contree_client.profiles import DEFAULT_IAM_URL, Profile

from contree_tui.client.connection import (
    EMBEDDED,
    ProfileInvalid,
    ProfileNotFound,
    list_profiles,
    resolve_target,
)

PROJECT = "project-e00abc123"


def write_auth_ini(home: Path, profiles: list[Profile], active: str | None = None) -> Path:
    """The file the way contree-cli's `contree auth` leaves it: Profile.save sections, the active profile in
    [DEFAULT], mode 0600."""
    config = configparser.ConfigParser()
    for profile in profiles:
        profile.save(config)
    if active is not None:
        config["DEFAULT"]["profile"] = active
    home.mkdir(parents=True, exist_ok=True)
    path = home / "auth.ini"
    with open(path, "w") as handle:
        config.write(handle)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def auth_ini(clean_env: Path) -> Path:
    return write_auth_ini(clean_env, [
        Profile(name="prod", url=DEFAULT_IAM_URL, token="iam-token", auth_type="iam", project=PROJECT),
        Profile(name="legacy", url="https://contree.example.com", token="jwt-token", auth_type="jwt"),
    ], active="prod")


def test_the_default_is_the_embedded_engine_even_with_an_active_profile(auth_ini: Path, tmp_path: Path) -> None:
    profiles, active = list_profiles()
    assert set(profiles) == {"prod", "legacy"} and active == "prod"
    target = resolve_target(state_dir=tmp_path / "engine")
    assert target.embedded and target.name == EMBEDDED and target.source == "default"
    assert target.state_dir == (tmp_path / "engine").resolve()


def test_an_iam_profile_from_auth_ini(auth_ini: Path) -> None:
    target = resolve_target("prod")
    assert (target.name, target.url, target.token, target.auth_type, target.project, target.source) == (
        "prod", DEFAULT_IAM_URL, "iam-token", "iam", PROJECT, "--profile")
    assert not target.embedded
    assert "iam-token" not in repr(target), "the token must not show up in logs"


def test_a_jwt_profile_sends_no_project(auth_ini: Path) -> None:
    target = resolve_target("legacy")
    assert (target.url, target.token, target.auth_type, target.project) == (
        "https://contree.example.com", "jwt-token", "jwt", None)


def test_an_explicit_auth_file(tmp_path: Path) -> None:
    path = write_auth_ini(tmp_path / "elsewhere", [Profile(name="x", url="http://10.1.2.3:8080", token="t")])
    assert resolve_target("x", auth_file=path).url == "http://10.1.2.3:8080"


def test_cli_ini_defaults_are_merged_under_auth_ini(auth_ini: Path) -> None:
    (auth_ini.parent / "cli.ini").write_text("[profile:legacy]\nurl = https://ignored.example.com\n"
                                             "[profile:staging]\nurl = https://staging.example.com\ntoken = s\n")
    assert resolve_target("legacy").url == "https://contree.example.com"
    assert resolve_target("staging").token == "s"


def test_precedence_flag_then_contree_profile_then_env_credentials(auth_ini: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_TOKEN", "env-token")
    monkeypatch.setenv("CONTREE_URL", "https://env.example.com/")
    target = resolve_target()
    assert (target.name, target.url, target.token, target.source) == (
        "environment", "https://env.example.com", "env-token", "environment")
    assert target.project is None and target.auth_type == "jwt"

    monkeypatch.setenv("CONTREE_PROFILE", "legacy")
    assert resolve_target().name == "legacy"
    assert resolve_target().source == "CONTREE_PROFILE"

    assert resolve_target("prod").name == "prod"
    assert resolve_target(EMBEDDED).embedded, "`embedded` names the local engine whatever else is set"
    monkeypatch.setenv("CONTREE_PROFILE", EMBEDDED)
    assert resolve_target().embedded


def test_env_credentials_with_a_project_are_iam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEBIUS_API_KEY", "nebius-key")
    monkeypatch.setenv("CONTREE_URL", DEFAULT_IAM_URL)
    with pytest.raises(ProfileInvalid, match="CONTREE_PROJECT"):
        resolve_target()
    monkeypatch.setenv("NEBIUS_AI_PROJECT", PROJECT)
    target = resolve_target()
    assert (target.token, target.project, target.auth_type) == ("nebius-key", PROJECT, "iam")
    monkeypatch.setenv("CONTREE_PROJECT", "project-from-contree-var")
    assert resolve_target().project == "project-from-contree-var"


def test_half_set_environment_is_an_error_not_a_silent_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_TOKEN", "t")
    with pytest.raises(ProfileInvalid, match="CONTREE_URL is not"):
        resolve_target()
    monkeypatch.delenv("CONTREE_TOKEN")
    monkeypatch.setenv("CONTREE_URL", "https://x.example.com")
    with pytest.raises(ProfileInvalid, match="CONTREE_TOKEN is not"):
        resolve_target()


def test_no_such_profile_lists_the_ones_there(auth_ini: Path) -> None:
    with pytest.raises(ProfileNotFound) as caught:
        resolve_target("staging")
    message = str(caught.value)
    assert "'staging'" in message and "legacy, prod" in message and str(auth_ini) in message


def test_no_such_profile_without_an_auth_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_PROFILE", "prod")
    with pytest.raises(ProfileNotFound, match=r"CONTREE_PROFILE.*does not exist"):
        resolve_target()


@pytest.mark.parametrize(("profile", "message"), [
    (Profile(name="p", url=DEFAULT_IAM_URL, token="t", auth_type="iam"), "IAM profile without a project"),
    (Profile(name="p", url="https://x.example.com", token="", auth_type="jwt"), "has no token"),
    (Profile(name="p", url="", token="t", auth_type="jwt"), "has no url"),
    (Profile(name="p", url="htps://x.example.com", token="t", auth_type="jwt"), "not an http"),
    (Profile(name="p", url="https://x.example.com", token="t", auth_type="oauth"), "expected iam or jwt"),
])
def test_profiles_that_cannot_work(clean_env: Path, profile: Profile, message: str) -> None:
    write_auth_ini(clean_env, [profile])
    with pytest.raises(ProfileInvalid, match=message):
        resolve_target("p")


def test_an_unreadable_auth_ini_is_a_clear_error(clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / "auth.ini").write_text("this is not an ini file\n")
    with pytest.raises(ProfileInvalid, match="cannot read"):
        resolve_target("prod")
