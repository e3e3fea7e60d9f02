"""The CLI's two pipeline entries, called as the CLI will call them: output, messages, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from contree_tui.client.connection import Connection
from contree_tui.client.debian_bootstrap import default_suite
from contree_tui.pipeline.entry import call_main, pipeline_headless_main
from contree_tui.pipeline.python_image import python_image_hint
from tests.pipeline import sample_pipelines as sp

PIPE = str(Path(sp.__file__))


def test_call_prints_the_functions_output_once_when_it_printed_its_value(capsys: pytest.CaptureFixture[str]) -> None:
    """The sieve prints its primes and returns them: the list once (it printed twice, the second unlabelled)."""
    out, err = io.StringIO(), io.StringIO()
    assert call_main(PIPE, "sieve", ["--n=30"], out=out, err=err) == 0
    assert out.getvalue() == "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"
    assert capsys.readouterr().out == "" and err.getvalue() == ""


def test_call_labels_a_value_the_function_did_not_print() -> None:
    out = io.StringIO()
    assert call_main(PIPE, "shout", ["hey"], out=out, err=io.StringIO()) == 0
    assert out.getvalue() == '→ returned: "HEY"\n'


def test_call_json_prints_the_value_alone_and_the_output_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert call_main(PIPE, "sieve", ["--n=12"], out=out, err=err, as_json=True) == 0
    assert json.loads(out.getvalue()) == [2, 3, 5, 7, 11] and out.getvalue().count("\n") == 1
    assert err.getvalue() == "[2, 3, 5, 7, 11]\n"


def test_call_says_what_is_wrong_without_a_traceback_of_ours() -> None:
    for argv, func, message in ((["--n=x"], "sieve", "sieve() argument n: cannot read 'x' as int"),
                                (["--m=3"], "sieve", "unknown argument --m"),
                                ([], "nope", "has no function 'nope'")):
        err = io.StringIO()
        assert call_main(PIPE, func, argv, out=io.StringIO(), err=err) == 2
        assert message in err.getvalue() and "Traceback" not in err.getvalue()
    err = io.StringIO()
    assert call_main(PIPE, "fail", ["boom"], out=io.StringIO(), err=err) == 1
    assert "RuntimeError: boom" in err.getvalue()  # the user's own traceback


async def test_pipeline_headless_builds_runs_and_reports(connection: Connection) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert await pipeline_headless_main(f"{PIPE}:chain", ["2"], connection, image="tag:busybox:latest", out=out,
                                        err=err) == 0
    assert "pipeline done: P:0  Q:0  R:0  D:2  E:0  K:0" in out.getvalue()
    err = io.StringIO()
    assert await pipeline_headless_main(f"{PIPE}:chain", [], connection, out=io.StringIO(), err=err) == 2
    assert err.getvalue() == ("contree-tui pipeline: /step1: no image to run on: set image= on it or a parent, "
                              "or give the run an image (--image; without it, the folder's working snapshot: it has "
                              "none yet)\n")
    err = io.StringIO()  # a function step: which image it needs, and where one comes from
    assert await pipeline_headless_main(f"{PIPE}:primes_less_than", ["30"], connection, out=io.StringIO(),
                                        err=err) == 2
    assert err.getvalue().endswith(f"none yet) with python3, which a function step needs ({python_image_hint()})\n")
    assert python_image_hint() == f"`contree-tui engine bootstrap debian` makes one: --image debian:{default_suite()}"
