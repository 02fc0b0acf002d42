"""make bench-transform: N generated sales orders plus the dimension tables they refer to, as
ingestion objects (gzip JSON lines) → the star schema as Parquet, four ways side by side.

  rust    star-transform's path (bench-transform: read_lines, transform, Parquet encode)
  floor   pyarrow: read_json + write_table per object, no transform at all
  pandas  read_json(lines=True) + merges + to_parquet (the Python a user would write)
  polars  the same transform in polars

Checked: every warehouse table has the same row count and the same key set in the rust,
pandas and polars outputs, and the floor wrote every input row. Medians of several runs.
"""
import collections
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile

import pyarrow.parquet as pq

from benchlib import arguments, report, timed
from transform_inputs import generate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = ["dim_date", "dim_location", "dim_counterparty", "dim_staff", "dim_currency", "dim_design",
          "fact_sales_order"]


def contents(directory):
    """Warehouse table → (row count, set of first-column keys), over every file of the table."""
    found = collections.defaultdict(lambda: [0, set()])
    for name in os.listdir(directory):
        table = next(t for t in TABLES if name.startswith(t))
        data = pq.read_table(os.path.join(directory, name))
        found[table][0] += data.num_rows
        found[table][1].update(str(v) for v in data.column(0).to_pylist())
    return {t: (found[t][0], found[t][1]) for t in TABLES}


def main():
    parser = arguments(ROOT, 1_000_000)
    args = parser.parse_args()

    inputs = os.path.join(ROOT, "target", "bench-transform", f"input-{args.rows}")
    if not os.path.exists(os.path.join(inputs, "sales_order.jsonl.gz")):
        print(f"generating {args.rows:,} sales orders into {inputs} ...", file=sys.stderr)
        generate(inputs, args.rows)
    input_rows = {}
    for name in os.listdir(inputs):
        with gzip.open(os.path.join(inputs, name), "rb") as f:
            input_rows[name.replace(".jsonl.gz", "")] = sum(1 for _ in f)

    paths = {
        "rust": [os.path.join(ROOT, "target/release/bench-transform")],
        "floor": [args.python, os.path.join(HERE, "pyarrow_floor.py")],
        "pandas": [args.python, os.path.join(HERE, "pandas_transform.py")],
        "polars": [args.python, os.path.join(HERE, "polars_transform.py")],
    }
    results, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in paths.items():
            seconds, rss = [], []
            for _ in range(args.runs):
                target = os.path.join(tmp, name)
                shutil.rmtree(target, ignore_errors=True)
                _, peak, out = timed(command + [inputs, target])
                if name == "rust":
                    answer = json.loads(out)
                    seconds.append(answer["seconds"])
                    rss.append(answer["peak_rss_mb"])
                else:
                    seconds.append(float(out.strip().splitlines()[-1]))
                    rss.append(peak)
            results[name] = (statistics.median(seconds), max(rss))
            if name == "floor":
                written = {f.replace(".parquet", ""): pq.read_metadata(os.path.join(target, f)).num_rows
                           for f in os.listdir(target)}
                if written != input_rows:
                    sys.exit(f"floor: wrote {written}, input {input_rows}")
            else:
                outputs[name] = contents(target)

    for name in ("pandas", "polars"):
        for table in TABLES:
            if outputs[name][table] != outputs["rust"][table]:
                got, want = outputs[name][table], outputs["rust"][table]
                sys.exit(f"{name} {table}: {got[0]} rows vs rust {want[0]}; keys differ: "
                         f"{sorted(got[1] ^ want[1])[:5]}")
    if outputs["rust"]["fact_sales_order"][0] != args.rows:
        sys.exit(f"rust wrote {outputs['rust']['fact_sales_order'][0]} fact rows for {args.rows} orders")

    print(f"{'path':<8} {'median s':>9} {'rows/s':>11} {'peak RSS MB':>12}")
    for name, (seconds, rss) in results.items():
        print(f"{name:<8} {seconds:>9.2f} {args.rows / seconds:>11,.0f} {rss:>12.1f}")
    print("checked: row count and key set of " + ", ".join(f"{t} ({outputs['rust'][t][0]:,})" for t in TABLES)
          + " equal in rust, pandas and polars; the floor wrote every input row")
    r, f, p, pl = (results[n][0] for n in ("rust", "floor", "pandas", "polars"))
    report(ROOT, "transform", [
        ("landfall star-transform", "landfall", r, results["rust"][1]),
        ("pyarrow read_json + write_table, no transform", "floor", f, results["floor"][1]),
        ("pandas", "python", p, results["pandas"][1]),
        ("polars", "python", pl, results["polars"][1]),
    ], {"rows": args.rows, "rust_s": f"{r:.2f}", "floor_s": f"{f:.2f}", "pandas_s": f"{p:.2f}",
        "polars_s": f"{pl:.2f}", "vs_floor": f"{f / r:.2f}", "speedup_vs_pandas": f"{p / r:.1f}",
        "rss_mb": f"{results['rust'][1]:.1f}"})


if __name__ == "__main__":
    main()
