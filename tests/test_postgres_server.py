"""The tests' PostgreSQL server never outlives them, even when the test session is killed with SIGTERM."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

INNER = '''
import os, time
from pathlib import Path

def test_holds_the_server(postgres_server):
    Path(os.environ["SERVER_FILE"]).write_text(f"{postgres_server.data.parent}\\n{postgres_server.port}")
    time.sleep(120)
'''


def test_a_session_ended_by_sigterm_stops_its_server(tmp_path, postgres_server):
    # postgres_server: this session has one, so the inner one will start too (or CI's requirement fails here)
    (tmp_path / "test_inner.py").write_text(INNER)
    server_file = tmp_path / "server.txt"
    env = {**os.environ, "SERVER_FILE": str(server_file), "PYTHONPATH": str(Path(__file__).parent)}
    inner = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                              str(tmp_path / "test_inner.py")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not server_file.exists() and inner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server_file.exists(), inner.stdout.read() if inner.poll() is not None else "no server in 90 s"
        root, port = server_file.read_text().split("\n")
        assert _accepts(int(port))
        inner.send_signal(signal.SIGTERM)
        assert inner.wait(timeout=60) == -signal.SIGTERM  # it still ends as SIGTERM ends a process
        assert not _accepts(int(port)) and not Path(root).exists()
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
