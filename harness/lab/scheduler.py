"""`harness scheduler`: Dask's scheduler, on loopback unless told otherwise (`dask scheduler` works too)."""
from __future__ import annotations

import asyncio


def serve(host: str, port: int, protocol: str = "tcp") -> None:
    """protocol tls: certificates from Dask's configuration (distributed.comm.tls.*; see the README)."""
    from distributed import Scheduler

    async def run() -> None:
        async with Scheduler(host=host, port=port, protocol=protocol, dashboard=False) as scheduler:
            print(f"scheduler at {scheduler.address}", flush=True)
            await scheduler.finished()

    asyncio.run(run())
