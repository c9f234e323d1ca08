#!/usr/bin/python3
"""Compares vdx's photos.tsv000 reader with pandas' C parser (issue 10, F5), on the real
Unsplash sample file and on copies of it with stray quotes put in, and prints what each
makes of every row. Run from the project root after `make build/release/tools/source_dump`,
with Debian's pandas (`sh scripts/deps.sh --goldens` installs python3-pandas):

    /usr/bin/python3 tests/tools/tsv_vs_pandas.py [SHARED]        # SHARED defaults to ../shared

pandas is read as the Unsplash dataset's own documentation reads it:
read_csv(sep='\\t', header=0), here with dtype=str and keep_default_na=False so values
compare as text, on_bad_lines='warn'. For every row both readers keep, the values must be
equal (exit 1 otherwise); the rows where they differ are listed with vdx's reason. Exits 0
when the only differences are rows vdx reports and pandas merges or drops.
"""
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import pandas as pd

SHARED = sys.argv[1] if len(sys.argv) > 1 else "../shared"
DUMP = os.environ.get("VDX_BUILD", "build/release") + "/tools/source_dump"
REAL = os.path.join(SHARED, "data/unsplash-sample/photos.tsv000")


def vdx_read(text):
    d = tempfile.mkdtemp(prefix="vdx-tsv-")
    try:
        with open(os.path.join(d, "photos.tsv000"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
        out = subprocess.run([DUMP, "unsplash", d], capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(d)
    items, problems = {}, []
    for line in out.stdout.splitlines():
        o = json.loads(line)
        if "problem_line" in o:
            problems.append(o)
        else:
            items[o["id"]] = {k: (v if v is not None else "") for k, v in o["values"].items()}
    return items, problems


def pandas_read(text):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = pd.read_csv(io.StringIO(text), sep="\t", header=0, dtype=str,
                             keep_default_na=False, engine="c", on_bad_lines="warn")
        except Exception as e:  # pandas refuses the whole file
            return None, "%s: %s" % (type(e).__name__, str(e).strip())
    rows = {}
    for rec in df.to_dict("records"):
        rows.setdefault(rec.get("photo_id", ""), rec)
    notes = "; ".join(str(w.message).strip().replace("\n", " ") for w in caught)
    return rows, notes


def compare(name, text):
    items, problems = vdx_read(text)
    rows, notes = pandas_read(text)
    print("== %s" % name)
    print("   vdx: %d items, %d rows reported%s" % (len(items), len(problems), "".join(
        "\n     line %d %s: %s" % (p["problem_line"], p["id"] or "", p["reason"]) for p in problems)))
    if rows is None:
        print("   pandas: refuses the file: %s" % notes)
        return 0
    print("   pandas: %d rows%s" % (len(rows), (" (warnings: %s)" % notes) if notes else ""))
    bad = 0
    for pid, vals in items.items():
        if pid not in rows:
            print("   vdx keeps %s, pandas has no such row" % pid)
            continue
        diff = [c for c in vals if str(rows[pid].get(c, "")) != vals[c]]
        if diff:
            bad = 1
            print("   DIFFERENT %s in %s: vdx %r, pandas %r" % (
                pid, diff[0], vals[diff[0]][:80], str(rows[pid].get(diff[0], ""))[:80]))
    for pid, rec in rows.items():
        if pid not in items:
            long = max(rec.values(), key=lambda v: len(str(v)))
            print("   pandas keeps %r, vdx does not (its longest field: %d chars, %d newlines)" % (
                pid[:40], len(str(long)), str(long).count("\n")))
    if not bad:
        print("   every row both keep has the same values")
    return bad


def main():
    with open(REAL, encoding="utf-8", newline="") as f:
        real = f.read()
    lines = real.split("\n")
    failed = compare("the real sample file", real)
    # a stray quote opening the description of row 5, closed by a later one (row 9)
    cols = lines[0].split("\t")
    desc = cols.index("photo_description")

    def with_quote(row, where, text=lines):
        out = list(text)
        fields = out[row].split("\t")
        fields[desc] = where(fields[desc])
        out[row] = "\t".join(fields)
        return out
    t = with_quote(5, lambda v: '"' + v)
    t = with_quote(9, lambda v: v + ' "end', t)
    failed |= compare("stray quote opening row 5's description, a quote inside row 9's",
                      "\n".join(t))
    failed |= compare("stray quote opening row 5's description, never closed",
                      "\n".join(with_quote(5, lambda v: '"' + v)))
    row = next(i for i in range(1, len(lines)) if len(lines[i].split("\t")) > desc and
               len(lines[i].split("\t")[desc]) >= 10)
    failed |= compare("a quote in the middle of row %d's description" % row,
                      "\n".join(with_quote(row, lambda v: v[:5] + '"' + v[5:])))
    return failed


if __name__ == "__main__":
    sys.exit(main())
