"""Batch throughput on a Dask cluster, measured side by side in one run (by hand: `python bench/cluster.py`).

- `grader batch --jobs N` (the local worker pool) next to `grader batch --scheduler` on a LocalCluster of N
  single-threaded worker processes, for N = 1 and 2: the same cores, so the ratio is Dask's overhead (the
  client's loading of each submission, the course's trip, the scheduler's round trips).
- 2 workers against 1: how the cluster scales.

Each configuration is measured `--runs` times, interleaved with the other engine's runs so that the machine's
drift hits both alike; medians are printed. Each cluster grades one warm-up batch first: a long-lived cluster's
workers have the grader imported already.
Needs the dask extra (pip install 'micrograd-grader[dask]') and bubblewrap, as grading does.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from bench import class_folder, grader
from distributed import LocalCluster


def batch_rate(folder: Path, copies: int, out: Path, *options: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return copies / grader("batch", str(folder), "--out-dir", str(out), *options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=40, help="submissions in the class (default 40)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration (default 3)")
    options = parser.parse_args()
    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = class_folder(tmp, options.copies)
        out = Path(tmp) / "out"
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              scheduler_port=0) as cluster:
                dask = ("--scheduler", cluster.scheduler_address)
                batch_rate(folder, options.copies, out, *dask)  # warm-up: the workers import the grader
                for _ in range(options.runs):
                    rates.setdefault(("local", workers), []).append(
                        batch_rate(folder, options.copies, out, "--jobs", str(workers)))
                    rates.setdefault(("dask", workers), []).append(batch_rate(folder, options.copies, out, *dask))
    rate = {key: statistics.median(values) for key, values in rates.items()}
    print(f"grader batch, {options.copies} submissions, median of {options.runs} runs")
    print(f"{'cores':<8}{'local pool':>14}{'Dask':>14}   Dask / local")
    for workers in (1, 2):
        local, dask = rate[("local", workers)], rate[("dask", workers)]
        print(f"{workers:<8}{local:>11.2f} /s{dask:>11.2f} /s   {dask / local:.2f}x")
    local_scaling, dask_scaling = rate[("local", 2)] / rate[("local", 1)], rate[("dask", 2)] / rate[("dask", 1)]
    print(f"{'2 / 1':<8}{local_scaling:>12.2f}x{dask_scaling:>12.2f}x")


if __name__ == "__main__":
    main()
