"""make bench-warehouse: the processed Parquet of N generated sales orders (bench-transform's
output: the star schema of the orders and every dimension they refer to) -> an empty, migrated
PostgreSQL warehouse, four ways side by side, each in one transaction per source table with
its ledger row and the loader's own stage and merge SQL:

  rust     warehouse-loader's path (bench-warehouse load: Parquet -> COPY text -> merge)
  floor    psql: \\copy of the same rows (pre-exported CSV, export not timed) into the same
           stage, plus the same merge
  copy     pandas + psycopg2 copy_expert (the strong Python baseline)
  to_sql   pandas DataFrame.to_sql (what awswrangler's postgresql.to_sql does)

Checked after every run: the same row count per warehouse table and the same order value.
Medians of several runs (to_sql: one, it is slow).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchlib import arguments, timed
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


def main():
    parser = arguments(ROOT, 1_000_000)
    args = parser.parse_args()

    directory = parquet_of(args.rows, args.python)
    sql = json.loads(subprocess.run([BENCH, "sql"], check=True, capture_output=True, text=True).stdout)
    csv_dir = os.path.join(os.path.dirname(directory), f"csv-{args.rows}")
    os.makedirs(csv_dir, exist_ok=True)
    prepare = [BENCH, "prepare", DATABASE]

    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "floor.sql")
        with open(script, "w") as f:
            f.write(floor_script(directory, csv_dir, sql))
        with open(os.path.join(tmp, "sql.json"), "w") as f:
            json.dump(sql, f)
        baseline = [args.python, os.path.join(HERE, "warehouse_baselines.py")]
        ways = {
            "rust": ([BENCH, "load", directory, DATABASE], args.runs),
            "floor": (["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-f", script], args.runs),
            "copy": (baseline + ["copy", directory, DATABASE, os.path.join(tmp, "sql.json")], args.runs),
            "to_sql": (baseline + ["to_sql", directory, DATABASE, os.path.join(tmp, "sql.json")], 1),
        }
        results, outcomes, rss = {}, {}, None
        for name, (command, runs) in ways.items():
            seconds = []
            for _ in range(runs):
                timed(prepare)
                wall, peak, out = timed(command)
                if name == "rust":
                    answer = json.loads(out)
                    seconds.append(answer["seconds"])
                    rss = answer["peak_rss_mb"]
                elif name == "floor":
                    seconds.append(wall)
                else:
                    seconds.append(float(out.strip().splitlines()[-1]))
                outcomes[name] = outcome()
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
    print(f"bench-warehouse: rows={rows} rust_s={results['rust']:.2f} floor_s={results['floor']:.2f} "
          f"python_to_sql_s={results['to_sql']:.2f} python_copy_s={results['copy']:.2f} "
          f"vs_floor={results['floor'] / results['rust']:.2f} "
          f"speedup_vs_copy={results['copy'] / results['rust']:.1f} rss_mb={rss:.1f}")


if __name__ == "__main__":
    main()
