"""How a function step's return value is shown in text (`contree-tui call`, `pipeline --headless`): once, labelled,
and only when it adds something.

Seed 004's sieve prints its primes and (in our samples) returns them too: printing the function's output and
then the value gave the same list twice, the second unlabelled, so a reader could not tell output from result.
The rule: nothing for None; nothing when the value is what the function's output ended with (its last lines
equal the value's str, repr or JSON: the function already showed it); otherwise one line `→ returned: VALUE`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

from contree_tui.client.step_result import RETURNED
from contree_tui.pipeline.function_runner import encode_result, return_hint
from contree_tui.pipeline.functions import ReturnValue

NO_VALUE: Any = object()  # `original` not given (a sandbox step: only its JSON came back)
TAIL_CHARS = 1 << 20  # of a host call's output kept for the comparison: a value printed last fits in 1 MiB


def text_forms(value: ReturnValue, original: Any = NO_VALUE) -> set[str]:
    """The ways a function may have printed this value: print(v) (str), repr, JSON (as json.dumps writes it)."""
    if value.text is not None:
        forms = {value.text}
    else:
        data = value.data
        forms = {json.dumps(data), json.dumps(data, sort_keys=True), repr(data),
                 data if isinstance(data, str) else str(data)}
    if original is not NO_VALUE:  # on the host: the value itself, before JSON made a tuple a list
        forms |= {str(original), repr(original)}
    return {form.strip() for form in forms if form.strip()}


def already_printed(value: ReturnValue, printed: str, original: Any = NO_VALUE) -> bool:
    """Whether `printed` (the function's output) ends with the value, as whole lines."""
    lines = printed.rstrip().splitlines()
    for form in text_forms(value, original):
        count = len(form.splitlines())
        if count and "\n".join(line.rstrip() for line in lines[-count:]).strip() == form:
            return True
    return False


def returned_line(value: ReturnValue | None, printed: str = "", original: Any = NO_VALUE) -> str | None:
    """`→ returned: VALUE`, or None when there is nothing to add (None, or already printed)."""
    if value is None or already_printed(value, printed, original):
        return None
    return RETURNED + value.show()


def host_return_value(function: Callable[..., Any], value: Any) -> ReturnValue | None:
    """A host call's value as the sandbox's runner reports it (the return hint applied: a dataclass as its fields,
    a Path as its text; else JSON as is, else the repr), so `call` shows what the step would."""
    if value is None:
        return None
    payload = json.loads(encode_result(value, return_hint(function)))
    return ReturnValue(payload["json"]) if "json" in payload else ReturnValue(text=str(payload.get("repr")))


class TailWriter:
    """A text stream that writes through to `stream` and keeps the last TAIL_CHARS written (the function's output,
    shown as it comes and compared with its value at the end). Everything else is the stream's (isatty, buffer,
    fileno), so a function that inspects its stdout sees the real one."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tail = ""

    def write(self, text: str) -> int:
        self.tail = (self.tail + text)[-TAIL_CHARS:]
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


__all__ = ["RETURNED", "TailWriter", "already_printed", "host_return_value", "returned_line", "text_forms"]
