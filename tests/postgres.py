"""A real PostgreSQL server for the tests: initdb + pg_ctl into a temporary directory, on a free
loopback port, stopped when the test session ends. Debian's `postgresql` package provides it (CI
installs it); initdb refuses root, so as root the server runs as the `postgres` user."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60


@dataclass
class Server:
    bin_dir: Path
    data: Path
    port: int
    run_as: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args], check=True,
                       capture_output=True, timeout=timeout)


def binaries() -> Path | None:
    """The newest installed server's bin directory (Debian keeps it off PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start() -> Server:
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL server installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = Server(bin_dir, root / "data", _free_port(), run_as)
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=START_TIMEOUT_S)
    options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    server.pg_ctl("-l", str(root / "server.log"), "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start",
                  timeout=START_TIMEOUT_S + 10)
    return server


def stop(server: Server) -> None:
    try:
        server.pg_ctl("-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(server.data.parent, ignore_errors=True)
