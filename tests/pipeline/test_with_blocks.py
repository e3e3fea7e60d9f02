"""Seed 004's context manager syntax: `with Serial() as root:` holds the nodes made inside it; `parent["two"] =
Exec(...)` and `obj.set(name="one")` name them; node parameters never go through a function's kwargs.
Before: `with Serial()` raised TypeError ("does not support the context manager protocol")."""

from __future__ import annotations

import pytest

from contree_tui.pipeline import Exec, FunctionStepError, Parallel, Serial
from contree_tui.pipeline.nodes import TreeError


def sieve(n: int) -> list[int]:
    return [i for i in range(2, n) if all(i % p for p in range(2, i))]


def myfunc(n: int, mykwarg: str = "A") -> str:
    return f"{n}{mykwarg}"


def primes_less_than(n: int) -> Serial:  # the seed's, with this package's names
    with Serial() as root:
        root["find primes"] = Exec(sieve, n)
    return root


def test_the_seeds_with_block_builds_its_tree() -> None:
    root = primes_less_than(30)
    assert list(root.children) == ["find primes"]
    assert root["find primes"].command.endswith("sieve --n=30")


def test_set_name_and_item_assignment_name_nodes_made_in_a_block() -> None:
    with Serial() as parent:
        obj = Exec(myfunc, 1, mykwarg="A")  # native function parameters come first
        obj.set(name="one")  # node parameters come second
        parent["two"] = Exec(myfunc, 2, mykwarg="B")
        Exec("echo unnamed")
    assert list(parent.children) == ["one", "two", "3"]
    assert [n.path for n in parent.walk()] == ["/", "/one", "/two", "/3"]
    with pytest.raises(FunctionStepError, match="unexpected keyword argument 'name'"):  # not a kwarg of myfunc
        Exec(myfunc, 1, name="one")


def test_nested_blocks_and_a_node_moved_out_of_the_block_it_was_made_in() -> None:
    with Serial() as root:
        with Parallel() as par:
            Exec("echo a").set(name="a")
            Exec("echo b").set(name="b")
        root["kw"] = par
        step = Exec("echo c")
        root["kw/c"] = step  # made in root's block, placed under kw
        root["last"] = Exec("echo d")
    assert [n.path for n in root.walk()] == ["/", "/kw", "/kw/a", "/kw/b", "/kw/c", "/last"]
    assert Exec("outside").parent is None  # the blocks are closed: nothing is added any more


def test_a_failing_block_closes_and_names_stay_checked() -> None:
    with pytest.raises(RuntimeError), Serial():
        raise RuntimeError("inside")
    assert Exec("after").parent is None
    with Serial() as root:
        Exec("x").set(name="one")
        with pytest.raises(TreeError, match="already exists"):
            Exec("y").set(name="one")
        with pytest.raises(TreeError, match="not a valid node name"):
            Exec("z").set(name="a/b")
    assert list(root.children) == ["one", "2", "3"]  # the refused names left the nodes where they were
