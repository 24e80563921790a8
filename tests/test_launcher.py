"""`PIU_HOME=<dir> piu serve --port <p> --no-browser` serves /healthz and keeps every file inside <dir>."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_keeps_its_data_in_piu_home(tmp_path: Path):
    home, port = tmp_path / "home", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")} | {"PIU_HOME": str(home)}
    server = subprocess.Popen([sys.executable, "-m", "piu_app", "serve", "--port", str(port), "--no-browser"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz")
        assert health["status"] == "ok" and health["version"]
        # a second copy on the same data directory does not start a second server
        second = subprocess.run([sys.executable, "-m", "piu_app", "serve", "--port", str(_free_port()),
                                 "--no-browser"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and f"127.0.0.1:{port}" in second.stdout
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in output
    for name in ("piu.sqlite3", "secret_key", "uploads", "backups", "logs/piu.log"):
        assert (home / name).exists(), name
    assert f"http://127.0.0.1:{port}" in (home / "logs" / "piu.log").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing written in the working directory
