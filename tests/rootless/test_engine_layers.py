"""Layers rootless (#14): squash past 64 layers, an OCI import with whiteouts and an opaque dir (stored as
`user.overlay.opaque`, which overlay mounted with userxattr reads), a crafted layer planting overlay's own
xattrs (never applied: rootless they would be live overlay metadata), and owners the namespace cannot map."""

from __future__ import annotations

from tests.rootless.conftest import NormalUser
from tests.rootless.engine_namespace import run_scenario, short_range, user_dirs


def test_a_chain_past_64_layers_is_squashed_rootless(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "squash", state, work)
    assert seen["squashed"] and seen["max_depth"] <= 66, seen
    assert seen["final"]["stdout"].split() == [str(seen["steps"]), f"step-{seen['steps']}"], seen["final"]


def test_an_oci_import_with_whiteouts_an_opaque_dir_and_a_lower_link_rootless(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "import_whiteouts", state, work)
    assert seen["import"] == "SUCCESS", seen["error"]
    assert seen["opaque_xattrs"] == ["user.overlay.opaque"]  # trusted.* cannot be set in a user namespace
    assert seen["whiteout"] is True
    # the opaque /opt hides the base's old and sub; the whiteout hides etc/gone
    assert seen["view"]["stdout"].splitlines() == ["new", "new", "gone-is-gone", "kept"], seen["view"]
    assert seen["again"]["stdout"] == "again\n"


def test_a_layer_planting_overlay_xattrs_has_none_applied_rootless(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "overlay_xattrs", state, work)
    assert seen["import"] == "SUCCESS", seen
    assert seen["on_disk"] == {"data": [], "top": ["user.kept"]}
    for name in ("user.overlay.opaque", "trusted.overlay.opaque", "user.overlay.redirect", "user.overlay.origin"):
        assert name in seen["log"], seen["log"]
    # /data is not made opaque and /data/top is not redirected: the lower file shows, the top one is itself
    assert seen["view"]["stdout"].splitlines() == ["lower", "top", "x"], seen["view"]


def test_an_owner_past_what_sandboxes_map_is_refused_by_name_rootless(normal_user: NormalUser) -> None:
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "big_ids", state, work)
    assert seen["status"] == "FAILED" and seen["limit"] == 65536
    error = seen["error"]
    assert "'srv/owned' is owned by 65540:7" in error and "0..65535 only" in error, error
    assert seen["layers_after"] == seen["layers_before"] and seen["runs_after"] == []  # nothing half-written


def test_a_short_subordinate_range_names_the_fix(normal_user: NormalUser) -> None:
    """A user whose range is short (here 999 ids): an image file owned by 1004 is refused with the fix."""
    with user_dirs(normal_user) as (state, work):
        seen = run_scenario(normal_user, "big_ids", state, work, stand_in=short_range(normal_user, 1000))
    assert seen["status"] == "FAILED" and seen["limit"] == 1000
    error = seen["error"]
    assert "'srv/owned' is owned by 1004:7" in error and "maps 1000 ids" in error, error
    assert "usermod --add-subuids" in error and "/etc/subuid" in error, error
    assert seen["layers_after"] == seen["layers_before"] and seen["runs_after"] == []
