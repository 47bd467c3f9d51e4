"""Fixtures shared by several test files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

CLUSTER_SCRIPT = Path(__file__).with_name("dask_cluster.py")


class DaskCluster:
    """A real Dask LocalCluster with worker processes, run by tests/dask_cluster.py in a process of its own."""

    def __init__(self, workers: int) -> None:
        self.process = subprocess.Popen([sys.executable, str(CLUSTER_SCRIPT), str(workers)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.process.stdout.readline().strip()
        assert self.address.startswith("tcp://"), "the test cluster did not start"

    def ask(self, *words: str):
        self.process.stdin.write(" ".join(words) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def dask_cluster():
    """A LocalCluster of two single-threaded worker processes, each under a nanny that restarts it if it dies."""
    cluster = DaskCluster(2)
    yield cluster
    cluster.close()
