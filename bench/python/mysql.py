"""make bench-mysql: a generated price_index CSV into MariaDB, side by side.

  upsert     the loader's path for an upsert dataset (price_index as bundled): stream -> checker
             -> LOAD DATA LOCAL ... REPLACE straight into the table, with the ledger row, the
             count and warnings checks, one transaction
  procedure  the loader's path for a dataset with a load procedure: the same stream into a
             temporary stage -> count check -> load_price_index (an upsert INSERT ... SELECT)
  floor      the mariadb client's own LOAD DATA LOCAL INFILE of the same file into the same table
  python     pandas read_csv + to_sql(method="multi") over pymysql

Each run starts from empty tables and is checked (row count and SUM(price)) so that a fast
wrong answer cannot count. Reports medians and the loader's peak RSS, for a ~100 MB file
and, unless --no-big, a ~1 GB one (memory must not grow with the file).
"""
import decimal
import os
import random
import statistics
import subprocess
import sys
import tempfile

from benchlib import arguments, report, timed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATABASE = "landfall_bench"
GEOS = [f"Region {i}, {side}" for i in range(40) for side in ("North", "South")]
PRODUCTS = [("Food", "Bread, white sliced", "675 g"), ("Food", "Milk, partly skimmed", "1 L"),
            ("Energy", "Gasoline, regular unleaded", "L"), ("Household", "Toilet tissue", "4 rolls"),
            ("Food", "Coffee, roasted", "340 g"), ("Clothing", "Shoes", "")]


def generate(path, rows, seed=42):
    """Unique (ref_date, geo, product) per row; returns SUM(price) as an exact Decimal."""
    rng = random.Random(seed)
    total = decimal.Decimal(0)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("ref_date,geo,category,product,uom,price\n")
        for i in range(rows):
            category, product, uom = PRODUCTS[i % len(PRODUCTS)]
            cents = rng.randrange(100, 100_000)
            total += decimal.Decimal(cents) / 100
            out.write(f'20{10 + i % 15}-{i % 12 + 1:02d},"{GEOS[(i // 12) % len(GEOS)]}",{category},'
                      f'"{product} ""{i}"", monthly survey",{uom},{cents // 100}.{cents % 100:02d}\n')
    return total


def sql(statement, database=DATABASE):
    args = ["mariadb", "-h", "127.0.0.1", "-u", "root", "-N", "-B"] + ([database] if database else [])
    return subprocess.run(args + ["-e", statement], check=True, capture_output=True, text=True).stdout.strip()


def prepare():
    sql(f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4", None)
    for name in sorted(os.listdir(os.path.join(ROOT, "sql/mysql"))):
        with open(os.path.join(ROOT, "sql/mysql", name)) as script:
            subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", DATABASE], stdin=script, check=True)


def reset():
    sql("TRUNCATE price_index; TRUNCATE price_index_stage; TRUNCATE landfall_load_ledger")


def check(rows, total, name):
    count, price_sum = sql("SELECT COUNT(*), SUM(price) FROM price_index").split("\t")
    if int(count) != rows or decimal.Decimal(price_sum) != total:
        sys.exit(f"{name}: wrong result: {count} rows, SUM(price)={price_sum}; expected {rows}, {total}")


def run(name, command, rows, total):
    reset()
    seconds, rss, _ = timed(command)
    check(rows, total, name)
    return seconds, rss


def main():
    parser = arguments(ROOT, 1_000_000)
    parser.add_argument("--python-runs", type=int, default=1)
    parser.add_argument("--no-big", action="store_true", help="skip the ~1 GB memory check")
    parser.add_argument("--loader", default=os.path.join(ROOT, "target/release/bench-mysql-load"))
    args = parser.parse_args()
    url = f"mysql://root@127.0.0.1:3306/{DATABASE}"
    prepare()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "price_index.csv")
        total = generate(path, args.rows)
        size_mb = os.path.getsize(path) / 1e6
        floor_sql = (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE price_index CHARACTER SET utf8mb4 "
                     "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' IGNORE 1 LINES "
                     "(ref_date, geo, category, product, @uom, price) SET uom = NULLIF(@uom, '')")
        variants = {
            "upsert": ([args.loader, path, url, "upsert"], args.runs),
            "procedure": ([args.loader, path, url, "procedure"], args.runs),
            "floor": (["mariadb", "--local-infile=1", "-h", "127.0.0.1", "-u", "root", DATABASE, "-e", floor_sql], args.runs),
            "python": ([args.python, os.path.join(ROOT, "bench/python/pandas_to_sql.py"), path, url], args.python_runs),
        }
        results = {}
        for name, (command, runs) in variants.items():
            samples = [run(name, command, args.rows, total) for _ in range(runs)]
            results[name] = (statistics.median(s for s, _ in samples), max(r for _, r in samples))
        big_rss = None
        if not args.no_big:
            big = os.path.join(tmp, "price_index_big.csv")
            big_rows = args.rows * 10
            big_total = generate(big, big_rows, seed=43)
            os.remove(path)
            _, big_rss = run("upsert (big)", [args.loader, big, url, "upsert"], big_rows, big_total)
            big_mb = os.path.getsize(big) / 1e6

    print(f"{'path':<10} {'median s':>9} {'rows/s':>11} {'peak RSS MB':>12}")
    for name, (seconds, rss) in results.items():
        print(f"{name:<10} {seconds:>9.2f} {args.rows / seconds:>11,.0f} {rss:>12.1f}")
    print(f"input: {args.rows:,} rows, {size_mb:.0f} MB; checked: row count and SUM(price) after every run")
    if big_rss is not None:
        print(f"upsert peak RSS: {results['upsert'][1]:.1f} MB for {size_mb:.0f} MB, {big_rss:.1f} MB for {big_mb:.0f} MB")
    upsert_s, procedure_s = results["upsert"][0], results["procedure"][0]
    floor_s, python_s = results["floor"][0], results["python"][0]
    figures = {"rows": args.rows, "loader_s": f"{upsert_s:.2f}", "procedure_s": f"{procedure_s:.2f}",
               "floor_s": f"{floor_s:.2f}", "python_s": f"{python_s:.2f}",
               "vs_floor": f"{floor_s / upsert_s:.2f}", "procedure_vs_floor": f"{floor_s / procedure_s:.2f}",
               "speedup_vs_python": f"{python_s / upsert_s:.1f}", "rss_mb": f"{results['upsert'][1]:.1f}"}
    if big_rss is not None:
        figures["rss_mb_big"] = f"{big_rss:.1f}"
    report(ROOT, "mysql", [
        ("landfall upsert (LOAD DATA REPLACE into the table)", "landfall", upsert_s, results["upsert"][1]),
        ("landfall procedure (stage + upsert procedure)", "landfall", procedure_s, results["procedure"][1]),
        ("mariadb LOAD DATA LOCAL into the table", "floor", floor_s, None),
        ("pandas to_sql over pymysql", "python", python_s, results["python"][1]),
    ], figures)
    sql(f"DROP DATABASE IF EXISTS {DATABASE}", None)


if __name__ == "__main__":
    main()
