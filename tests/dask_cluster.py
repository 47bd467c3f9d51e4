"""A real Dask LocalCluster (worker processes under nannies) for the tests, run in a process of its own, so that
the test process, which forks grading workers, never starts a Dask thread.

Usage: python dask_cluster.py N_WORKERS. Prints the scheduler's address, then answers one JSON line per command
read on stdin; stops the cluster at the end of stdin (when the test, or its process, ends):
  workers             {address: pid} of the workers now
  busy                {address: number of tasks processing} of the workers now
  version V           every worker's grader claims version V (a worker of another grader release)
  env NAME VALUE      every worker's environment gets NAME=VALUE
  hide MODULE         no worker can import MODULE any more (a worker without that part of the grader)
"""
import json
import os
import sys

from distributed import Client, LocalCluster


def set_version(version: str) -> None:
    import grader

    grader.__version__ = version


def set_env(name: str, value: str) -> None:
    os.environ[name] = value  # a function: os.environ.__setitem__ would be pickled with a copy of os.environ


def hide(module: str) -> None:
    sys.modules[module] = None  # type: ignore[assignment] - how Python marks a module that cannot be imported


def main() -> None:
    cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_port=0)
    client = Client(cluster)
    print(cluster.scheduler_address, flush=True)
    try:
        for line in sys.stdin:
            command, *args = line.split()
            if command == "workers":
                answer = client.run(os.getpid)
            elif command == "busy":
                answer = {worker: len(keys) for worker, keys in client.processing().items()}
            elif command == "version":
                answer = client.run(set_version, args[0])
            elif command == "env":
                answer = client.run(set_env, args[0], args[1])
            elif command == "hide":
                answer = client.run(hide, args[0])
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
