"""Pipelines and step functions the tests run: an ordinary pipeline file, imported on the host and, stdlib only,
inside the sandbox (where contree_tui is not installed)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from pathlib import Path
from typing import Optional

import contree_tui.pipeline as cp
from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.nodes import Node  # any import of contree_tui works in a sandbox without it


def sieve(n: int) -> list[int]:
    """Print all of the prime numbers less than n (seed 004), and return them."""
    primes: list[int] = []
    for i in range(2, n):
        if all(i % p for p in primes):
            primes.append(i)
    print(primes)
    return primes


def primes_less_than(n: int) -> Serial:
    root = Serial()
    root["find primes"] = Exec(sieve, n)
    return root


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


@dataclasses.dataclass
class Box:
    name: str
    size: int
    tags: list[str]
    when: Optional[datetime.date] = None  # noqa: UP045  (typing.Optional on purpose: both spellings work)


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def to_str(self) -> str:
        return f"{self.x}:{self.y}"

    @classmethod
    def from_str(cls, text: str) -> Point:
        x, y = text.split(":")
        return cls(int(x), int(y))


def echo_types(i: int, f: float, s: str, b: bool, raw: bytes, p: Path, c: Colour, d: datetime.date,
               t: datetime.datetime, nums: list[int], pair: tuple[str, int], mapping: dict[str, list[int]],
               box: Box, point: Point, maybe: Optional[int],  # noqa: UP045  (typing.Optional on purpose)
               other: int | None, text_or_none: str | None, untyped) -> dict:
    """Every supported hint, returned as JSON-able text so the test can compare what arrived."""
    return {
        "i": [i, type(i).__name__], "f": [f, type(f).__name__], "s": s, "b": b, "raw": raw.hex(), "p": str(p),
        "p_type": type(p).__name__, "c": c.name, "d": d.isoformat(), "d_type": type(d).__name__,
        "t": t.isoformat(), "nums": nums, "pair": [list(pair), type(pair).__name__], "mapping": mapping,
        "box": [box.name, box.size, box.tags, box.when.isoformat() if box.when else None, type(box).__name__],
        "point": [point.x, point.y, type(point).__name__], "maybe": maybe, "other": other,
        "text_or_none": text_or_none, "untyped": [untyped, type(untyped).__name__],
    }


def fail(message: str) -> None:
    raise RuntimeError(message)


def chain(steps: int = 3) -> Serial:
    """Each step appends to a file the previous one wrote: only a chain of snapshots gives '1 2 3'."""
    root = Serial()
    for i in range(1, steps + 1):
        root[f"step{i}"] = Exec(f"echo {i} >> /chain.txt && cat /chain.txt")
    return root


def fan_out(width: int = 4, seconds: float = 1.0) -> Parallel:
    root = Parallel()
    for i in range(width):
        root[f"branch{i}"] = Exec(f"echo branch{i} > /branch.txt && sleep {seconds} && ls /")
    return root


def failing(stop_on_error: bool = True) -> Serial:
    root = Serial(stop_on_error=stop_on_error)
    root["ok"] = Exec("echo ok > /ok.txt")
    root["boom"] = Exec("echo boom >&2; exit 3")
    root["after"] = Exec("cat /ok.txt")
    return root


def pack(box: Box) -> int:
    return box.size


def shout(word) -> str:  # no hint: the step gets a str, as Conducto does
    return str(word).upper()


def doubled(n: int) -> int:
    from sample_helpers import double  # a sibling of the pipeline file, as the sandbox has it

    return double(n)


def positional_only(a: int, /, b: int = 1) -> int:
    return a - b


def tree_of(kind: str) -> Node:
    return cp.Serial() if kind == "serial" else cp.Parallel()
