"""`harness agent`: a Dask worker on a machine with devices. It advertises every target available
here as a resource, plus `machine:NAME` = 1, which every job takes whole: two runs never overlap on
one machine (they would corrupt each other's timings), and a job meant for this machine can only
ever run here."""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from . import tasks

MACHINE = "machine:"  # + agent name: the machine-wide resource of 1
TARGET = "target:"  # + target name: one per available target


def resources(name: str, targets: list[str]) -> dict[str, float]:
    return {f"{MACHINE}{name}": 1, **{f"{TARGET}{t}": 1 for t in targets}}


def serve(scheduler: str, name: str | None, cache: Path, host: str = "127.0.0.1") -> None:
    """Run the agent until it is stopped (Ctrl-C, SIGTERM) or the scheduler goes away for good."""
    from distributed import Worker

    name = name or socket.gethostname()
    tasks.AGENT.update(name=name, cache=str(Path(cache).resolve()))
    offered = resources(name, tasks.available_targets())

    async def run() -> None:
        # one thread: jobs run one at a time anyway (the machine resource); no nanny, so a killed
        # agent is gone, not restarted behind the controller's back
        # a tls:// scheduler: the agent listens with TLS too (certificates from Dask's configuration)
        protocol = scheduler.split("://", 1)[0] if "://" in scheduler else "tcp"
        async with Worker(scheduler, name=name, nthreads=1, resources=offered, host=host, protocol=protocol,
                          dashboard=False) as worker:
            await worker.finished()

    asyncio.run(run())
