"""make bench-orders: a generated N-row orders CSV into P3's warehouse (the local stack's
Redshift: PostgreSQL behind the devstack's Data API), four ways side by side, each one
transaction with the function's own statements (lock, staging emptied, orders_load, staging
emptied, orders_dedupe); only the way the rows reach staging differs:

  rust     orders-loader's path (bench-orders load): audit item and crawler in moto, the file
           checked as it streams from moto S3, a manifest, one BatchExecuteStatement whose COPY
           the Data API streams from moto S3 into COPY FROM STDIN, the ledger, the audit item
  floor    psql: \\copy of the same file from local disk into the same staging table, plus the
           same statements
  copy     boto3 get_object (moto) + psycopg2 copy_expert (the strong Python baseline)
  to_sql   boto3 + pandas.read_csv + DataFrame.to_sql(method="multi") into staging

Checked after every run: the same rows, distinct orders and total amount in orders_enriched.
Medians of several runs (to_sql: one, it is slow).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

import boto3

from benchlib import arguments, moto, report, timed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(ROOT, "target/release/bench-orders")
DATABASE = "landfall_bench_orders"
COPY_TO_STAGING = "COPY orders_staging "


def psql(query, database=DATABASE):
    return subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-AtF", "\t", "-c", query],
                          check=True, capture_output=True, text=True).stdout.strip()


def outcome():
    return psql("SELECT COUNT(*), COUNT(DISTINCT order_id), SUM(amount), COUNT(customer_name) FROM orders_enriched")


def reset():
    psql("TRUNCATE orders_enriched, orders_ledger, orders_staging")


def floor_script(statements, csv_path):
    lines = ["\\set ON_ERROR_STOP on", "BEGIN;"]
    for statement in statements:
        if statement.startswith(COPY_TO_STAGING):
            columns = statement[len(COPY_TO_STAGING):statement.index(")") + 1]
            lines.append(f"\\copy orders_staging {columns} FROM '{csv_path}' WITH (FORMAT csv, HEADER true)")
        else:
            lines.append(statement + ";")
    return "\n".join(lines + ["COMMIT;"]) + "\n"


def main():
    parser = arguments(ROOT, 1_000_000)
    args = parser.parse_args()

    directory = os.path.join(ROOT, "target", "bench-orders")
    os.makedirs(directory, exist_ok=True)
    csv_path = os.path.join(directory, f"orders-{args.rows}.csv")
    if not os.path.exists(csv_path):
        subprocess.run([BENCH, "generate", str(args.rows), csv_path], check=True)
    size = os.path.getsize(csv_path)
    psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", database="postgres")

    results, outcomes, rss = {}, {}, None
    with moto(ROOT) as aws, tempfile.TemporaryDirectory() as tmp:
        timed([BENCH, "prepare", DATABASE], env=aws)
        statements = json.loads(timed([BENCH, "statements", "bench://floor", "1"], env=aws)[2])
        script = os.path.join(tmp, "floor.sql")
        with open(script, "w") as f:
            f.write(floor_script(statements, csv_path))
        statements_path = os.path.join(tmp, "statements.json")
        with open(statements_path, "w") as f:
            json.dump(statements, f)
        s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name=aws["AWS_REGION"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="bench-orders-python",
                         CreateBucketConfiguration={"LocationConstraint": aws["AWS_REGION"]})
        s3.upload_file(csv_path, "bench-orders-python", "transformed/orders/bench.csv")
        baseline = [args.python, os.path.join(HERE, "orders_baselines.py")]
        source = ["bench-orders-python", "transformed/orders/bench.csv", DATABASE, statements_path]
        ways = {
            "rust": ([BENCH, "load", csv_path, DATABASE], args.runs),
            "floor": (["psql", "-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE, "-f", script],
                      args.runs),
            "copy": (baseline + ["copy"] + source, args.runs),
            "to_sql": (baseline + ["to_sql"] + source, 1),
        }
        for name, (command, runs) in ways.items():
            seconds = []
            for _ in range(runs):
                reset()
                wall, _, out = timed(command, env=aws)
                if name == "rust":
                    answer = json.loads(out)
                    seconds.append(answer["seconds"])
                    rss = max(rss or 0, answer["peak_rss_mb"])
                elif name == "floor":
                    seconds.append(wall)
                else:
                    seconds.append(float(out.strip().splitlines()[-1]))
                outcomes[name] = outcome()
            results[name] = statistics.median(seconds)
            print(f"  {name:>7}: {results[name]:7.2f} s  orders_enriched rows, distinct, amount, with customer:"
                  f" {outcomes[name]}", file=sys.stderr)
    psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", database="postgres")

    first = outcomes["rust"]
    for name, got in outcomes.items():
        if got != first:
            sys.exit(f"{name} loaded something else: {got} vs rust {first}")
    rows, distinct = map(int, first.split("\t")[:2])
    if rows != args.rows or distinct != args.rows:
        sys.exit(f"orders_enriched has {rows} rows ({distinct} distinct), expected {args.rows}")
    report(ROOT, "orders", [
        ("landfall orders-loader", "landfall", results["rust"], rss),
        ("psql \\copy + the same statements", "floor", results["floor"], None),
        ("boto3 + psycopg2 copy_expert", "python", results["copy"], None),
        ("boto3 + pandas to_sql", "python", results["to_sql"], None),
    ], {"rows": rows, "bytes": size, "rust_s": f"{results['rust']:.2f}", "floor_s": f"{results['floor']:.2f}",
        "python_copy_s": f"{results['copy']:.2f}", "python_to_sql_s": f"{results['to_sql']:.2f}",
        "vs_floor": f"{results['floor'] / results['rust']:.2f}",
        "speedup_vs_copy": f"{results['copy'] / results['rust']:.1f}", "rss_mb": f"{rss:.1f}"})


if __name__ == "__main__":
    main()
