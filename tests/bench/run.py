"""Run every benchmark: tests/bench/bench_*.py, each file's ``main()``, in name order.

Each benchmark measures its baseline in the same run and prints its own table
(whatever ``main()`` returns, if not None, is printed too). A benchmark that
cannot run here says why instead: a module-level ``skip_reason()`` returning a
string, or ``unittest.SkipTest`` raised from ``main()``. Any other exception is
reported and makes the run exit non-zero after the remaining benchmarks ran.

    .venv/bin/python tests/bench/run.py [NAME_SUBSTRING...]
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(filters: list[str]) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    return [f for f in files if not filters or any(s in f.stem for s in filters)]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_one(path: Path) -> str:
    """Run one benchmark file; return ``ok``, ``skipped`` or ``failed``."""
    print(f"== {path.stem} ==", flush=True)
    start = time.perf_counter()
    try:
        module = load(path)
        reason = module.skip_reason() if hasattr(module, "skip_reason") else None
        if reason:
            print(f"skipped: {reason}")
            return "skipped"
        result = module.main()
        if result is not None:
            print(result)
    except unittest.SkipTest as exc:
        print(f"skipped: {exc}")
        return "skipped"
    except Exception:  # noqa: BLE001 - report every benchmark, then fail the run
        traceback.print_exc()
        print(f"FAILED: {path.name}")
        return "failed"
    finally:
        print(f"({time.perf_counter() - start:.1f} s)\n", flush=True)
    return "ok"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    files = discover(argv)
    if not files:
        print(f"no benchmarks matched under {HERE}")
        return 1
    outcomes = {path.stem: run_one(path) for path in files}
    counts = {k: sum(v == k for v in outcomes.values()) for k in ("ok", "skipped", "failed")}
    print(f"bench: {counts['ok']} ran, {counts['skipped']} skipped, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
