"""make bench-warehouse: the processed Parquet of N generated sales orders (bench-transform's
output: the star schema of the orders and every dimension they refer to) -> an empty, migrated
PostgreSQL warehouse, side by side:

  rust     warehouse-loader's path (bench-warehouse load), one transaction per source table with
           its ledger row: Parquet -> COPY text -> dims staged and merged, facts straight into
           their tables, references checked by set
  floor    psql \\copy of the rows the warehouse ends up with (exported as CSV after the rust
           run, not timed) straight into the final tables, keys and unique indexes as migrated,
           one transaction: PostgreSQL's own bulk path and nothing else
  today    the loader's path before references were checked by set, as psql runs it: every file
           \\copy'd into a stage and merged, into the schema migrated through 0002, whose facts
           check each reference per row with PostgreSQL's foreign key triggers
  copy     pandas + psycopg2 copy_expert into the stage + the merge (the strong Python baseline)
  to_sql   pandas DataFrame.to_sql into the stage + the merge (what awswrangler's
           postgresql.to_sql does)

Checked after every run: the same row count per warehouse table and the same order value.
Medians of several runs (to_sql: one, it is slow).

Then the increment case (--case increment runs it alone): the next object's 1,000 sales orders
(their fact file and the days they add to dim_date) loaded by the same path into a warehouse
already holding a history of --history facts (5M) and into one holding the same dimensions and
no fact: the time stays flat when the load touches only the increment's keys (unique indexes,
references checked by set against the dimensions' keys, no scan of the facts).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchlib import arguments, report, timed
from transform_inputs import generate
from warehouse_files import SOURCES, TABLES, files_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(ROOT, "target/release/bench-warehouse")
DATABASE = "landfall_bench_warehouse"


def psql(query):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-AtF", "\t", "-c", query],
                          check=True, capture_output=True, text=True).stdout.strip()


def outcome():
    counts = psql(" UNION ALL ".join(f"SELECT count(*) FROM {t}" for t in TABLES)).split()
    value = psql("SELECT sum(units_sold * unit_price) FROM fact_sales_order")
    return dict(zip(TABLES, map(int, counts))), value


def parquet_of(rows, python):
    directory = os.path.join(ROOT, "target", "bench-warehouse", f"parquet-{rows}")
    if not os.path.exists(os.path.join(directory, f"fact_sales_order-sales_order.parquet")):
        inputs = os.path.join(ROOT, "target", "bench-transform", f"input-{rows}")
        if not os.path.exists(os.path.join(inputs, "sales_order.jsonl.gz")):
            print(f"generating {rows:,} sales orders into {inputs} ...", file=sys.stderr)
            generate(inputs, rows)
        print(f"transforming them into {directory} ...", file=sys.stderr)
        subprocess.run([os.path.join(ROOT, "target/release/bench-transform"), inputs, directory],
                       check=True, stdout=subprocess.DEVNULL)
    return directory


def floor_script(directory, csv_dir, sql):
    """One psql script: per source table a transaction with the ledger row, \\copy and merge."""
    lines = ["\\set ON_ERROR_STOP on"]
    for sequence, source in enumerate(SOURCES, 1):
        files = files_of(directory, source)
        if not files:
            continue
        rows = sum(pq.ParquetFile(path).metadata.num_rows for _, path in files)
        lines += ["BEGIN;",
                  "INSERT INTO landfall.load_ledger (manifest, source, source_version, source_table, sequence, rows) "
                  f"VALUES ('ready/{source}.json', 'bench://{source}', '1', '{source}', {sequence}, {rows});"]
        for table, path in files:
            csv_path = os.path.join(csv_dir, os.path.basename(path).replace(".parquet", ".csv"))
            if not os.path.exists(csv_path):
                pacsv.write_csv(pq.read_table(path), csv_path,
                                pacsv.WriteOptions(include_header=False))
            statements = sql[table]
            copy = statements["copy"].replace("COPY ", "\\copy ", 1).replace(" FROM STDIN", f" FROM '{csv_path}'")
            lines += [statements["create_stage"] + ";", copy + " WITH (FORMAT csv)",
                      statements["merge"].replace("\n", " ") + ";", statements["drop_stage"] + ";"]
        lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def export_final(csv_dir):
    """The warehouse's rows as CSV, for the floor: every column but the facts' record ids,
    which the warehouse assigns again."""
    script = ["\\set ON_ERROR_STOP on"]
    loads = ["\\set ON_ERROR_STOP on", "BEGIN;"]
    for table in TABLES:
        columns = psql(f"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                       f"WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped "
                       f"AND attidentity = ''")
        path = os.path.join(csv_dir, f"final-{table}.csv")
        script.append(f"\\copy (SELECT {columns} FROM {table}) TO '{path}' WITH (FORMAT csv)")
        loads.append(f"\\copy {table} ({columns}) FROM '{path}' WITH (FORMAT csv)")
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE],
                   input="\n".join(script) + "\n", text=True, check=True)
    return "\n".join(loads + ["COMMIT;"]) + "\n"


def increment_case(args):
    """The increment into a warehouse holding --history facts and into one holding none: the
    median load seconds of each, the ratio and the loader's peak RSS."""
    history = parquet_of(args.history, args.python)
    base = os.path.join(ROOT, "target", "bench-warehouse")
    increment = os.path.join(base, f"increment-after-{args.history}")
    if not os.path.exists(os.path.join(increment, "fact_sales_order-sales_order.parquet")):
        inputs = os.path.join(base, f"increment-input-{args.history}")
        generate(inputs, 1000, first_id=args.history + 1)
        subprocess.run([os.path.join(ROOT, "target/release/bench-transform"), inputs, increment],
                       check=True, stdout=subprocess.DEVNULL)
        # What the next object of sales_order brings: its facts and its new days; the dimension
        # rows it refers to are the history's.
        for name in os.listdir(increment):
            if not name.startswith(("fact_sales_order-", "dim_date-")):
                os.remove(os.path.join(increment, name))
    dims_only = os.path.join(base, f"dimensions-of-{args.history}")
    if not os.path.exists(dims_only):
        os.makedirs(dims_only)
        for name in os.listdir(history):
            if not name.startswith("fact_"):
                shutil.copy(os.path.join(history, name), dims_only)

    figures = {}
    for label, before in (("empty", dims_only), ("full", history)):
        seconds, rss = [], []
        for _ in range(args.runs):
            timed([BENCH, "prepare", DATABASE])
            timed([BENCH, "load", before, DATABASE])
            psql("ANALYZE")
            facts = int(psql("SELECT count(*) FROM fact_sales_order"))
            _, _, out = timed([BENCH, "load", increment, DATABASE, "increment"])
            answer = json.loads(out)
            if answer["rows"].get("fact_sales_order") != 1000:
                sys.exit(f"the increment loaded {answer['rows']}")
            seconds.append(answer["seconds"])
            rss.append(answer["peak_rss_mb"])
        figures[label] = (statistics.median(seconds), max(rss), facts)
        print(f"  increment into a warehouse of {facts:,} facts: {figures[label][0]:.3f} s", file=sys.stderr)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc",
                    f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"], check=True)
    empty, full = figures["empty"], figures["full"]
    millions = f"{full[2] // 1_000_000}m"
    report(ROOT, "warehouse-increment", [
        ("landfall: the next 1,000 sales orders into a warehouse of no facts", "landfall", empty[0], empty[1]),
        (f"landfall: the same after {full[2]:,} facts", "landfall", full[0], full[1]),
    ], {"seconds_empty": f"{empty[0]:.3f}", f"seconds_{millions}": f"{full[0]:.3f}",
        "ratio": f"{full[0] / empty[0]:.2f}", "rss_mb": f"{full[1]:.1f}"})


def main():
    parser = arguments(ROOT, 1_000_000)
    parser.add_argument("--case", choices=["all", "increment"], default="all")
    parser.add_argument("--history", type=int, default=5_000_000)
    args = parser.parse_args()

    if args.case == "increment":
        increment_case(args)
        return

    directory = parquet_of(args.rows, args.python)
    sql = json.loads(subprocess.run([BENCH, "sql"], check=True, capture_output=True, text=True).stdout)
    csv_dir = os.path.join(os.path.dirname(directory), f"csv-{args.rows}")
    os.makedirs(csv_dir, exist_ok=True)
    prepare = [BENCH, "prepare", DATABASE]

    with tempfile.TemporaryDirectory() as tmp:
        today = os.path.join(tmp, "today.sql")
        with open(today, "w") as f:
            f.write(floor_script(directory, csv_dir, sql))
        floor = os.path.join(tmp, "floor.sql")
        with open(os.path.join(tmp, "sql.json"), "w") as f:
            json.dump(sql, f)
        baseline = [args.python, os.path.join(HERE, "warehouse_baselines.py")]
        run_psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-f"]
        # name: (command, runs, the schema version it needs)
        ways = {
            "rust": ([BENCH, "load", directory, DATABASE], args.runs, None),
            "floor": (run_psql + [floor], args.runs, None),
            "today": (run_psql + [today], 1, "2"),
            "copy": (baseline + ["copy", directory, DATABASE, os.path.join(tmp, "sql.json")], args.runs, None),
            "to_sql": (baseline + ["to_sql", directory, DATABASE, os.path.join(tmp, "sql.json")], 1, None),
        }
        results, outcomes, rss, peaks = {}, {}, None, {}
        for name, (command, runs, version) in ways.items():
            seconds = []
            for _ in range(runs):
                timed(prepare + ([version] if version else []))
                wall, peak, out = timed(command)
                peaks[name] = peak
                if name == "rust":
                    answer = json.loads(out)
                    seconds.append(answer["seconds"])
                    rss = answer["peak_rss_mb"]
                elif name in ("floor", "today"):
                    seconds.append(wall)
                else:
                    seconds.append(float(out.strip().splitlines()[-1]))
                outcomes[name] = outcome()
                if name == "rust" and not os.path.exists(floor):
                    with open(floor, "w") as f:
                        f.write(export_final(csv_dir))
            results[name] = statistics.median(seconds)
            print(f"  {name:>7}: {results[name]:7.2f} s  {outcomes[name][0]}", file=sys.stderr)

    first = outcomes["rust"]
    for name, got in outcomes.items():
        if got != first:
            sys.exit(f"{name} loaded something else: {got} vs rust {first}")
    if first[0]["fact_sales_order"] != args.rows:
        sys.exit(f"fact_sales_order has {first[0]['fact_sales_order']} rows, expected {args.rows}")
    rows = sum(first[0].values())
    psql_drop = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc",
                 f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"]
    subprocess.run(psql_drop, check=True)
    r = results
    report(ROOT, "warehouse", [
        ("landfall warehouse-loader", "landfall", r["rust"], rss),
        ("psql \\copy into the final tables", "floor", r["floor"], None),
        ("before: stage + merge with per-row FK triggers (psql)", "before", r["today"], None),
        ("pandas + psycopg2 copy_expert", "python", r["copy"], peaks["copy"]),
        ("pandas to_sql", "python", r["to_sql"], peaks["to_sql"]),
    ], {"rows": rows, "rust_s": f"{r['rust']:.2f}", "floor_s": f"{r['floor']:.2f}",
        "today_s": f"{r['today']:.2f}", "python_copy_s": f"{r['copy']:.2f}",
        "python_to_sql_s": f"{r['to_sql']:.2f}", "vs_floor": f"{r['floor'] / r['rust']:.2f}",
        "vs_today": f"{r['today'] / r['rust']:.1f}", "speedup_vs_copy": f"{r['copy'] / r['rust']:.1f}",
        "rss_mb": f"{rss:.1f}"})
    increment_case(args)


if __name__ == "__main__":
    main()
