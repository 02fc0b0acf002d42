"""make bench-dynamodb: a generated price_index CSV file -> gzipped DynamoDB JSON (the format
ImportTable reads), three ways side by side.

  rust    dynamodb-loader's conversion path (bench-dynamodb: split, check, encode, key, gzip,
          parts on both cores), into part files instead of S3 objects
  floor   reading the CSV file, and gzip -1 of the very output (pre-built JSON, not timed)
  python  csv.DictReader + boto3's TypeSerializer + json.dumps + gzip level 1

Checked: the Rust and Python outputs hold the same number of items and the same keys (a
checksum over the sorted keys). Peak RSS of the Rust path on the file and on a 10x file.
"""
import gzip
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile

from benchlib import arguments, report, timed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
RUST = os.path.join(ROOT, "target/release/bench-dynamodb")


def generate(path, rows):
    """price_index rows with a distinct natural key each, a quoted delimiter and empty units."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"generating {rows:,} rows into {path} ...", file=sys.stderr)
    with open(path + ".tmp", "w") as f:
        f.write("ref_date,geo,category,product,uom,price\n")
        for i in range(rows):
            uom = "" if i % 10 == 0 else "kilogram (kg)"
            f.write(f'2024-{i % 12 + 1:02d},"Region {i % 5}, North",Food and beverages,'
                    f'"Item {i} #{i % 7}, whole grain",{uom},{i % 50}.{i % 100:02d}\n')
    os.rename(path + ".tmp", path)


def items(directory):
    """Item count and a checksum over the sorted keys of every part in `directory`."""
    keys = []
    for name in sorted(os.listdir(directory)):
        with gzip.open(os.path.join(directory, name), "rt", encoding="utf-8") as f:
            keys.extend(json.loads(line)["Item"]["pk"]["S"] for line in f)
    keys.sort()
    return len(keys), hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def rust(source, target, split):
    shutil.rmtree(target, ignore_errors=True)
    _, _, out = timed([RUST, source, target, str(split)])
    return json.loads(out)


def main():
    parser = arguments(ROOT, 1_000_000)
    parser.add_argument("--split-mb", type=int, default=16)
    args = parser.parse_args()
    split = args.split_mb << 20

    data = os.path.join(ROOT, "target", "bench-dynamodb")
    source = os.path.join(data, f"price_index-{args.rows}.csv")
    big = os.path.join(data, f"price_index-{args.rows * 10}.csv")
    generate(source, args.rows)
    generate(big, args.rows * 10)
    size_mb = os.path.getsize(source) / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        out = {name: os.path.join(tmp, name) for name in ("rust", "python")}
        runs = [rust(source, out["rust"], split) for _ in range(args.runs)]
        rust_s = statistics.median(r["seconds"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        rust_items = items(out["rust"])
        if rust_items[0] != args.rows or runs[0]["rows"] != args.rows:
            sys.exit(f"rust converted {runs[0]['rows']} rows into {rust_items[0]} items, expected {args.rows}")

        # The floor's input: the very JSON the Rust path wrote, uncompressed, built before timing.
        prebuilt = os.path.join(tmp, "prebuilt.json")
        with open(prebuilt, "wb") as f:
            for name in sorted(os.listdir(out["rust"])):
                with gzip.open(os.path.join(out["rust"], name), "rb") as part:
                    shutil.copyfileobj(part, f, 1 << 20)
        floor_s = statistics.median(
            timed(f"cat '{source}' > /dev/null && gzip -1 -c '{prebuilt}' > /dev/null", shell=True)[0]
            for _ in range(args.runs))
        os.remove(prebuilt)

        python_s = float(timed([args.python, os.path.join(HERE, "python_dynamodb.py"), source, out["python"]])[2]
                         .strip().splitlines()[-1])
        python_items = items(out["python"])
        if python_items != rust_items:
            sys.exit(f"python wrote {python_items}, rust {rust_items}: the items differ")
        big_run = rust(big, out["rust"], split)

    print(f"input: {args.rows:,} rows, {size_mb:.0f} MB; rust wrote {runs[0]['parts']} parts, "
          f"{runs[0]['bytes'] / 1e6:.0f} MB gzip")
    print(f"{'path':<8} {'median s':>9} {'rows/s':>11}")
    for name, seconds in (("rust", rust_s), ("floor", floor_s), ("python", python_s)):
        print(f"{name:<8} {seconds:>9.2f} {args.rows / seconds:>11,.0f}")
    print(f"checked: {rust_items[0]:,} items, key checksum {rust_items[1]} equal in rust and python")
    print(f"rust peak RSS: {rss:.1f} MB on {args.rows:,} rows, {big_run['peak_rss_mb']:.1f} MB on "
          f"{args.rows * 10:,} rows (keys beyond 16 MiB spill to the temporary directory)")
    report(ROOT, "dynamodb", [
        ("landfall dynamodb-loader conversion", "landfall", rust_s, rss),
        ("read the CSV + gzip -1 of the output", "floor", floor_s, None),
        ("csv + boto3 TypeSerializer + gzip", "python", python_s, None),
    ], {"rows": args.rows, "rust_s": f"{rust_s:.2f}", "floor_s": f"{floor_s:.2f}", "python_s": f"{python_s:.2f}",
        "vs_floor": f"{floor_s / rust_s:.2f}", "speedup_vs_python": f"{python_s / rust_s:.1f}",
        "rss_mb": f"{rss:.1f}", "rss_mb_big": f"{big_run['peak_rss_mb']:.1f}"})


if __name__ == "__main__":
    main()
