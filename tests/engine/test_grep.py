"""Content search inside an image: ripgrep's result shape, confined like every other inspect read."""

from __future__ import annotations

from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.grep import GrepQuery
from contree_tui.engine.models import EngineError, Image, NotFound
from tests.engine.helpers import sh

TREE = (
    "mkdir -p /data/sub /data/.hidden && printf 'alpha\\nbeta\\ngamma\\nBeta two\\ndelta\\n' > /data/a.txt"
    " && printf 'beta in c\\n' > /data/sub/c.conf && printf 'beta\\0binary\\n' > /data/bin.dat"
    " && printf 'beta hidden\\n' > /data/.hidden/h.txt && ln -s /data/a.txt /data/link.txt"
)


@pytest.fixture
async def tree(engine: Engine, busybox: Image) -> Image:
    op = await sh(engine, busybox.uuid, TREE)
    return engine.store.get_image(op.result_image_uuid)


def lines(result: dict) -> list[tuple[str, int, str]]:
    return [(m["path"], m["line_number"], m["type"]) for m in result["matches"]]


async def test_grep_matches_in_path_order_skipping_binaries_and_symlinks(engine: Engine, tree: Image) -> None:
    result = await engine.grep(tree, GrepQuery(patterns=("beta",), paths=("/data",)))
    assert lines(result) == [("/data/.hidden/h.txt", 1, "match"), ("/data/a.txt", 2, "match"),
                             ("/data/sub/c.conf", 1, "match")]
    first = result["matches"][1]
    assert first["line_text"] == "beta\n" and first["absolute_offset"] == 6 and first["line_bytes"] == 5
    assert first["submatches"] == [{"text": "beta", "start": 0, "end": 4}]
    assert result["path"] == "/data" and result["patterns"] == ["beta"] and not result["truncated"]


async def test_grep_case_context_globs_and_budgets(engine: Engine, tree: Image) -> None:
    insensitive = await engine.grep(tree, GrepQuery(patterns=("beta",), paths=("/data/a.txt",), case="insensitive"))
    assert [m["line_number"] for m in insensitive["matches"]] == [2, 4]
    smart = await engine.grep(tree, GrepQuery(patterns=("Beta",), paths=("/data/a.txt",), case="smart"))
    assert [m["line_number"] for m in smart["matches"]] == [4]
    context = await engine.grep(tree, GrepQuery(patterns=("gamma",), paths=("/data",), before=1, after=1))
    assert [(m["line_number"], m["type"]) for m in context["matches"]] == [(2, "context"), (3, "match"),
                                                                         (4, "context")]
    assert context["matches"][0]["submatches"] == []
    conf = await engine.grep(tree, GrepQuery(patterns=("beta",), paths=("/data",), globs=("*.conf",)))
    assert lines(conf) == [("/data/sub/c.conf", 1, "match")]
    not_hidden = await engine.grep(tree, GrepQuery(patterns=("beta",), paths=("/data",), globs=("!.hidden",)))
    assert "/data/.hidden/h.txt" not in {m["path"] for m in not_hidden["matches"]}
    capped = await engine.grep(tree, GrepQuery(patterns=("beta", "alpha"), paths=("/data",), max_total=2,
                                               case="insensitive"))
    assert len(capped["matches"]) == 2 and capped["truncated"]
    per_file = await engine.grep(tree, GrepQuery(patterns=("a",), paths=("/data/a.txt",), max_count=1))
    assert [m["line_number"] for m in per_file["matches"]] == [1]


async def test_grep_refusals_and_confinement(engine: Engine, tree: Image, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="regular expression"):
        await engine.grep(tree, GrepQuery(patterns=("(",)))
    with pytest.raises(EngineError, match="absolute"):
        await engine.grep(tree, GrepQuery(patterns=("x",), paths=("data",)))
    with pytest.raises(NotFound):
        await engine.grep(tree, GrepQuery(patterns=("x",), paths=("/nope",)))
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only secret\n")
    with pytest.raises(NotFound):  # `..` stops at the image's root: the host's tmp dir is not there
        await engine.grep(tree, GrepQuery(patterns=("host only",), paths=(f"/../../..{tmp_path}",)))
    outside = await engine.grep(tree, GrepQuery(patterns=("host only",), paths=("/",)))
    assert outside["matches"] == []
