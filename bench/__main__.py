"""Run every benchmark module in bench/ that defines ``main()``, in name order."""

from __future__ import annotations

import importlib
import pkgutil
import time

import bench


def main() -> None:
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        run = getattr(module, "main", None)
        if not callable(run):
            continue
        print(f"=== bench.{info.name}", flush=True)
        started = time.perf_counter()
        run()
        print(f"=== bench.{info.name} done in {time.perf_counter() - started:.1f} s\n", flush=True)


if __name__ == "__main__":
    main()
