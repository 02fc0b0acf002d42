"""P4 demo, part 1: totesys (PostgreSQL) -> db-extract -> gzipped JSON lines in the ingestion bucket.

Seeds the local totesys with the generator, fires db-extract's schedule (dispatcher -> one
worker per table); the objects flow through star-transform on their own (the queue) and
warehouse-loader's schedule is fired once they are ready — the first cycle. Then it churns
the database as the live one does and fires db-extract again: the second run carries only
the changes, under the next sequence id (parts 2 and 3 follow it through).
"""
import gzip
import json
import os
import subprocess
import sys
import time

import boto3

root = os.environ.get("ROOT", os.getcwd())
bucket = os.environ["INGESTION_BUCKET"]
prefix = "/landfall/db-extract"
s3 = boto3.client("s3")
ssm = boto3.client("ssm")
pg_env = dict(os.environ, PGHOST="127.0.0.1", PGUSER=os.environ.get("PGUSER", "postgres"))


def run(*args, env=None):
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)


def states():
    out = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix):
        for p in page["Parameters"]:
            out[p["Name"].rsplit("/", 1)[1]] = p["Value"]
    return out


def tick_and_wait(before):
    run(f"{root}/target/debug/devstack", "tick", "db-extract")
    for _ in range(600):
        now = states()
        if len(now) == 11 and all(now[t] != before.get(t) and '"pending"' not in now[t] for t in now):
            return now
        time.sleep(0.1)
    sys.exit("db-extract workers did not finish: see .devstack/logs/db-extract.log")


def load_when_transformed(count):
    processed = os.environ["PROCESSED_BUCKET"]
    # A fact object transformed before its new dimension's retries after a minute.
    for _ in range(1500):
        listed = s3.list_objects_v2(Bucket=processed, Prefix="ready/").get("KeyCount", 0)
        if listed >= count:
            break
        time.sleep(0.2)
    else:
        sys.exit("objects not transformed: see .devstack/logs/star-transform.log")
    out = subprocess.run([f"{root}/target/debug/devstack", "tick", "warehouse-loader"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def objects():
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[o["Key"]] = gzip.decompress(body).count(b"\n")
    return out


print("P4 · totesys (PostgreSQL) -> db-extract (dispatcher + worker per table) -> ingestion bucket")
warehouse = os.environ.get("WAREHOUSE_DATABASE", "warehouse")
print(f"  note: the local PostgreSQL databases totesys and {warehouse} are dropped and recreated for the demo")
run(f"{root}/target/debug/totesys", "seed", env=pg_env)
# A fresh warehouse to match (warehouse-loader migrates it on its next run).
run("dropdb", "--if-exists", "--force", warehouse, env=pg_env)
run("createdb", warehouse, env=pg_env)
print("  seeded totesys: 11,175 sales orders, 4,640 purchase orders, 15,815 transactions and payments,")
print("    dated up to 2024-11-14 like the sample data")
first_state = tick_and_wait({})
first = objects()
print(f"  first run: {len(first)} objects, {sum(first.values()):,} rows")
for key, rows in sorted(first.items()):
    print(f"    s3://{bucket}/{key}  {rows:,} rows")
report = load_when_transformed(len(first))
rows = sum(n for m in report["loaded"] for _, n in m["rows"])
print(f"  transformed and loaded (first cycle): {len(report['loaded'])} manifests, {rows:,} warehouse rows")
time.sleep(2)
run(f"{root}/target/debug/totesys", "churn", "--seed", "11", env=pg_env)
print("  churned: 25 new sales orders (+ transactions, payments), 6 updates")
print(f"    dated today ({time.strftime('%Y-%m-%d')}, the database clock), so the warehouse jumps from 2024-11 to now")
time.sleep(2.5)  # the local settle window (ExtractSettleSeconds=2)
tick_and_wait(first_state)
second = {k: v for k, v in objects().items() if k not in first}
print(f"  second run: only the changes, next sequence id ({len(second)} objects)")
for key, rows in sorted(second.items()):
    print(f"    s3://{bucket}/{key}  {rows:,} rows")
