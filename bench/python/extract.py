"""make bench-extract: a 2M-row sales_order table with 10% changed since the watermark, to
gzipped JSON lines, three ways side by side.

  rust    the project's path: landfall_extract::Extractor (lock, SSM state, snapshot,
          server-rendered JSON, gzip, upload to S3 — moto here)
  floor   psql \\copy (SELECT row_to_json(t) ... WHERE last_updated > watermark) | gzip
  python  psycopg2 + pandas read_sql + to_json(lines=True) + gzip

Every output is checked: row count and the sum of sales_order_id must match the source.
Medians of several runs; the Rust path's peak RSS is shown for 10% and for 100% of the rows.
"""
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchlib import arguments, moto, report, timed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATABASE = "totesys_bench"
WATERMARK = "2025-01-01T00:00:00.000"
PG = dict(os.environ, PGHOST="127.0.0.1", PGUSER=os.environ.get("PGUSER", "postgres"))


def psql(sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", DATABASE, "-c", sql],
                          check=True, capture_output=True, text=True, env=PG).stdout.strip()


def check_file(path, name, expected):
    rows, id_sum = 0, 0
    with gzip.open(path, "rt") as lines:
        for line in lines:
            rows += 1
            id_sum += int(json.loads(line)["sales_order_id"])
    if (rows, id_sum) != expected:
        sys.exit(f"{name}: wrong result {rows} rows, id sum {id_sum}; expected {expected}")


def main():
    parser = arguments(ROOT, 2_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database for the next run")
    args = parser.parse_args()
    existing = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", DATABASE, "-c", "SELECT COUNT(*) FROM sales_order"],
                              capture_output=True, text=True, env=PG).stdout.strip()
    if existing != str(args.rows):
        print(f"seeding {DATABASE} with {args.rows:,} sales orders ...", file=sys.stderr)
        subprocess.run([os.path.join(ROOT, "target/release/totesys"), "--database", DATABASE, "seed",
                        "--sales-orders", str(args.rows), "--purchase-orders", "10"], check=True, env=PG,
                       stdout=subprocess.DEVNULL)
    psql("UPDATE sales_order SET last_updated = TIMESTAMP '2025-06-01' + (sales_order_id % 86400) * interval '1 second' "
         "WHERE sales_order_id % 10 = 0")
    psql("VACUUM ANALYZE sales_order")
    count, id_sum = psql(f"SELECT COUNT(*), SUM(sales_order_id) FROM sales_order WHERE last_updated > '{WATERMARK}'").split("|")
    expected = (int(count), int(id_sum))
    all_rows = psql("SELECT COUNT(*) FROM sales_order")

    rust = os.path.join(ROOT, "target/release/bench-extract")
    results = {}
    try:
        with moto(ROOT) as aws, tempfile.TemporaryDirectory() as tmp:
            samples = []
            for _ in range(args.runs):
                _, _, out = timed([rust, DATABASE, "sales_order", "sales_order_id", WATERMARK], env=aws)
                answer = json.loads(out)
                rss = answer["peak_rss_mb"]
                if (answer["rows"], answer["id_sum"]) != expected:
                    sys.exit(f"rust: wrong result {answer}; expected {expected}")
                samples.append((answer["seconds"], rss))
            results["rust"] = (statistics.median(s for s, _ in samples), max(r for _, r in samples))
            _, _, out = timed([rust, DATABASE, "sales_order", "sales_order_id", "2000-01-01T00:00:00.000"], env=aws)
            if json.loads(out)["rows"] != int(all_rows):
                sys.exit(f"rust (all rows): wrong row count {out}")
            rss_all = json.loads(out)["peak_rss_mb"]

            floor_out = os.path.join(tmp, "floor.jsonl.gz")
            floor = (f"set -o pipefail; psql -X -q -d {DATABASE} -c \"\\copy (SELECT row_to_json(t) FROM sales_order t "
                     f"WHERE last_updated > '{WATERMARK}') TO STDOUT\" | gzip > {floor_out}")
            samples = [timed(floor, env=PG, shell=True)[:2] for _ in range(args.runs)]
            check_file(floor_out, "floor", expected)
            results["floor"] = (statistics.median(s for s, _ in samples), max(r for _, r in samples))

            python_out = os.path.join(tmp, "python.jsonl.gz")
            command = [args.python, os.path.join(ROOT, "bench/python/pandas_extract.py"), DATABASE, WATERMARK, python_out]
            samples = [timed(command, env=PG)[:2] for _ in range(args.runs)]
            check_file(python_out, "python", expected)
            results["python"] = (statistics.median(s for s, _ in samples), max(r for _, r in samples))
    finally:
        if not args.keep:
            subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"],
                           env=PG, check=False)

    print(f"{'path':<8} {'median s':>9} {'rows/s':>11} {'peak RSS MB':>12}")
    for name, (seconds, rss) in results.items():
        print(f"{name:<8} {seconds:>9.2f} {expected[0] / seconds:>11,.0f} {rss:>12.1f}")
    print(f"input: {int(all_rows):,} rows, {expected[0]:,} changed since the watermark; "
          f"checked: row count and SUM(sales_order_id) of every output")
    print(f"rust peak RSS: {results['rust'][1]:.1f} MB for {expected[0]:,} rows, {rss_all:.1f} MB for {int(all_rows):,} rows")
    rust_s, floor_s, python_s = results["rust"][0], results["floor"][0], results["python"][0]
    report(ROOT, "extract", [
        ("landfall db-extract", "landfall", rust_s, results["rust"][1]),
        ("psql \\copy row_to_json | gzip", "floor", floor_s, results["floor"][1]),
        ("pandas read_sql + to_json + gzip", "python", python_s, results["python"][1]),
    ], {"rows": expected[0], "rust_s": f"{rust_s:.2f}", "floor_s": f"{floor_s:.2f}", "python_s": f"{python_s:.2f}",
        "vs_floor": f"{floor_s / rust_s:.2f}", "speedup_vs_python": f"{python_s / rust_s:.1f}",
        "rss_mb": f"{results['rust'][1]:.1f}", "rss_mb_all_rows": f"{rss_all:.1f}"})


if __name__ == "__main__":
    main()
