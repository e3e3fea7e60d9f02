"""`contree-tui call FILE FUNC [args]`, run as a user runs it (the program in a subprocess): seed 004's sieve
reproduced on the host, and what a call that does not fit says."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.client.conftest import CLI

# seed 004's pipeline file as its page has it (Conducto's `seive` spelling), on contree_tui.pipeline
SEED_004 = '''\
import contree_tui.pipeline as co


def seive(n: int):
    """Print all of the prime numbers less than n"""
    primes = []
    for i in range(2, n):
        if all([i % p for p in primes]):
            primes.append(i)
    print(primes)


def untyped(n):
    return list(range(2, n))


def primes_less_than(n: int) -> co.Serial:
    root = co.Serial()
    root["find primes"] = co.Exec(seive, n)
    return root
'''


def call(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    pipe = tmp_path / "prim.py"
    pipe.write_text(SEED_004)
    return subprocess.run([*CLI, "call", str(pipe), *args], capture_output=True, text=True, timeout=60, check=False)


def test_call_prints_the_sieves_output_as_the_step_would(tmp_path: Path) -> None:
    done = call(tmp_path, "seive", "--n=30")
    assert (done.returncode, done.stdout, done.stderr) == (0, "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n", "")
    assert call(tmp_path, "seive", "30").stdout == "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"  # positional, too


def test_call_that_does_not_fit_the_function_exits_2_with_one_line(tmp_path: Path) -> None:
    for args, message in ((("seive", "--n=x"), "seive() argument n: cannot read 'x' as int"),
                          (("seive", "--m=3"), "unknown argument --m"),
                          (("nope",), "has no function 'nope'")):
        done = call(tmp_path, *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    done = subprocess.run([*CLI, "call", str(tmp_path / "missing.py"), "seive"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stderr) == (2, f"contree-tui call: {tmp_path / 'missing.py'}: no such file\n")


def test_call_of_an_unhinted_parameter_passes_a_str_and_shows_the_users_traceback(tmp_path: Path) -> None:
    done = call(tmp_path, "untyped", "--n=5")  # no hint: n is '5', as in Conducto, and range() refuses it
    assert done.returncode == 1
    assert "TypeError: 'str' object cannot be interpreted as an integer" in done.stderr


def test_file_colon_func_as_pipeline_takes_it(tmp_path: Path) -> None:
    """`call prim.py:seive --n=30`, the way `pipeline prim.py:primes_less_than` is written: argparse answered
    "the following arguments are required: FUNC, ARG"."""
    pipe = tmp_path / "prim.py"
    pipe.write_text(SEED_004)
    for args in (["--n=30"], ["30"]):
        done = subprocess.run([*CLI, "call", f"{pipe}:seive", *args], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"
    no_func = subprocess.run([*CLI, "call", str(pipe)], capture_output=True, text=True, timeout=60, check=False)
    assert no_func.returncode == 2
    assert no_func.stderr.strip() == f"contree-tui call: give the function: {pipe} FUNC or {pipe}:FUNC"


RETURNING = '''\
def sieve(n: int) -> list[int]:
    primes = []
    for i in range(2, n):
        if all(i % p for p in primes):
            primes.append(i)
    print(primes)
    return primes


def count(n: int) -> int:
    return n


def report(n: int) -> dict:
    print("working on", n)
    return {"n": n, "done": True}


def pair(n: int) -> tuple:
    print((n, n + 1))
    return (n, n + 1)


def nothing(n: int) -> None:
    print("said", n)


def takes_json(n: int, json: bool = False) -> list:
    return [n, json]
'''


def call_returning(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    pipe = tmp_path / "ret.py"
    pipe.write_text(RETURNING)
    return subprocess.run([*CLI, "call", str(pipe), *args], capture_output=True, text=True, timeout=60, check=False)


def test_a_value_the_function_printed_is_shown_once_any_other_once_labelled(tmp_path: Path) -> None:
    """The sieve prints its primes and returns them: the list once (it came twice, the second time as bare
    JSON, so output and value could not be told apart)."""
    for args, stdout in ((("sieve", "--n=30"), "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"),
                         (("count", "30"), "→ returned: 30\n"),
                         (("report", "--n=3"), 'working on 3\n→ returned: {"done": true, "n": 3}\n'),
                         (("pair", "3"), "(3, 4)\n"),  # printed as a tuple; its JSON is a list: the same value
                         (("nothing", "3"), "said 3\n")):
        done = call_returning(tmp_path, *args)
        assert (done.returncode, done.stdout, done.stderr) == (0, stdout, ""), args


def test_json_prints_the_value_alone_for_machines(tmp_path: Path) -> None:
    done = call_returning(tmp_path, "sieve", "--n=12", "--json")
    assert (done.returncode, done.stdout, done.stderr) == (0, "[2, 3, 5, 7, 11]\n", "[2, 3, 5, 7, 11]\n")
    done = call_returning(tmp_path, "--json", "report", "3")
    assert (done.stdout, done.stderr) == ('{"done": true, "n": 3}\n', "working on 3\n")
    assert call_returning(tmp_path, "nothing", "--json", "--n=1").stdout == "null\n"
    pipe = tmp_path / "ret.py"
    colon = subprocess.run([*CLI, "call", f"{pipe}:count", "--json", "7"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert (colon.returncode, colon.stdout) == (0, "7\n"), colon.stderr
    own = call_returning(tmp_path, "takes_json", "--json", "3")  # a parameter named json: the function's flag
    assert (own.returncode, own.stdout) == (0, "→ returned: [3, true]\n"), own.stderr
    assert call_returning(tmp_path, "--json", "takes_json", "--json", "3").stdout == "[3, true]\n"
