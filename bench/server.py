#!/usr/bin/env python3
"""Benchmark waitress configurations for a Flask + SQLite app under many clients.

Self-contained: creates a throw-away SQLite database (WAL mode, ~2000 rows of
text) in a temporary directory, starts one waitress server per configuration
in a subprocess bound to 127.0.0.1 on an OS-chosen port, drives it with
``wrk`` (Debian package ``wrk``) at several concurrency levels, and prints one
side-by-side table.  All traffic goes to 127.0.0.1 only; every wait and every
load run is bounded in time.

Usage (from the repository root):

    .venv/bin/python bench/server.py                  # full run, ~5 minutes
    .venv/bin/python bench/server.py --duration 3 --configs A,C --clients 1,50
    .venv/bin/python bench/server.py --list           # show the configurations
    # on a machine shared with other work (see the otherCPU column):
    .venv/bin/python bench/server.py --rounds 3 --wait-idle 60

Columns:
  req/s     completed requests per second as reported by wrk
  p50, p99  wrk latency percentiles (ms); requests slower than --timeout are
            not in wrk's histogram, they are counted under ``timeouts``
  errors    wrk socket errors (connect/read/write) + non-2xx/3xx responses
  timeouts  wrk's timeout counter (responses slower than --timeout)
  unserved  client connections that got no response at all during the run
            (counted in the app by client port).  wrk does NOT report these:
            a request that never completes is neither an error nor, in
            wrk 4.1, a timeout, and it is missing from the percentiles
  srvCPU    CPU used by the server process during the run (100% = one core)
  wrkCPU    CPU used by wrk; otherCPU: by every other process on the machine
            (if this is large, the machine is shared and numbers are noisy)
  loops/req waitress main-loop (select/poll) iterations per completed request;
            large values mean the main loop spins instead of sleeping

The server subprocess is this same file run with ``--serve``.
"""

import argparse
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"  # never change: load must stay on this machine

# name -> (description, waitress.serve kwargs, sys.setswitchinterval value or None)
CONFIGS = {
    "A": ("waitress defaults (threads=4, connection_limit=100)", {}, None),
    "B": ("threads=8, connection_limit=1000", {"threads": 8, "connection_limit": 1000}, None),
    "C": ("B + switchinterval 5e-5", {"threads": 8, "connection_limit": 1000}, 5e-5),
    "D1": ("B + switchinterval 1e-4", {"threads": 8, "connection_limit": 1000}, 1e-4),
    "D2": ("threads=4, connection_limit=1000", {"threads": 4, "connection_limit": 1000}, None),
    "D3": ("threads=4, connection_limit=1000, switchinterval 5e-5",
           {"threads": 4, "connection_limit": 1000}, 5e-5),
    "D4": ("threads=16, connection_limit=1000, switchinterval 5e-5",
           {"threads": 16, "connection_limit": 1000}, 5e-5),
    "D5": ("threads=2, connection_limit=1000, switchinterval 5e-5",
           {"threads": 2, "connection_limit": 1000}, 5e-5),
    # recommended: D3 + poll() instead of select().  select() cannot handle file
    # descriptors >= 1024, so with connection_limit near 1000 waitress' main
    # loop would die with "ValueError: filedescriptor out of range in select()"
    "R": ("D3 + asyncore_use_poll=True (recommended, unpinned)",
          {"threads": 4, "connection_limit": 1000, "asyncore_use_poll": True}, 5e-5),
    # "_cpus" is not a waitress option: the server process pins itself to these
    # CPUs (os.sched_setaffinity), so the GIL is never handed between cores
    "P1": ("R pinned to one CPU (best on a dedicated 2-core box)", {"threads": 4, "connection_limit": 1000,
                                   "asyncore_use_poll": True, "_cpus": [0]}, 5e-5),
    "P2": ("threads=4, connection_limit=1000, poll, pinned to one CPU",
           {"threads": 4, "connection_limit": 1000, "asyncore_use_poll": True,
            "_cpus": [0]}, None),
}
DEFAULT_CONFIGS = "A,B,C,D1,D2,D3,D4,R,P1"  # D5, P2: via --configs

N_ROWS = 2000
ROWS_PER_PAGE = 50

# ---------------------------------------------------------------------------
# database + app (used by the server subprocess)
# ---------------------------------------------------------------------------

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform "
         "victor whiskey xray yankee zulu").split()


def create_db(path, n_rows=N_ROWS):
    rnd = random.Random(1234)
    con = sqlite3.connect(path)
    mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    assert mode.lower() == "wal", mode
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL,"
                " body TEXT NOT NULL)")
    con.executemany(
        "INSERT INTO items (id, title, body) VALUES (?, ?, ?)",
        ((i, " ".join(rnd.choices(WORDS, k=3)).title(),
          " ".join(rnd.choices(WORDS, k=rnd.randint(12, 30))))
         for i in range(1, n_rows + 1)))
    con.commit()
    con.close()


PAGE = """<!doctype html>
<html><head><title>Items {{ first }}-{{ last }}</title></head>
<body><h1>Items {{ first }} to {{ last }}</h1>
<table>
{% for row in rows %}<tr><td>{{ row[0] }}</td><td>{{ row[1] }}</td><td>{{ row[2] | truncate(60) }}</td></tr>
{% endfor %}</table></body></html>
"""


def make_app(db_path):
    import itertools

    from flask import Flask, jsonify, request

    app = Flask(__name__)
    # Compile once, like render_template() does with its template cache
    # (render_template_string would recompile the template on every request).
    page = app.jinja_env.from_string(PAGE)
    local = threading.local()
    served = itertools.count()
    first_served = {}

    def db():
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = sqlite3.connect(db_path)
        return con

    @app.route("/")
    def index():
        next(served)
        # remember when each client connection (keyed by its port) got its first
        # response, to find connections that were never served during a run
        first_served.setdefault(request.environ.get("REMOTE_PORT"), time.monotonic())
        start = random.randint(1, N_ROWS - ROWS_PER_PAGE + 1)
        # fetchall() steps the statement once per row; the sqlite3 module
        # releases the GIL around every step.
        rows = db().execute(
            "SELECT id, title, body FROM items WHERE id >= ? ORDER BY id LIMIT ?",
            (start, ROWS_PER_PAGE)).fetchall()
        return page.render(rows=rows, first=rows[0][0], last=rows[-1][0])

    @app.route("/_stats")
    def stats():
        # ?reset=1 forgets the connections seen so far; ?until=T (time.monotonic(),
        # which is system-wide on Linux) counts connections first served by T
        if request.args.get("reset"):
            first_served.clear()
        until = float(request.args.get("until", "inf"))
        conns = sum(1 for t in list(first_served.values()) if t <= until)
        n = int(repr(served)[6:-1])  # itertools.count has no read method
        return jsonify(loops=LOOP_COUNT[0], served=n, conns_served=conns)

    return app


LOOP_COUNT = [0]


def count_main_loop_iterations():
    """Wrap waitress' select/poll step so /_stats can report loop iterations."""
    from waitress import wasyncore

    for name in ("poll", "poll2"):
        orig = getattr(wasyncore, name)

        def wrapped(*a, _orig=orig, **kw):
            LOOP_COUNT[0] += 1
            return _orig(*a, **kw)

        setattr(wasyncore, name, wrapped)


def serve_main(spec):
    """Subprocess entry: spec = JSON {db, kwargs, switchinterval}."""
    spec = json.loads(spec)
    if spec["switchinterval"] is not None:
        sys.setswitchinterval(spec["switchinterval"])
    import logging

    import waitress

    logging.basicConfig(level=logging.WARNING)
    kwargs = dict(spec["kwargs"])
    cpus = kwargs.pop("_cpus", None)
    if cpus:
        os.sched_setaffinity(0, cpus)
    count_main_loop_iterations()
    app = make_app(spec["db"])
    # create_server + run is exactly what waitress.serve() does, but lets us
    # report the OS-chosen port.
    server = waitress.create_server(app, host=HOST, port=0, **kwargs)
    print("PORT %d" % int(server.effective_port), flush=True)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    server.run()


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %.0f, "duration_us": %.0f, "p50_us": %.0f, "p90_us": %.0f, ' ..
    '"p99_us": %.0f, "max_us": %.0f, "connect": %.0f, "read": %.0f, "write": %.0f, ' ..
    '"status": %.0f, "timeout": %.0f}\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def http_get(port, path, timeout=2.0):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, HOST)).encode())
        chunks, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(db, kwargs, switchinterval, logf, startup_timeout=20.0):
    spec = json.dumps({"db": db, "kwargs": kwargs, "switchinterval": switchinterval})
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", spec],
                            stdout=subprocess.PIPE, stderr=logf, text=True)
    deadline = time.monotonic() + startup_timeout
    port = None
    while port is None and time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.5)
        if r:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("PORT "):
                port = int(line.split()[1])
        if proc.poll() is not None:
            break
    if port is None:
        stop_server(proc)
        raise RuntimeError("server did not report its port (see log)")
    while time.monotonic() < deadline:
        try:
            status, body = http_get(port, "/")
            if status == 200 and b"<table>" in body:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError("server on port %d did not answer in time" % port)


def stop_server(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_wrk(wrk, lua, port, clients, duration, timeout_s):
    threads = min(2, clients)  # wrk needs connections >= threads
    cmd = [wrk, "-t%d" % threads, "-c%d" % clients, "-d%ds" % duration,
           "--timeout", "%ds" % timeout_s, "--latency", "-s", lua,
           "http://%s:%d/" % (HOST, port)]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration + timeout_s + 30).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError("could not parse wrk output:\n" + out)


def server_stats(port, query=""):
    try:
        status, body = http_get(port, "/_stats" + query, timeout=5.0)
        return json.loads(body) if status == 200 else None
    except (OSError, ValueError):
        return None


def fmt_ms(us):
    return "%.1f" % (us / 1000.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="comma list of config names (default %(default)s)")
    ap.add_argument("--clients", default="1,50,200", help="comma list of connection counts")
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per config")
    ap.add_argument("--timeout", type=int, default=5, help="wrk per-request timeout (s)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every config this many times, interleaved, and also print"
                         " medians (use on a busy/shared machine)")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before each load run wait up to SECONDS for the rest of the"
                         " machine to be idle (<25%% of one core); for shared machines")
    ap.add_argument("--json", help="also write raw results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    ap.add_argument("--list", action="store_true", help="list configurations and exit")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        serve_main(args.serve)
        return
    if args.list:
        for name, (desc, kw, si) in CONFIGS.items():
            print("%-3s %-55s serve(**%r) switchinterval=%s" % (name, desc, kw, si))
        return

    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk not found: apt-get install -y wrk")
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    for n in names:
        if n not in CONFIGS:
            sys.exit("unknown config %r (have %s)" % (n, ", ".join(CONFIGS)))
    levels = [int(c) for c in args.clients.split(",")]

    from importlib.metadata import version

    import waitress  # noqa: F401  (fail early if the venv is wrong)

    tmp = tempfile.mkdtemp(prefix="waitress-bench-")
    db = os.path.join(tmp, "bench.sqlite3")
    create_db(db)
    print("python %s, waitress %s, sqlite %s, nproc %d, db %s"
          % (sys.version.split()[0], version("waitress"), sqlite3.sqlite_version,
             os.cpu_count(), db), flush=True)
    lua = os.path.join(tmp, "report.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)

    results = []
    t_start = time.monotonic()
    try:
        for rnd in range(1, args.rounds + 1):
            if args.rounds > 1:
                print("round %d/%d" % (rnd, args.rounds), flush=True)
            for name in names:
                results.extend(bench_config(name, args, wrk, lua, db, tmp, levels, rnd))
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    for name in names:
        desc, kw, si = CONFIGS[name]
        print("%-3s %s: serve(**%r), switchinterval=%s" % (name, desc, kw, si or "default"))
    print()
    print_table(results)
    if args.rounds > 1:
        print("\nmedian over %d rounds (each value its own median)" % args.rounds)
        print_table(medians(results, names, levels))
    busy = [r for r in results if r["other_cpu_pct"] > 20]
    print("\ntotal %.0f s; wrk -t2 (-t1 at 1 client) --timeout %ds -d%ds, loopback only"
          % (time.monotonic() - t_start, args.timeout, args.duration))
    print("srvCPU/wrkCPU/otherCPU: %% of one core used by the server, by wrk and by every"
          " other process during the run (machine total %d%%)" % (100 * (os.cpu_count() or 1)))
    if busy:
        print("WARNING: other processes used >20%% of a core in %d of %d runs: numbers are"
              " disturbed; use --rounds N and read the medians" % (len(busy), len(results)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def machine_busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def wait_idle(limit, threshold=0.25, window=2.0):
    """Wait (at most `limit` s) until the machine is near idle over `window` s."""
    deadline = time.monotonic() + limit
    while True:
        m0 = machine_busy_seconds()
        time.sleep(window)
        busy = (machine_busy_seconds() - m0) / window
        if busy < threshold:
            return True
        if time.monotonic() >= deadline:
            print("  (machine still busy: %.0f%% of a core; running anyway)" % (100 * busy),
                  flush=True)
            return False


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_config(name, args, wrk, lua, db, tmp, levels, rnd):
    desc, kwargs, si = CONFIGS[name]
    out = []
    with open(os.path.join(tmp, "server-%s-%d.log" % (name, rnd)), "w") as logf:
        proc, port = start_server(db, kwargs, si, logf)
        try:
            if args.warmup > 0:
                run_wrk(wrk, lua, port, 8, args.warmup, args.timeout)
            for clients in levels:
                time.sleep(args.pause)
                if args.wait_idle > 0:
                    wait_idle(args.wait_idle)
                s0 = server_stats(port, "?reset=1")
                c0, w0, m0 = cpu_seconds(proc.pid), children_cpu_seconds(), machine_busy_seconds()
                t0 = time.monotonic()
                r = run_wrk(wrk, lua, port, clients, args.duration, args.timeout)
                wall = time.monotonic() - t0
                c1, w1, m1 = cpu_seconds(proc.pid), children_cpu_seconds(), machine_busy_seconds()
                s1 = server_stats(port, "?until=%f" % (t0 + args.duration))
                r.update(config=name, desc=desc, kwargs=kwargs, switchinterval=si,
                         clients=clients, round=rnd,
                         rps=r["requests"] / (r["duration_us"] / 1e6),
                         errors=r["connect"] + r["read"] + r["write"] + r["status"],
                         cpu_pct=100.0 * (c1 - c0) / wall,
                         wrk_cpu_pct=100.0 * (w1 - w0) / wall,
                         other_cpu_pct=max(0.0, 100.0 * ((m1 - m0) - (c1 - c0) - (w1 - w0))
                                           / wall))
                if s0 and s1 and s1["served"] > s0["served"]:
                    r["loops_per_req"] = ((s1["loops"] - s0["loops"])
                                          / (s1["served"] - s0["served"]))
                if s1:
                    r["unserved"] = max(0, clients - s1["conns_served"])
                out.append(r)
                print("  %-3s c=%-4d %8.1f req/s  p50 %s ms  p99 %s ms  err %d  timeouts %d"
                      "  unserved %s  srv %.0f%%  wrk %.0f%%  other %.0f%%  loops/req %s"
                      % (name, clients, r["rps"], fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]),
                         r["errors"], r["timeout"], r.get("unserved", "?"), r["cpu_pct"],
                         r["wrk_cpu_pct"],
                         r["other_cpu_pct"],
                         "%.1f" % r["loops_per_req"] if "loops_per_req" in r else "-"),
                      flush=True)
        finally:
            stop_server(proc)
    return out


def medians(results, names, levels):
    import statistics

    out = []
    for name in names:
        for clients in levels:
            rs = [r for r in results if r["config"] == name and r["clients"] == clients]
            if not rs:
                continue
            m = dict(rs[0])
            for k in ("rps", "p50_us", "p99_us", "errors", "timeout", "unserved", "cpu_pct",
                      "wrk_cpu_pct", "other_cpu_pct", "loops_per_req"):
                vals = [r[k] for r in rs if k in r]
                if vals:
                    m[k] = statistics.median(vals)
            out.append(m)
    return out


def print_table(results):
    print("config  threads conn_limit switchint clients    req/s   p50 ms   p99 ms"
          "  errors timeouts unserved srvCPU wrkCPU otherCPU loops/req")
    for r in results:
        kw = r["kwargs"]
        print("%-7s %7d %10d %9s %7d %8.1f %8s %8s %7d %8d %8s %5.0f%% %5.0f%% %7.0f%% %9s" % (
            r["config"], kw.get("threads", 4), kw.get("connection_limit", 100),
            "%g" % r["switchinterval"] if r["switchinterval"] else "5e-3(def)",
            r["clients"], r["rps"], fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]),
            r["errors"], r["timeout"], "%g" % r["unserved"] if "unserved" in r else "?",
            r["cpu_pct"], r["wrk_cpu_pct"], r["other_cpu_pct"],
            "%.1f" % r["loops_per_req"] if "loops_per_req" in r else "-"))

if __name__ == "__main__":
    main()
