"""The lab's verbs: a machine offering its devices (`agent`) and the scheduler they meet at."""
from __future__ import annotations

from typing import Optional

import typer

from ..measure import plan
from .common import LAB, CacheOption, fail

app = typer.Typer()


@app.command(rich_help_panel=LAB)
def agent(
    scheduler: str = typer.Option(..., "--scheduler", help="the lab's scheduler, tcp://HOST:PORT"),
    name: Optional[str] = typer.Option(None, "--name", help="this machine's name in the lab and in the results "
                                       "(default: the hostname)"),
    listen: str = typer.Option("127.0.0.1", "--listen", help="address to listen on; loopback unless the lab "
                               "is on a network (then use TLS, see the README)"),
    cache: CacheOption = plan.DEFAULT_CACHE,
):
    """Offer this machine's devices to a lab: runs the jobs a `harness run --cluster` sends, one at a time."""
    from ..lab import agent as lab_agent
    from ..lab import controller

    try:
        plan.check_cache(cache)
        controller.connect(scheduler).close()  # unreachable: one sentence now, not a retry loop
    except (ValueError, controller.ClusterError) as exc:
        fail(str(exc))
    lab_agent.serve(scheduler, name, cache, listen)


@app.command(rich_help_panel=LAB)
def scheduler(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback unless told otherwise)"),
    port: int = typer.Option(8786, "--port", min=1, max=65535),
    tls: bool = typer.Option(False, "--tls", help="listen on tls:// with the certificates in Dask's configuration"),
):
    """Start a lab's scheduler (Dask's, as `dask scheduler` would); agents and `harness run --cluster` connect to it."""
    from ..lab.scheduler import serve

    try:
        serve(host, port, "tls" if tls else "tcp")
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc})")
