"""Serving the dashboard: waitress (a pure-Python production WSGI server) on loopback unless told otherwise."""
from __future__ import annotations

import ipaddress
import socket
import threading

from waitress.server import create_server

from ..analysis.claims import check_all
from .app import create_app

THREADS = 8


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


EXPOSED = ("{host} is reachable from other machines: anyone who can reach port {port} can read every run, log, "
           "environment and host name in this database (there is no login and no TLS); the dashboard never writes")


def make_server(engine, host: str, port: int, resolution: int = 256):
    """A waitress server bound to (host, port), not yet serving; port 0 picks a free one (server.effective_port).
    The claims' bootstrap intervals are computed in the background meanwhile (about a second per 400 checks),
    so the first visitor of the claims page does not wait for them."""
    server = create_server(create_app(engine, resolution), host=host, port=port, threads=THREADS,
                           ident="fastvit-harness")
    threading.Thread(target=check_all, args=(engine,), name="claims-warm-up", daemon=True).start()
    return server
