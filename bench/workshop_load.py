#!/usr/bin/env python3
"""Simulate N phones in a workshop against the room listener on loopback, from a separate process.

The server is PIU itself (`--serve`, a subprocess): a throw-away data directory, a workshop with one open
board, the room opened through the real listener (`piu_app.room.listener`) bound to 127.0.0.1. The phones
are asyncio tasks speaking HTTP/1.1 over raw sockets (no dependency). Each phone:

  joins (door page, join form), loads its board page (gzip, CSS, JS: the first-load weight),
  polls the board state every 2 s (+ jitter) with If-None-Match,
  posts --notes notes, each with its own client key, retried until answered; some posts are cut
  mid-request (half the body sent, or the whole request sent and the answer never read) and some are
  resent after their answer (a duplicate), as a flaky Wi-Fi does,
  then votes (dots may be refused by the board's limits: 409 is an answer, not an error).

At the end it prints notes sent and stored (equal, none doubled), errors, p50/p95/p99 of poll and post,
requests per second, the server's CPU and memory, and the participant page's first-load weight.

    .venv/bin/python bench/workshop_load.py --phones 200
    .venv/bin/python bench/workshop_load.py --phones 500 --threads 2
    .venv/bin/python bench/workshop_load.py --phones 500 --windows   # select() and 500 sockets at most
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"  # never change: load stays on this machine
ROOT = Path(__file__).resolve().parents[1]


# --- server --------------------------------------------------------------------------------------------------

def serve(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    import logging

    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.models import Board, NoteCategory, Workshop
    from piu_app.room import listener as room_listener
    from piu_app.services import room as room_service

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" at every burst
    if args.windows:
        room_listener._windows = lambda: True  # select() loop and its 500-connection cap, as on Windows
    data = Path(args.data)
    app = create_app({"SECRET_KEY": "bench", "ROOM_ADDRESSES": HOST, "ROOM_PORT": 0, "ROOM_THREADS": args.threads,
                      "ROOM_CONNECTION_LIMIT": args.connection_limit}, instance_path=data)
    upgrade_database(app, backup=False)
    interval = float(app.config["SERVER_SWITCH_INTERVAL"])
    if interval > 0:
        sys.setswitchinterval(interval)
    with app.app_context(), writing():
        workshop = Workshop(title="Atelier de charge")
        db.session.add(workshop)
        db.session.flush()
        room_service.ensure_join_code(workshop)
        board = Board(workshop=workshop, title="Freins à l'innovation urbaine", state="open", voting_open=True,
                      votes_per_participant=3, votes_per_note=1, anonymous=True)
        db.session.add(board)
        for i, label in enumerate(("Acheteurs", "Innovateurs", "Facilitateurs", "Relation", "Territoire")):
            board.categories.append(NoteCategory(label=label, position=i))
        db.session.commit()
        info = {"code": workshop.join_code, "board": board.uid, "board_id": board.id,
                "categories": [c.uid for c in board.categories]}
        listener = room_listener.listener_for(app)
        listener.open(workshop.id)
        info.update(port=listener.port, pid=os.getpid())
    print(json.dumps(info), flush=True)
    if os.environ.get("PIU_BENCH_SAMPLE"):
        _sample_stacks()
    spent = _time_the_app()
    sys.stdin.read()  # until the load generator closes our stdin
    listener.close_all()
    print(json.dumps({kind: [_pct(v, 50), _pct(v, 95), _pct(v, 99), len(v)] for kind, v in spent.items()}),
          flush=True)


def _time_the_app() -> dict[str, list[float]]:
    """Time each request inside the server, by kind (what the server itself costs, whatever the network)."""
    from piu_app.room.app import RoomWSGI

    plain = RoomWSGI.__call__
    spent: dict[str, list[float]] = {"poll 304": [], "poll 200": [], "post": [], "page": []}

    def timed(self, environ, start_response):  # type: ignore[no-untyped-def]
        begin = time.perf_counter()
        status = []

        def catch(line, headers, *rest):  # type: ignore[no-untyped-def]
            status.append(line)
            return start_response(line, headers, *rest)

        try:
            return plain(self, environ, catch)
        finally:
            path = environ.get("PATH_INFO", "")
            kind = ("poll 304" if status and status[0].startswith("304") else "poll 200") if path.endswith(
                "/state") else "post" if environ.get("REQUEST_METHOD") == "POST" else "page"
            spent[kind].append(time.perf_counter() - begin)

    RoomWSGI.__call__ = timed  # type: ignore[method-assign]
    return spent


def _sample_stacks() -> None:
    """Where the server's threads spend their time (a poor man's sampling profiler, printed at exit)."""
    import atexit
    import collections
    import threading
    import traceback

    counts: collections.Counter = collections.Counter()
    me = threading.get_ident()

    def sample() -> None:
        while True:
            time.sleep(0.01)
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                stack = traceback.extract_stack(frame)[-6:]
                counts[" < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))] += 1

    threading.Thread(target=sample, daemon=True).start()
    atexit.register(lambda: sys.stderr.write("\n".join(f"{n:6d} {k}" for k, n in counts.most_common(25)) + "\n"))


# --- phones ----------------------------------------------------------------------------------------------------

class Stats:
    def __init__(self) -> None:
        self.poll: list[float] = []
        self.post: list[float] = []
        self.other: list[float] = []
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.cuts = 0
        self.resends = 0
        self.sent_keys: set[str] = set()
        self.first_load = 0
        self.statuses: dict[int, int] = {}
        self.steady_from = 0.0  # once every phone has joined: the room at work
        self.steady_poll: list[float] = []
        self.steady_post: list[float] = []
        self.poll_bytes = 0  # what the full polls (200) carried over the network
        self.delta_polls = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class Phone:
    def __init__(self, n: int, port: int, info: dict, stats: Stats, args: argparse.Namespace) -> None:
        self.n, self.port, self.info, self.stats, self.args = n, port, info, stats, args
        self.cookie = ""
        self.fk = ""
        self.etag = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.host = f"{HOST}:{port}"
        self.seen: list[str] = []
        self.since = ""

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    def _request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", "User-Agent: piu-bench-phone"]
        if self.cookie:
            lines.append(f"Cookie: piu_device={self.cookie}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if method == "POST":
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def http(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                   cut: str = "") -> tuple[int, dict, bytes]:
        """One request on the phone's keep-alive connection (reconnecting if needed)."""
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        raw = self._request(method, path, body, headers)
        self.stats.requests += 1
        if cut == "half":  # the Wi-Fi drops in the middle of the request
            self.writer.write(raw[: len(raw) - max(1, len(body) // 2)])
            await self.writer.drain()
            await self._close()
            raise ConnectionResetError("cut mid-request")
        self.writer.write(raw)
        await self.writer.drain()
        if cut == "answer":  # the request arrives, the answer is lost
            await asyncio.sleep(0.01)
            await self._close()
            raise ConnectionResetError("answer lost")
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.args.timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers_in: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers_in.setdefault(name.strip().lower(), value.strip())
                if name.strip().lower() == "set-cookie" and value.strip().startswith("piu_device="):
                    self.cookie = value.strip().split(";", 1)[0].split("=", 1)[1]
        length = int(headers_in.get("content-length", "0"))
        data = await asyncio.wait_for(self.reader.readexactly(length), self.args.timeout) if length else b""
        if headers_in.get("connection", "").lower() == "close":
            await self._close()
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        return status, headers_in, data

    async def timed(self, bucket: list[float], *args, **kw) -> tuple[int, dict, bytes]:
        start = time.perf_counter()
        answer = await self.http(*args, **kw)
        bucket.append(time.perf_counter() - start)
        if self.stats.steady_from and time.monotonic() >= self.stats.steady_from and bucket is not self.stats.other:
            (self.stats.steady_poll if bucket is self.stats.poll else self.stats.steady_post).append(bucket[-1])
        return answer

    async def join(self) -> None:
        code = self.info["code"]
        await self.timed(self.stats.other, "GET", "/")
        board = f"/r/{code}/b/{self.info['board']}"
        status, _h, page = await self.timed(self.stats.other, "GET", f"/r/{code}")
        if status == 302:  # joined already: our first join arrived, its answer did not
            status, _h, page = await self.timed(self.stats.other, "GET", board)
        else:
            self.fk = re.search(rb'name="fk" value="([^"]+)"', page).group(1).decode()
            status, _h, _b = await self.timed(self.stats.other, "POST", f"/r/{code}/join",
                                              f"fk={self.fk}&name=Phone+{self.n}".encode())
            if status != 302:
                raise RuntimeError(f"join answered {status}")
        gz = {"Accept-Encoding": "gzip"}
        status, headers, page = await self.timed(self.stats.other, "GET", board, headers=gz)
        weight = len(page)
        html = gzip.decompress(page) if headers.get("content-encoding") == "gzip" else page
        self.fk = re.search(rb'name="fk" value="([^"]+)"', html).group(1).decode()
        for asset in re.findall(rb'(?:href|src)="(/s/[^"]+)"', html):
            _s, _h, data = await self.timed(self.stats.other, "GET", asset.decode(), headers=gz)
            weight += len(data)
        if self.n == 0:
            self.stats.first_load = weight

    async def poll(self) -> None:
        path = f"/r/{self.info['code']}/b/{self.info['board']}/state"
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
        if self.etag:  # as room.js does: the version held, and the chain it belongs to (an answer of changes)
            headers["If-None-Match"] = self.etag
            path += f"?since={self.since}"
        status, answer_headers, data = await self.timed(self.stats.poll, "GET", path, headers=headers)
        if status == 200:
            self.etag = answer_headers.get("etag", "")
            body = gzip.decompress(data) if answer_headers.get("content-encoding") == "gzip" else data
            self.stats.poll_bytes += len(data)
            state = json.loads(body)
            self.since = f"{state['chain']}.{state['v']}"
            fresh = [n["id"] for n in state["notes"]]
            if state["delta"]:
                self.stats.delta_polls += 1
                gone = set(state["gone"]) | set(fresh)
                fresh = [uid for uid in self.seen if uid not in gone] + fresh
            self.seen = fresh[-50:]
        elif status != 304:
            self.stats.error(f"poll {status}")

    async def post_note(self, i: int) -> None:
        key = f"bench{self.n:04d}n{i:02d}{random.getrandbits(32):08x}"
        category = random.choice(self.info["categories"])
        body = f"fk={self.fk}&client_key={key}&category={category}&text=Frein+{i}+du+t%C3%A9l%C3%A9phone+{self.n}"
        path = f"/r/{self.info['code']}/b/{self.info['board']}/notes"
        headers = {"Accept": "application/json"}
        for attempt in range(8):
            cut = ""
            roll = random.random()
            if attempt == 0 and roll < self.args.cut_rate:
                cut = "half" if roll < self.args.cut_rate / 2 else "answer"
                self.stats.cuts += 1
            try:
                status, _h, _d = await self.timed(self.stats.post, "POST", path, body.encode(), headers, cut=cut)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
                await self._close()
                await asyncio.sleep(0.2 + random.random() * (2 ** attempt) * 0.2)
                continue
            if status in (200, 201):
                self.stats.sent_keys.add(key)
                if random.random() < self.args.resend_rate:  # the phone resends a note it already had answered
                    self.stats.resends += 1
                    status, _h, _d = await self.timed(self.stats.post, "POST", path, body.encode(), headers)
                    if status != 200:
                        self.stats.error(f"resend {status}")
                return
            self.stats.error(f"post {status}")
            return
        self.stats.error("post gave up")

    async def vote(self) -> None:
        if not self.seen:
            return
        path = f"/r/{self.info['code']}/b/{self.info['board']}/votes"
        body = f"fk={self.fk}&note={random.choice(self.seen)}&delta=1".encode()
        status, _h, _d = await self.timed(self.stats.post, "POST", path, body, {"Accept": "application/json"})
        if status not in (200, 409):
            self.stats.error(f"vote {status}")

    async def run(self, start_at: float, end_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        try:
            for attempt in range(5):
                try:
                    await self.join()
                    break
                except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
                    await self._close()
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                self.stats.error("join failed")
                return
            span = max(1.0, end_at - time.monotonic())
            actions = sorted([(random.uniform(0, span * 0.6), "note", i) for i in range(self.args.notes)]
                             + [(random.uniform(span * 0.5, span * 0.95), "vote", i) for i in range(self.args.votes)])
            begin = time.monotonic()
            next_poll = begin + random.uniform(0, 2)
            while time.monotonic() < end_at:
                now = time.monotonic()
                if actions and begin + actions[0][0] <= now:
                    _at, kind, i = actions.pop(0)
                    if kind == "note":
                        await self.post_note(i)
                    else:
                        await self.vote()
                    continue
                if now >= next_poll:
                    try:
                        await self.poll()
                    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                        self.stats.error(f"poll {type(exc).__name__}")
                        await self._close()
                    next_poll = time.monotonic() + 2 + random.random()
                    continue
                wake = min(next_poll, begin + actions[0][0] if actions else next_poll, end_at)
                await asyncio.sleep(max(0.0, wake - time.monotonic()))
            for _at, kind, i in actions:  # anything left is sent before leaving, as the phone's outbox does
                if kind == "note":
                    await self.post_note(i)
        except Exception as exc:  # noqa: BLE001 - count it, keep the other phones going
            self.stats.error(f"{type(exc).__name__}: {exc}"[:80])
        finally:
            await self._close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu_seconds() -> float:
    """CPU time used by every process of the machine so far (from /proc/stat), in seconds."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return rss, peak


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


async def drive(args: argparse.Namespace, info: dict) -> Stats:
    stats = Stats()
    start = time.monotonic() + 0.5
    end = start + args.ramp + args.duration
    stats.steady_from = start + args.ramp + 5
    phones = [Phone(n, info["port"], info, stats, args) for n in range(args.phones)]
    await asyncio.gather(*(p.run(start + args.ramp * n / max(1, args.phones), end) for n, p in enumerate(phones)))
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load after the last phone joined")
    parser.add_argument("--ramp", type=float, default=None,
                        help="seconds over which phones join (default: 10 phones a second, 15 s at least)")
    parser.add_argument("--notes", type=int, default=3, help="notes per phone")
    parser.add_argument("--votes", type=int, default=3, help="votes per phone")
    parser.add_argument("--cut-rate", type=float, default=0.1, help="share of posts cut on their first try")
    parser.add_argument("--resend-rate", type=float, default=0.1, help="share of answered posts sent again")
    parser.add_argument("--threads", type=int, default=1, help="room listener threads (ROOM_THREADS)")
    parser.add_argument("--connection-limit", type=int, default=1000)
    parser.add_argument("--windows", action="store_true", help="model Windows: select(), 500 sockets at most")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ramp is None:
        args.ramp = max(15.0, args.phones / 10)
    if args.serve:
        serve(args)
        return 0

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    with tempfile.TemporaryDirectory(prefix="piu-room-bench-") as tmp:
        command = [sys.executable, __file__, "--serve", "--data", tmp, "--threads", str(args.threads),
                   "--connection-limit", str(args.connection_limit)] + (["--windows"] if args.windows else [])
        server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            info = json.loads(server.stdout.readline())
            cpu_before, wall_before = _cpu_seconds(info["pid"]), time.monotonic()
            own_before = os.times()
            machine_before = _machine_cpu_seconds()
            stats = asyncio.run(drive(args, info))
            wall = time.monotonic() - wall_before
            cpu = _cpu_seconds(info["pid"]) - cpu_before
            rss, peak = _memory_mb(info["pid"])
            machine = _machine_cpu_seconds() - machine_before
            own = os.times()
            client_cpu = own.user + own.system - own_before.user - own_before.system
        finally:
            server.stdin.close()
            inside = {}
            with contextlib.suppress(Exception):
                inside = json.loads(server.stdout.readline())
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        with sqlite3.connect(Path(tmp) / "piu.sqlite3") as conn:
            keys = [k for (k,) in conn.execute("SELECT client_key FROM sticky_notes WHERE board_id = ?",
                                               (info["board_id"],))]
            stored_votes = conn.execute("SELECT COALESCE(SUM(vote_count), 0) FROM sticky_notes").fetchone()[0]
            vote_rows = conn.execute("SELECT COALESCE(SUM(weight), 0) FROM note_votes").fetchone()[0]
    lost = len(stats.sent_keys - set(keys))
    doubled = len(keys) - len(set(keys))
    print(f"phones {args.phones}, room threads {args.threads}, "
          f"{'Windows model (select, ≤500 sockets)' if args.windows else 'poll()'}; "
          f"{args.ramp:.0f} s ramp + {args.duration:.0f} s load")
    print(f"notes sent {len(stats.sent_keys)}, stored {len(keys)}, lost {lost}, doubled {doubled}; "
          f"cut posts {stats.cuts}, resent {stats.resends}; votes stored {stored_votes} (= rows {vote_rows})")
    print(f"errors {sum(stats.errors.values())} {stats.errors or ''}")
    print(f"poll  n={len(stats.poll):6d}  p50 {_pct(stats.poll, 50):6.1f} ms  p95 {_pct(stats.poll, 95):6.1f} ms"
          f"  p99 {_pct(stats.poll, 99):6.1f} ms")
    print(f"post  n={len(stats.post):6d}  p50 {_pct(stats.post, 50):6.1f} ms  p95 {_pct(stats.post, 95):6.1f} ms"
          f"  p99 {_pct(stats.post, 99):6.1f} ms")
    print(f"steady (all phones in): poll n={len(stats.steady_poll)} p50 {_pct(stats.steady_poll, 50):.1f} "
          f"p95 {_pct(stats.steady_poll, 95):.1f} p99 {_pct(stats.steady_poll, 99):.1f} ms; "
          f"post n={len(stats.steady_post)} p50 {_pct(stats.steady_post, 50):.1f} "
          f"p95 {_pct(stats.steady_post, 95):.1f} p99 {_pct(stats.steady_post, 99):.1f} ms")
    print(f"polls answered with changes only {stats.delta_polls}; poll answers (200) carried "
          f"{stats.poll_bytes / 1e6:.1f} MB on the wire")
    print(f"pages n={len(stats.other):6d}  p50 {_pct(stats.other, 50):6.1f} ms  p95 {_pct(stats.other, 95):6.1f} ms")
    for kind, (p50, p95, p99, n) in inside.items():
        print(f"  in the server, {kind:8s} n={n:6d}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms")
    print(f"requests {stats.requests} in {wall:.0f} s = {stats.requests / wall:.0f}/s; statuses "
          f"{dict(sorted(stats.statuses.items()))}")
    print(f"server CPU {cpu:.1f} s = {100 * cpu / wall:.0f}% of one core; memory RSS {rss:.0f} MB (peak {peak:.0f} MB)")
    other = max(0.0, machine - cpu - client_cpu)
    print(f"load generator CPU {client_cpu:.1f} s = {100 * client_cpu / wall:.0f}% of one core; other processes "
          f"{100 * other / wall:.0f}% of one core (of {os.cpu_count()}: a busy machine makes every figure worse)")
    print(f"first load (HTML + CSS + JS, gzip) {stats.first_load} bytes = {stats.first_load / 1024:.1f} KB")
    ok = not lost and not doubled and not stats.errors and len(keys) == len(stats.sent_keys)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
