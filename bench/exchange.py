#!/usr/bin/env python3
"""Benchmark the exchange bundle at scale: export, import and re-import with 1k, 10k, 100k innovations.

For each size, in a throw-away directory:

  fill      city A ("bench", Ville-Banc) gets a fresh database (the real migrations) and is filled
            with bench/register.py's bulk fill: N innovations (1 to 3 themes, one carrier), N/5
            organisations, N/2 experiments, N/4 lessons, N/4 reviews. Every record is then made
            shareable (private → network: about 2/3 network, 1/3 public), origin_instance "bench".
            A's full-text index is not built (the export does not read it).
  setup-b   city B ("ville-b", Ville-B) gets a fresh database and its instance set-up.
  export    A: services.exchange.export("network", …) → the bundle (time, size, rows).
  import    B: services.exchange.import_bundle(…) + commit (every record is new to B).
  re-import B: the same bundle again + commit (nothing changed: must create/update nothing).
  update    A changes every innovation (description, price, version + 1) and exports again; B
            imports that bundle (every innovation updated: the history names the fields that changed).

Each step runs in its own child process, and the parent reads that child's peak resident memory
from os.wait4() (ru_maxrss of that one process), so the peak of a step is not polluted by the
fill or by another step. A child also reports the resident memory it had before its step began
(interpreter, Flask app, SQLAlchemy: the floor), its wall-clock and CPU time for the step, and
for the imports the time of each phase (checksums, plan, write, search index, commit), measured
by wrapping the functions of piu_app.exchange.bundle_import. Times do not include starting
Python and the app (about 1 s per step). After a bulk import SQLite's write-ahead log is copied
into the database file by a background thread once the commit has returned
(database.checkpoint_afterwards): its time is printed apart, as "checkpoint after (background)",
and is not in the step's time.

Usage (from the repository root):

    .venv/bin/python bench/exchange.py                          # 1000, 10000, 100000
    .venv/bin/python bench/exchange.py --sizes 1000,10000       # quick look
    .venv/bin/python bench/exchange.py --sizes 100000 --keep /tmp/piu-xbench   # keep A, B and the bundle
    .venv/bin/python bench/exchange.py --sizes 100000 --keep /tmp/piu-xbench --reuse   # skip the fill
    .venv/bin/python bench/exchange.py --sizes 10000 --profile  # + cProfile top functions per step
    .venv/bin/python bench/exchange.py --app-root /tmp/piu-patched   # bench a patched copy of piu_app

Targets (issue 3), at 100 000 innovations on the 2-core machine: export under 10 s, import under
30 s, peak memory under 500 MB, a re-import (nothing changed) under half the import time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

CITY_A = ("Ville-Banc", "SN", "bench")   # what register.fill() configures
CITY_B = ("Ville-B", "CI", "ville-b")
TARGET_EXPORT_S = 10.0
TARGET_IMPORT_S = 30.0
TARGET_PEAK_MB = 500.0
TARGET_REIMPORT_RATIO = 0.5
STEPS = ("fill", "setup-b", "export", "import", "reimport", "update-export", "update")


# --------------------------------------------------------------------------- helpers (child side)

def _self_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _make_app(home: Path):
    import logging

    from piu_app import create_app, upgrade_database

    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}, instance_path=home)
    logging.disable(logging.INFO)  # alembic's configuration re-enables its INFO lines at every upgrade
    try:
        upgrade_database(app, backup=False)
    finally:
        logging.disable(logging.NOTSET)
    return app


def _checkpoint(app) -> None:
    from piu_app.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.close()
        db.engine.dispose()


def _table_counts() -> dict[str, int]:
    from sqlalchemy import func, select

    from piu_app.exchange import bundle_format as bf
    from piu_app.extensions import db

    counts = {}
    for key in bf.TABLE_ORDER:
        table = bf.TABLES[key].table
        n = db.session.scalar(select(func.count()).select_from(table))
        if n:
            counts[key] = n
    return counts


class _Phases:
    """Wrap module-level functions to add up the wall and CPU time spent in each."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, module, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args, **kwargs):
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall[label] = self.wall.get(label, 0.0) + time.perf_counter() - w0
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - c0

        setattr(module, name, timed)


# --------------------------------------------------------------------------- steps (one per child process)

def step_fill(n: int, base: Path) -> dict:
    from sqlalchemy import text

    sys.path.insert(0, str(HERE))
    import register  # bench/register.py: the bulk fill

    from piu_app.database import writing
    from piu_app.exchange import bundle_format as bf
    from piu_app.extensions import db
    from piu_app.services import search as search_service

    home = base / "city-a"
    app = _make_app(home)
    search_service.rebuild = lambda *a, **k: 0  # A's search index is not needed to export
    info = register.fill(app, n, random.Random(20261122 + n), analyze=False)
    t0 = time.perf_counter()
    with app.app_context(), writing():
        shareable = 0
        for key in bf.TABLE_ORDER:
            table = bf.TABLES[key].table.name
            db.session.execute(text(f"UPDATE {table} SET visibility = 'network' WHERE visibility = 'private'"))
            shareable += db.session.execute(text(
                f"SELECT count(*) FROM {table} WHERE visibility IN ('network', 'public') AND draft = 0 "
                f"AND origin_instance = :o"), {"o": CITY_A[2]}).scalar()
        db.session.commit()
        counts = _table_counts()
    _checkpoint(app)
    return {"fill_s": info["fill_s"] + time.perf_counter() - t0, "counts": counts, "shareable": shareable,
            "db_mb": (home / "piu.sqlite3").stat().st_size / 1024 / 1024}


def step_setup_b(n: int, base: Path) -> dict:
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import instance

    home = base / "city-b"
    if home.exists():
        shutil.rmtree(home)
    app = _make_app(home)
    with app.app_context(), writing():
        instance.configure(city_name=CITY_B[0], country_code=CITY_B[1], instance_code=CITY_B[2])
        db.session.commit()
    _checkpoint(app)
    return {}


def step_export(n: int, base: Path) -> dict:
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import exchange

    home = base / "city-a"
    app = _make_app(home)
    out = base / "bundle.registre.zip"
    out.unlink(missing_ok=True)
    with app.test_request_context(), writing():
        db.session.connection()  # open the transaction before timing
        floor = _current_rss_mb()
        w0, c0 = time.perf_counter(), time.process_time()
        summary = exchange.export("network", out, uploads=home / "uploads")
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        db.session.rollback()
    return {"wall": wall, "cpu": cpu, "floor_mb": floor, "size": summary.size,
            "rows": {k: v for k, v in summary.rows.items() if v}}


def _import(base: Path, label: str, bundle_name: str = "bundle.registre.zip") -> dict:
    from piu_app.database import wait_for_checkpoints, writing
    from piu_app.exchange import bundle_import
    from piu_app.extensions import db
    from piu_app.services import exchange

    home = base / "city-b"
    app = _make_app(home)
    bundle = base / bundle_name
    phases = _Phases()
    phases.wrap(bundle_import, "open_bundle", "checksums")
    phases.wrap(bundle_import, "plan_import", "plan")
    phases.wrap(bundle_import, "apply_import", "apply")
    phases.wrap(bundle_import, "reindex", "search index")
    phases.wrap(bundle_import, "write_records", "write records")
    with app.test_request_context(), writing():
        db.session.connection()
        floor = _current_rss_mb()
        w0, c0 = time.perf_counter(), time.process_time()
        plan, batch = exchange.import_bundle(bundle, username="bench", uploads=home / "uploads")
        w1, c1 = time.perf_counter(), time.process_time()
        db.session.commit()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        phases.wall["commit"], phases.cpu["commit"] = time.perf_counter() - w1, time.process_time() - c1
        done = time.perf_counter()
        totals = plan.totals()
        counts = _table_counts()
    # The connection went back to the pool: after a bulk import SQLite's WAL is copied into the
    # database by a background thread (database.checkpoint_afterwards), not inside the commit. Its
    # time is reported apart: the user has the import's report meanwhile.
    wait_for_checkpoints()
    phases.wall["checkpoint after (background)"] = time.perf_counter() - done
    # "apply" includes "write records" and "search index": keep only what is left in it
    for d in (phases.wall, phases.cpu):
        if "apply" in d:
            d["apply (other)"] = d.pop("apply") - d.get("write records", 0.0) - d.get("search index", 0.0)
    _checkpoint(app)
    return {"wall": wall, "cpu": cpu, "floor_mb": floor, "totals": totals, "batch": batch is not None,
            "counts": counts, "phases_wall": phases.wall, "phases_cpu": phases.cpu}


def step_import(n: int, base: Path) -> dict:
    return _import(base, "import")


def step_reimport(n: int, base: Path) -> dict:
    return _import(base, "reimport")


def step_update_export(n: int, base: Path) -> dict:
    """A changes every shared innovation (two fields, a new version), then exports the update bundle."""
    from sqlalchemy import text

    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import exchange

    home = base / "city-a"
    app = _make_app(home)
    out = base / "bundle-update.registre.zip"
    out.unlink(missing_ok=True)
    with app.test_request_context(), writing():
        db.session.execute(text("UPDATE innovations SET version = version + 1, updated_at = :now, "
                                "description = description || ' (mise à jour)', "
                                "price_indication = coalesce(price_indication, 0) + 1000"),
                           {"now": dt.datetime.now(dt.UTC).replace(tzinfo=None)})
        db.session.commit()
        summary = exchange.export("network", out, uploads=home / "uploads")
        db.session.rollback()
    return {"size": summary.size}


def step_update(n: int, base: Path) -> dict:
    return _import(base, "update", "bundle-update.registre.zip")


STEP_FUNCTIONS = {"fill": step_fill, "setup-b": step_setup_b, "export": step_export, "import": step_import,
                  "reimport": step_reimport, "update-export": step_update_export, "update": step_update}


def child_main(args) -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    base = Path(args.child_dir)
    fn = STEP_FUNCTIONS[args.child_step]
    if args.profile and args.child_step in ("export", "import", "reimport"):
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(fn, args.child_n, base)
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
        (base / f"profile-{args.child_step}.txt").write_text(text.getvalue(), encoding="utf-8")
        prof.dump_stats(base / f"profile-{args.child_step}.prof")  # for pstats (callers, callees)
        result["profile"] = str(base / f"profile-{args.child_step}.txt")
    else:
        result = fn(args.child_n, base)
    result["self_maxrss_mb"] = _self_maxrss_mb()
    Path(args.child_result).write_text(json.dumps(result), encoding="utf-8")


# --------------------------------------------------------------------------- parent side

def run_step(step: str, n: int, base: Path, args) -> dict:
    """Run one step in a child process; return its result with the child's own peak RSS."""
    result_file = base / f"result-{step}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--app-root", args.app_root,
               "--child-step", step, "--child-n", str(n), "--child-dir", str(base),
               "--child-result", str(result_file)] + ["--profile"] * args.profile
    load_before = f"{os.getloadavg()[0]:.1f}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(command)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"step {step} at {n} failed (exit {proc.returncode})")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    result_file.unlink()
    result["peak_mb"] = usage.ru_maxrss / 1024  # KiB → MiB, this child only
    result["load"] = load_before
    result["process_s"] = time.perf_counter() - t0
    return result


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def bench_size(n: int, args, base_dir: Path) -> dict:
    base = base_dir / f"exchange-{n}"
    marker = base / "filled.json"
    print(f"\n=== {n} innovations — {base}", flush=True)
    r: dict = {}
    if args.reuse and marker.exists() and (base / "city-a" / "piu.sqlite3").exists():
        r["fill"] = json.loads(marker.read_text(encoding="utf-8"))
        print(f"  fill: reused ({r['fill']['counts']})", flush=True)
    else:
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        r["fill"] = run_step("fill", n, base, args)
        marker.write_text(json.dumps(r["fill"]), encoding="utf-8")
        f = r["fill"]
        print(f"  fill {f['fill_s']:.1f} s, db {f['db_mb']:.1f} MB, {f['shareable']} shareable records "
              f"{f['counts']}", flush=True)
    run_step("setup-b", n, base, args)
    e = r["export"] = run_step("export", n, base, args)
    print(f"  export   {e['wall']:6.1f} s (cpu {e['cpu']:6.1f} s, load {e['load']})  bundle {e['size'] / 1e6:7.1f} MB  "
          f"peak {e['peak_mb']:6.0f} MB (floor {e['floor_mb']:.0f})  rows {e['rows']}", flush=True)
    for step in ("import", "reimport"):
        i = r[step] = run_step(step, n, base, args)
        phases = ", ".join(f"{k} {v:.1f}" for k, v in i["phases_wall"].items())
        print(f"  {step:8} {i['wall']:6.1f} s (cpu {i['cpu']:6.1f} s, load {i['load']})  peak {i['peak_mb']:6.0f} MB "
              f"(floor {i['floor_mb']:.0f})  totals {i['totals']}\n           phases (s): {phases}", flush=True)
    run_step("update-export", n, base, args)
    u = r["update"] = run_step("update", n, base, args)
    phases = ", ".join(f"{k} {v:.1f}" for k, v in u["phases_wall"].items())
    print(f"  update   {u['wall']:6.1f} s (cpu {u['cpu']:6.1f} s, load {u['load']})  peak {u['peak_mb']:6.0f} MB "
          f"(floor {u['floor_mb']:.0f})  totals {u['totals']}\n           phases (s): {phases}", flush=True)
    # correctness: everything exported was created in B; the re-import changed nothing
    exported = {k: v for k, v in e["rows"].items() if k in r["fill"]["counts"]}
    problems = []
    if r["import"]["counts"] != exported:
        problems.append(f"B holds {r['import']['counts']} after the import, the bundle had {exported}")
    if r["import"]["totals"]["created"] != sum(exported.values()):
        problems.append(f"import created {r['import']['totals']['created']}, expected {sum(exported.values())}")
    if r["reimport"]["totals"]["created"] or r["reimport"]["totals"]["updated"] or r["reimport"]["batch"]:
        problems.append(f"re-import changed something: {r['reimport']['totals']}")
    if r["reimport"]["counts"] != exported:
        problems.append(f"B holds {r['reimport']['counts']} after the re-import")
    if r["update"]["totals"]["updated"] != e["rows"].get("innovations"):
        problems.append(f"update bundle updated {r['update']['totals']['updated']}, expected every innovation")
    r["problems"] = problems
    print("  check:", "OK (import created every exported record; re-import created/updated 0)"
          if not problems else "FAILED: " + "; ".join(problems), flush=True)
    if args.profile:
        for step in ("export", "import", "reimport"):
            print(f"  profile of {step}: {r[step].get('profile')}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return r


def print_table(results: dict[int, dict]) -> None:
    print("\n| innovations | records | export s | bundle MB | export peak MB | import s | import peak MB "
          "| re-import s | re-import peak MB | update s (every innovation) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        e, i, ri, u = r["export"], r["import"], r["reimport"], r["update"]
        print(f"| {n} | {sum(e['rows'].values())} | {e['wall']:.1f} | {e['size'] / 1e6:.1f} | {e['peak_mb']:.0f} "
              f"| {i['wall']:.1f} | {i['peak_mb']:.0f} | {ri['wall']:.1f} | {ri['peak_mb']:.0f} | {u['wall']:.1f} |")
    print("(wall-clock seconds of the step inside its process; cpu times above; peak MB = ru_maxrss of the "
          "step's own process, interpreter and app included; bundle MB = 10^6 bytes; records = rows of every "
          "table in the bundle, join tables included)")
    print("\n| innovations | export cpu s | import cpu s | re-import cpu s | import phases, cpu s "
          "| re-import phases, cpu s | load avg (export / import / re-import) |")
    print("|---:|---:|---:|---:|---|---|---|")
    for n, r in results.items():
        e, i, ri = r["export"], r["import"], r["reimport"]
        print(f"| {n} | {e['cpu']:.1f} | {i['cpu']:.1f} | {ri['cpu']:.1f} | {_phases(i['phases_cpu'])} "
              f"| {_phases(ri['phases_cpu'])} | {e['load']} / {i['load']} / {ri['load']} |")
    print("(cpu = CPU time of the step's process during the step: what it costs on a machine that is not shared; "
          "phases: checksums = open_bundle, plan = plan_import, write = write_records, index = reindex, "
          "other = the rest of apply_import, commit; load avg = 1-minute load average just before the step)")


def _phases(phases: dict[str, float]) -> str:
    short = {"checksums": "checksums", "plan": "plan", "write records": "write", "search index": "index",
             "apply (other)": "other", "commit": "commit"}
    return ", ".join(f"{short.get(k, k)} {v:.1f}" for k, v in phases.items() if v >= 0.05) or "—"


def print_targets(results: dict[int, dict]) -> bool:
    if 100_000 not in results:
        n = max(results)
        print(f"\ntargets are set at 100 000 innovations; shown here at {n} (largest size run):")
    else:
        n = 100_000
        print("\ntargets at 100 000 innovations:")
    r = results[n]
    e, i, ri = r["export"], r["import"], r["reimport"]
    peak = max(e["peak_mb"], i["peak_mb"], ri["peak_mb"])
    checks = [
        (f"export under {TARGET_EXPORT_S:.0f} s", f"{e['wall']:.1f} s (cpu {e['cpu']:.1f} s)",
         e["wall"] < TARGET_EXPORT_S),
        (f"import under {TARGET_IMPORT_S:.0f} s", f"{i['wall']:.1f} s (cpu {i['cpu']:.1f} s)",
         i["wall"] < TARGET_IMPORT_S),
        (f"peak memory under {TARGET_PEAK_MB:.0f} MB", f"export {e['peak_mb']:.0f}, import {i['peak_mb']:.0f}, "
         f"re-import {ri['peak_mb']:.0f} MB", peak < TARGET_PEAK_MB),
        ("re-import under half the import time", f"{ri['wall']:.1f} s = {ri['wall'] / i['wall']:.2f} × import",
         ri["wall"] < TARGET_REIMPORT_RATIO * i["wall"]),
        ("re-import creates/updates nothing", f"{ri['totals']}",
         not (ri["totals"]["created"] or ri["totals"]["updated"])),
    ]
    ok = True
    for label, value, passed in checks:
        ok &= passed
        print(f"  {'PASS' if passed else 'FAIL'}  {label:38} {value}")
    return ok


def machine_line() -> str:
    sys.path.insert(0, str(HERE))
    import register

    m = register.machine_info()
    return f"nproc {m['nproc']}, {m['cpu']}, RAM {m['ram']}, Python {m['python']}, SQLite {m['sqlite']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated numbers of innovations")
    parser.add_argument("--keep", default=None, help="keep city A, city B and the bundle in this directory")
    parser.add_argument("--reuse", action="store_true", help="with --keep: reuse a filled city A if present")
    parser.add_argument("--profile", action="store_true",
                        help="run export/import/re-import under cProfile (slower) and save the top functions")
    parser.add_argument("--app-root", default=str(ROOT), help="directory holding the piu_app package to bench")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    # internal: one step in a child process
    parser.add_argument("--child-step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.app_root = str(Path(args.app_root).resolve())
    sys.path.insert(0, args.app_root)

    if args.child_step:
        child_main(args)
        return

    import piu_app
    print(f"piu_app from {Path(piu_app.__file__).parent}")
    print(f"machine: {machine_line()}")
    print(f"date: {dt.date.today().isoformat()}; load average at start: {load_average()}", flush=True)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.keep:
        base_dir = Path(args.keep).resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="piu-exchange-bench-")
        base_dir = Path(tmp)
    results: dict[int, dict] = {}
    try:
        for n in sizes:
            results[n] = bench_size(n, args, base_dir)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_table(results)
    ok = print_targets(results)
    if any(r["problems"] for r in results.values()):
        print("CORRECTNESS CHECK FAILED:", {n: r["problems"] for n, r in results.items() if r["problems"]})
        sys.exit(2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
