"""Build the one-folder PIU executable with PyInstaller, then smoke-test it.

    python packaging/build.py               # build (packaging/build, packaging/dist) + smoke test
    python packaging/build.py --skip-build  # only smoke-test an existing packaging/dist/piu

The smoke test starts `dist/piu/piu serve --port <free port> --no-browser` on a fresh, temporary
PIU_HOME, waits for /healthz, checks that / redirects to /setup, stops the server, and checks that
the data landed in PIU_HOME (database, logs, secret key) and that nothing was written inside the
bundle. Exit code 0 only if everything passed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
ROOT = PACKAGING.parent
SPEC = PACKAGING / "piu.spec"
WORK = PACKAGING / "build"
DIST = PACKAGING / "dist"
APP_NAME = "piu"


class SmokeFailure(Exception):
    pass


def bundle_dir() -> Path:
    return DIST / APP_NAME


def executable() -> Path:
    return bundle_dir() / (f"{APP_NAME}.exe" if os.name == "nt" else APP_NAME)


def build() -> float:
    """Run PyInstaller on the spec; return the build time in seconds."""
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--workpath", str(WORK), "--distpath", str(DIST),
           "--noconfirm", "--clean"]
    print("$ " + " ".join(cmd), flush=True)
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SmokeFailure(f"PyInstaller failed (exit code {result.returncode})")
    return elapsed


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` with its size and modification time (directories get size -1)."""
    listing: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            st = path.lstat()
            if name in dirnames:
                listing[rel + "/"] = (-1, 0)  # a directory's mtime changes with any listing; track existence
            else:
                listing[rel] = (st.st_size, st.st_mtime_ns)
    return listing


def folder_size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_request(port: int, path: str, *, method: str = "GET", data: dict[str, str] | None = None,
                 cookie: str = "", timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request that does not follow redirects; Set-Cookie values come back joined as a Cookie header."""
    headers = {"Cookie": cookie} if cookie else {}
    body = None
    if data is not None:
        body = urllib.parse.urlencode(data).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        result = {k.lower(): v for k, v in response.getheaders()}
        cookies = [c.split(";", 1)[0] for c in response.msg.get_all("Set-Cookie") or []]
        result["set-cookie"] = "; ".join(cookies)
        return response.status, result, response.read()
    finally:
        conn.close()


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    return http_request(port, path, timeout=timeout)


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float) -> float:
    """Poll /healthz until it answers {"status": "ok"}; return the seconds it took."""
    started = time.monotonic()
    last_error = "no answer yet"
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise SmokeFailure(f"the app exited with code {proc.returncode} before /healthz answered")
        try:
            status, _, body = http_get(port, "/healthz", timeout=2)
            if status == 200 and json.loads(body).get("status") == "ok":
                return time.monotonic() - started
            last_error = f"HTTP {status}: {body[:200]!r}"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    raise SmokeFailure(f"/healthz did not answer within {timeout:.0f} s ({last_error})")


def check_pages(port: int) -> None:
    """The set-up page in French, then in English (bundled templates, static files, .po catalogue, CLDR data)."""
    status, headers, body = http_get(port, "/setup")
    page = body.decode("utf-8", errors="replace")
    if status != 200 or '<html lang="fr"' not in page or "Mise en route de PIU" not in page:
        raise SmokeFailure(f"GET /setup should answer the French set-up page, got HTTP {status}: {page[:300]!r}")
    print("ok  GET /setup -> 200 in French (templates)", flush=True)

    status, _, body = http_get(port, "/static/css/piu.css")
    if status != 200 or not body:
        raise SmokeFailure(f"GET /static/css/piu.css should answer 200, got HTTP {status}")
    print("ok  GET /static/css/piu.css -> 200 (static files)", flush=True)

    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if token is None:
        raise SmokeFailure("no csrf_token in the set-up page")
    cookie = headers.get("set-cookie", "")
    status, headers, _ = http_request(port, "/lang/en", method="POST", cookie=cookie,
                                      data={"csrf_token": token.group(1), "next": "/setup"})
    if status not in (301, 302, 303):
        raise SmokeFailure(f"POST /lang/en should redirect, got HTTP {status}")
    cookie = headers.get("set-cookie") or cookie
    status, _, body = http_request(port, "/setup", cookie=cookie)
    page = body.decode("utf-8", errors="replace")
    if status != 200 or '<html lang="en"' not in page or "Setting up PIU" not in page:
        raise SmokeFailure(f"GET /setup after choosing English should be in English, got HTTP {status}: {page[:300]!r}")
    print("ok  GET /setup -> 200 in English (translations/*.po, babel locale data)", flush=True)


def stop(proc: subprocess.Popen) -> None:
    """Stop the server: Ctrl+C-like interrupt first (POSIX), then terminate, then kill."""
    if proc.poll() is not None:
        return
    if os.name != "nt":
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def smoke_test(timeout: float, keep_home: bool) -> float:
    """Run the frozen app on a fresh data directory; return the start-up time until /healthz answered."""
    exe = executable()
    if not exe.is_file():
        raise SmokeFailure(f"no executable at {exe} (build first, or drop --skip-build)")
    before = snapshot(bundle_dir())
    home = Path(tempfile.mkdtemp(prefix="piu-smoke-home-"))
    scratch = Path(tempfile.mkdtemp(prefix="piu-smoke-out-"))  # the process output, kept out of PIU_HOME
    output = scratch / "output.log"
    # Only PIU_HOME from the PIU_* settings: a developer's PIU_DATABASE_URL etc. must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")}
    env.update(PIU_HOME=str(home), PYTHONUNBUFFERED="1")
    port = free_port()
    cmd = [str(exe), "serve", "--port", str(port), "--no-browser"]
    print(f"$ PIU_HOME={home} {' '.join(cmd)}", flush=True)
    ok = False
    try:
        with output.open("wb") as out:
            # cwd outside the repository and the bundle: the app must not depend on (or write to) its cwd.
            proc = subprocess.Popen(cmd, env=env, cwd=scratch, stdout=out, stderr=subprocess.STDOUT)
            try:
                startup = wait_healthy(proc, port, timeout)
                print(f"ok  /healthz answered after {startup:.2f} s", flush=True)
                status, headers, _ = http_get(port, "/")
                location = headers.get("location", "")
                if status not in (301, 302, 303, 307, 308) or not location.rstrip("/").endswith("/setup"):
                    raise SmokeFailure(f"GET / should redirect to /setup, got HTTP {status} Location={location!r}")
                print(f"ok  GET / -> {status} {location}", flush=True)
                check_pages(port)
            finally:
                stop(proc)
        print(f"ok  stopped (exit code {proc.returncode})", flush=True)

        missing = [name for name, is_dir in (("piu.sqlite3", False), ("logs", True), ("secret_key", False))
                   if not ((home / name).is_dir() if is_dir else (home / name).is_file())]
        if missing:
            raise SmokeFailure(f"missing in PIU_HOME {home}: {', '.join(missing)}")
        print(f"ok  PIU_HOME holds {', '.join(sorted(p.name for p in home.iterdir()))}", flush=True)

        after = snapshot(bundle_dir())
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        if added or removed or changed:
            lines = [f"  + {p}" for p in added] + [f"  - {p}" for p in removed] + [f"  ~ {p}" for p in changed]
            raise SmokeFailure("the app wrote inside its bundle:\n" + "\n".join(lines[:50]))
        print(f"ok  nothing written inside {bundle_dir()}", flush=True)
        ok = True
        return startup
    finally:
        if not ok and output.is_file():
            print("----- app output -----", file=sys.stderr)
            print(output.read_text(encoding="utf-8", errors="replace")[-20000:], file=sys.stderr)
            print("----------------------", file=sys.stderr)
        shutil.rmtree(scratch, ignore_errors=True)
        if keep_home or not ok:
            print(f"PIU_HOME kept at {home}", flush=True)
        else:
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build PIU with PyInstaller (one-folder) and smoke-test it.")
    parser.add_argument("--skip-build", action="store_true", help="only smoke-test the existing packaging/dist/piu")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for /healthz (default 60)")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary PIU_HOME after the test")
    args = parser.parse_args(argv)
    try:
        build_time = None if args.skip_build else build()
        startup = smoke_test(args.timeout, args.keep_home)
    except SmokeFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print()
    if build_time is not None:
        print(f"build time:   {build_time:.1f} s")
    print(f"dist size:    {folder_size(bundle_dir()) / 1e6:.1f} MB  ({bundle_dir()})")
    print(f"startup time: {startup:.2f} s until /healthz answered")
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
