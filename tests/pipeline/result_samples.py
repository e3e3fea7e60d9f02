"""Function steps for tests/pipeline/test_step_result_logs.py, in a file of their own: the runner imports a
step's file in the sandbox, where only the pipeline's folder is (no `tests` package, no pytest)."""

from __future__ import annotations


def greet(name: str) -> dict[str, int]:
    """Prints a line, then a partial one, and returns a dict (keys out of order: shown sorted)."""
    print(f"hello {name}")
    print("no newline", end="")
    return {"words": 2, "letters": len(name)}


def echo_back(word: str) -> str:
    """Prints its value last: the pipeline view adds no returned line."""
    print(word)
    return word


def many(n: int) -> list[int]:
    """A value of n numbers (120 kB at 20,000): its record spans more than one read of the sandbox's pipe."""
    print("counting")
    return list(range(n))
