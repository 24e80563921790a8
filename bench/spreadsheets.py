#!/usr/bin/env python3
"""Benchmark the spreadsheet import pages on a large XLSX: time and peak memory of each step.

The file (made once, then reused): 20 000 rows × 200 columns, the documented limits
(spreadsheets.MAX_ROWS, MAX_COLUMNS), about 9 MB like the issue's 8.7 MB — organisations with a
name, an acronym, a type, a website, a year, a short presentation, and 194 more columns of short
texts, numbers and dates, as a city's export from another tool looks.

Steps, each in its own child process (the parent reads that child's peak resident memory with
os.wait4, so one step's peak is not another's), through the Flask test client as an editor:

  upload    POST /spreadsheets/ with the file (read, suggest a mapping, keep it for the next steps)
  mapping   GET  /spreadsheets/<token>/mapping (headers and samples)
  preview   GET  /spreadsheets/<token>/preview (every row checked)
  values    POST /spreadsheets/<token>/values (the value choices saved)

Times do not include starting Python and the app; "floor" is the resident memory before the step.

Usage (from the repository root):

    .venv/bin/python bench/spreadsheets.py                       # makes /tmp/piu-sheet-bench/big.xlsx once
    .venv/bin/python bench/spreadsheets.py --work /tmp/somewhere --rows 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "correct-horse-battery"
HEADERS = ["Nom", "Sigle", "Type de structure", "Site web", "Année de création", "Présentation courte"]


def make_xlsx(path: Path, rows: int, columns: int) -> None:
    """Write the workbook's XML directly (openpyxl takes minutes for 4 million cells): shared strings,
    numbers and dates (style 1 = a date format), as Excel writes them."""
    import zipfile
    from xml.sax.saxutils import escape

    from openpyxl.utils import get_column_letter

    rng = random.Random(1)
    words = ["quartier", "eau", "déchets", "mobilité", "énergie", "santé", "école", "marché", "solaire", "vélo"]
    strings: dict[str, int] = {}

    def s(text: str) -> str:
        return f"<c t=\"s\"><v>{strings.setdefault(text, len(strings))}</v></c>"

    last = get_column_letter(columns)
    header = HEADERS + [f"Champ {i}" for i in range(len(HEADERS), columns)]
    epoch = dt.date(1899, 12, 30)
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f'<dimension ref="A1:{last}{rows + 1}"/><sheetData>']
    for r in range(rows + 1):
        cells = []
        if r == 0:
            values: list = header
        else:
            n = r - 1
            values = [f"Structure {n}", f"S{n % 97}", rng.choice(["Association", "Entreprise", "Collectivité"]),
                      f"https://s{n}.example.org", 1990 + n % 34, " ".join(rng.choices(words, k=4))]
            for i in range(len(HEADERS), columns):
                kind = i % 4
                values.append(rng.choice(words) if kind == 0 else rng.randint(0, 9999) if kind == 1
                              else dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 400)) if kind == 2
                              else f"{words[(n * i) % 10]} {n % 5}")
        for value in values:  # no r="B12" on cells: Excel's files may omit it, and it is most of the size
            if isinstance(value, str):
                cells.append(s(value))
            elif isinstance(value, dt.date):
                cells.append(f"<c s=\"1\"><v>{(value - epoch).days}</v></c>")
            else:
                cells.append(f"<c><v>{value}</v></c>")
        parts.append(f'<row r="{r + 1}">{"".join(cells)}</row>')
    parts.append("</sheetData></worksheet>")
    shared = "".join(f"<si><t>{escape(t)}</t></si>" for t in strings)
    ns = "http://schemas.openxmlformats.org"
    files = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="' + ns + '/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '</Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="' + ns + '/package/2006/relationships">'
        '<Relationship Id="rId1" Type="' + ns + '/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="' + ns + '/spreadsheetml/2006/main" '
        'xmlns:r="' + ns + '/officeDocument/2006/relationships"><sheets>'
        '<sheet name="Structures" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="' + ns
        + '/package/2006/relationships">'
        '<Relationship Id="rId1" Type="' + ns + '/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="' + ns + '/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        '<Relationship Id="rId3" Type="' + ns + '/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        '</Relationships>',
        "xl/styles.xml": '<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="' + ns + '/spreadsheetml/2006/main">'
        '<fonts count="1"><font/></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0"/>'
        '<xf numFmtId="14" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
        "xl/sharedStrings.xml": '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="' + ns
        + f'/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">{shared}</sst>',
        "xl/worksheets/sheet1.xml": "".join(parts),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)


def _rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(work: Path, step: str, token: str, xlsx: Path) -> None:
    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import instance as instance_service
    from piu_app.services import users as user_service

    os.environ.pop("PIU_DATABASE_URL", None)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, instance_path=work / "data")
    if step == "setup":
        upgrade_database(app, backup=False)
        with app.app_context(), writing():
            instance_service.configure(city_name="Ville-Banc", country_code="SN", instance_code="bench")
            user_service.create(username="editor", password=PASSWORD, role="editor")
            db.session.commit()
        return
    client = app.test_client()
    assert client.post("/login", data={"username": "editor", "password": PASSWORD}).status_code == 302
    data = xlsx.read_bytes() if step == "upload" else b""
    floor = _rss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    if step == "upload":
        import io

        response = client.post("/spreadsheets/", data={"record_type": "organisations",
                                                       "file": (io.BytesIO(data), xlsx.name)},
                               content_type="multipart/form-data")
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        token = re.search(r"/spreadsheets/([^/]+)/mapping", response.headers["Location"]).group(1)
    elif step == "mapping":
        response = client.get(f"/spreadsheets/{token}/mapping")
    elif step == "preview":
        response = client.get(f"/spreadsheets/{token}/preview")
    elif step == "values":
        response = client.post(f"/spreadsheets/{token}/values", data={})
    assert response.status_code in (200, 302), (step, response.status_code, response.get_data(as_text=True)[:500])
    print(json.dumps({"token": token, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                      "floor_mb": floor / 1024}), flush=True)


def run(step: str, work: Path, token: str, xlsx: Path) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, "--work", str(work), "--token", token,
                             "--xlsx", str(xlsx)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"step {step} failed:\n{out}")
    result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/piu-sheet-bench"))
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--columns", type=int, default=200)
    parser.add_argument("--child")
    parser.add_argument("--token", default="")
    parser.add_argument("--xlsx", type=Path)
    args = parser.parse_args()
    if args.child:
        return child(args.work, args.child, args.token, args.xlsx)
    xlsx = args.work / f"sheet-{args.rows}x{args.columns}.xlsx"
    if not xlsx.is_file():
        print(f"making {xlsx} …", flush=True)
        make_xlsx(xlsx, args.rows, args.columns)
    run_dir = args.work / f"run-{int(time.time())}"
    subprocess.run([sys.executable, __file__, "--child", "setup", "--work", str(run_dir), "--xlsx", str(xlsx)],
                   check=True, cwd=ROOT)
    print(f"{xlsx.name}: {xlsx.stat().st_size / 1e6:.1f} MB; max RSS of the bench itself "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"{'step':<10}{'seconds':>9}{'cpu s':>8}{'floor MB':>10}{'peak MB':>9}")
    token = ""
    for step in ("upload", "mapping", "preview", "values"):
        result = run(step, run_dir, token, xlsx)
        token = result.get("token", token)
        print(f"{step:<10}{result['seconds']:>9.1f}{result['cpu']:>8.1f}{result['floor_mb']:>10.0f}"
              f"{result['peak_mb']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
