"""`harness scheduler`: Dask's scheduler, on loopback unless told otherwise (`dask scheduler` works too)."""
from __future__ import annotations

import asyncio


def serve(host: str, port: int) -> None:
    from distributed import Scheduler

    async def run() -> None:
        async with Scheduler(host=host, port=port, dashboard=False) as scheduler:
            print(f"scheduler at {scheduler.address}", flush=True)
            await scheduler.finished()

    asyncio.run(run())
