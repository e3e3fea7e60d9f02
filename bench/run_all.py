"""Run every benchmark, one after another, each in its own Python process; exit 1 if any failed.

    python3 bench/run_all.py                 # all of them
    python3 bench/run_all.py true chain      # only bench_true.py and bench_chain.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCHMARKS = ("bench_true", "bench_commit", "bench_chain", "bench_throughput", "bench_api", "bench_sync",
              "bench_lineage", "bench_tui_logs", "bench_tui_tree", "bench_inspect",
              "bench_isolation", "bench_import", "bench_export", "bench_archive_source", "bench_import_rootfs",
              "bench_pipeline", "bench_rootless")


def main(argv: list[str]) -> int:
    wanted = [name if name.startswith("bench_") else f"bench_{name}" for name in argv] or list(BENCHMARKS)
    unknown = [name for name in wanted if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in wanted:
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(BENCH_DIR / f"{name}.py")], cwd=BENCH_DIR.parent)
        print(f"-- {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - started:.1f} s\n",
              flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
