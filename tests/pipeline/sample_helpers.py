"""A module beside the pipeline file: function steps import it in the sandbox as they do on the host."""


def double(n: int) -> int:
    return 2 * n
