"""The pipeline model without an engine: paths, names, parameters and their inheritance, argument checking
when a node is defined, the argument codec's round trips, the pipeline loader."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from contree_tui.pipeline import Exec, FunctionStepError, Parallel, PipelineError, Serial, TreeError, call_local
from contree_tui.pipeline.executor import check_runnable
from contree_tui.pipeline.function_runner import decode_call, encode_call
from contree_tui.pipeline.loader import load_pipeline
from contree_tui.pipeline.nodes import pretty
from tests.pipeline import sample_pipelines as sp

PIPE = Path(sp.__file__)


def test_nodes_are_addressed_by_path() -> None:
    root = Serial()
    root["build"] = Parallel()
    root["build/test"] = Exec("true")
    assert str(root["build/test"]) == "/build/test"
    assert root["/build"]["/build/test"] is root["build"]["test"]  # a leading / starts at the root
    assert "build/none" not in root


@pytest.mark.parametrize("name", ["", "a/b/", "..", "x\n", " pad"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(TreeError):
        Serial()[name] = Exec("true")


def test_duplicate_and_reused_nodes_are_refused_with_their_paths() -> None:
    root = Serial()
    root["a"] = Exec("true")
    with pytest.raises(TreeError, match="/a already exists"):
        root["a"] = Exec("true")
    other = Serial()
    with pytest.raises(TreeError, match="/a is already in a pipeline"):
        other["b"] = root["a"]
    with pytest.raises(TreeError, match="cannot contain itself"):
        root["self"] = root


def test_parameters_are_inherited_and_env_merges() -> None:
    root = Serial().set(image="tag:busybox:latest", env={"A": "1", "B": "1"}, timeout=30)
    root["p"] = Parallel().set(env={"B": "2"}, cwd="/work")
    leaf = root["p"].add("leaf", Exec("true").set(env={"C": "3"}, disposable=True))  # type: ignore[union-attr]
    eff = leaf.effective()
    assert (eff.image, eff.timeout, eff.cwd, eff.disposable) == ("tag:busybox:latest", 30, "/work", True)
    assert dict(eff.env) == {"A": "1", "B": "2", "C": "3"}
    root["p"].set(skip=True)
    assert leaf.effective().skip  # a skipped parent skips its subtree


def test_set_refuses_bad_values() -> None:
    with pytest.raises(PipelineError, match="timeout"):
        Exec("true").set(timeout=-1)
    with pytest.raises(PipelineError, match="env"):
        Exec("true").set(env={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(PipelineError, match="tag"):
        Serial().set(tag="x")
    with pytest.raises(PipelineError, match=r"image 'busybox:latest' is not a reference.*tag:busybox:latest\?"):
        Serial().set(image="busybox:latest")
    with pytest.raises(TypeError):
        Exec("true").set(cpu=2)  # type: ignore[call-arg]


def test_node_parameters_never_mix_with_function_kwargs() -> None:
    with pytest.raises(FunctionStepError, match="unexpected keyword argument 'image'"):
        Exec(sp.sieve, 30, image="tag:x")
    node = Exec(sp.sieve, 30).set(image="tag:x")
    assert node.params.image == "tag:x"


def test_a_wrong_argument_type_is_refused_at_definition_naming_the_parameter() -> None:
    with pytest.raises(FunctionStepError, match=r"sieve\(\) argument n='30' is a str, but its hint is int"):
        Exec(sp.sieve, "30")
    with pytest.raises(FunctionStepError, match=r"box.size='big' is a str, but its hint is int"):
        Exec(sp.pack, sp.Box("a", "big", []))  # type: ignore[arg-type]
    with pytest.raises(FunctionStepError, match="missing a required argument: 'n'"):
        Exec(sp.sieve)


def test_lambdas_nested_and_interactive_functions_are_refused() -> None:
    with pytest.raises(FunctionStepError, match="lambda"):
        Exec(lambda n: n, 1)

    def inner(n: int) -> int:
        return n

    with pytest.raises(FunctionStepError, match="nested function"):
        Exec(inner, 1)
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec("def typed(n: int):\n    return n\n", namespace)  # what a function typed at the REPL looks like
    with pytest.raises(FunctionStepError, match="interactive session"):
        Exec(namespace["typed"], 1)  # type: ignore[arg-type]


def test_a_parameter_without_hint_is_a_str_and_the_description_says_so() -> None:
    node = Exec(sp.shout, 30)
    assert "no type hint on word: passed as str" in node.describe()


ALL_TYPES = dict(
    i=7, f=2.5, s="it's a 'quoted' \"str\" with spaces", b=False, raw=b"\x00\xffbin", p=Path("/a b/c"),
    c=sp.Colour.GREEN, d=datetime.date(2020, 3, 3), t=datetime.datetime(2021, 1, 2, 3, 4, 5),
    nums=[1, 2, 3], pair=("x", 2), mapping={"k": [1, 2], "empty": []},
    box=sp.Box("crate", 3, ["a", "b,c"], datetime.date(1999, 12, 31)), point=sp.Point(1, -2),
    maybe=None, other=5, text_or_none=None, untyped="30")

EXPECTED = {
    "i": [7, "int"], "f": [2.5, "float"], "s": ALL_TYPES["s"], "b": False, "raw": "00ff62696e", "p": "/a b/c",
    "p_type": "PosixPath", "c": "GREEN", "d": "2020-03-03", "d_type": "date", "t": "2021-01-02T03:04:05",
    "nums": [1, 2, 3], "pair": [["x", 2], "tuple"], "mapping": {"k": [1, 2], "empty": []},
    "box": ["crate", 3, ["a", "b,c"], "1999-12-31", "Box"], "point": [1, -2, "Point"], "maybe": None,
    "other": 5, "text_or_none": None, "untyped": ["30", "str"],
}


def test_every_hint_round_trips_through_the_command_line() -> None:
    argv = encode_call(sp.echo_types, (), ALL_TYPES)
    assert "--none-maybe" in argv and "--no-b" in argv
    _args, kwargs = decode_call(sp.echo_types, argv)
    assert sp.echo_types(**kwargs) == EXPECTED


def test_call_local_reproduces_a_step_on_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert call_local(PIPE, "sieve", ["--n=30"]) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert call_local(PIPE, "sieve", ["10"]) == [2, 3, 5, 7]  # positionals, as a user types them
    assert "[2, 3, 5, 7]" in capsys.readouterr().out


def test_load_pipeline_builds_the_tree_from_file_and_function() -> None:
    root = load_pipeline(f"{PIPE}:primes_less_than", ["--n=30"])
    assert pretty(root).splitlines() == ["/   [serial]", "└─0 find primes   contree-tui call sample_pipelines.py "
                                         "sieve --n=30"]
    with pytest.raises(PipelineError, match="returned list, not a Serial"):
        load_pipeline(f"{PIPE}:sieve", ["5"])
    with pytest.raises(PipelineError, match="has no function 'nope'"):
        load_pipeline(f"{PIPE}:nope")
    with pytest.raises(PipelineError, match="expected FILE:FUNC"):
        load_pipeline(str(PIPE))
    with pytest.raises(PipelineError, match="argument n: cannot read 'x' as int"):
        load_pipeline(f"{PIPE}:primes_less_than", ["--n=x"])


def test_what_would_fail_half_way_is_refused_before_anything_runs() -> None:
    root = Serial()
    root["a"] = Exec("true")
    with pytest.raises(PipelineError, match="/a: no image to run on"):
        check_runnable(root, None)
    check_runnable(root, "tag:busybox:latest")
    root["b"] = Exec("true").set(tag="t1", disposable=True)
    with pytest.raises(PipelineError, match="/b: tag 't1' on a disposable step"):
        check_runnable(root, "tag:busybox:latest")
    root["b"].set(disposable=False)
    root["c"] = Exec("true").set(tag="t1")
    with pytest.raises(PipelineError, match="/c: tag 't1' is already /b's checkpoint"):
        check_runnable(root, "tag:busybox:latest")


def test_continue_from_must_name_a_child_of_the_parallel(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"continue_from='buld' is not a child of this Parallel \(its children: "
                                            r"'build', 'lint'\)"):
        Parallel({"build": Exec("make"), "lint": Exec("lint")}, continue_from="buld")
    later = Parallel(continue_from="build")  # children added afterwards: checked when a run is made
    root = Serial({"fan": later})
    later["lint"] = Exec("lint")
    with pytest.raises(PipelineError, match=r"^/fan: continue_from='build' is not a child"):
        check_runnable(root, "tag:x")
    later["build"] = Exec("make")
    check_runnable(root, "tag:x")
    with pytest.raises(PipelineError, match="takes the name of one of the Parallel's children"):
        Parallel(continue_from="a/b")
    assert pretty(root).splitlines()[1] == "└─0 fan   [parallel, continue_from=build]"
