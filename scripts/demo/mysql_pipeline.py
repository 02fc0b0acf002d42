"""P1 demo: a price_index file dropped into the landing bucket ends up in MariaDB.

The file is the tests' sample (`devstack sample price-index`); the pipeline (file-orchestrator -> mysql-loader)
runs on the local stack. Reads MariaDB with the mariadb client and SES mail from moto.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import boto3

landing = os.environ["LANDING_BUCKET"]
archive = os.environ["ARCHIVE_BUCKET"]
dlq = os.environ["MYSQL_FILES_DLQ"]
database = os.environ.get("MYSQL_DATABASE", "landfall")
s3 = boto3.client("s3")
sqs = boto3.client("sqs")


def price_index_csv(rows):
    """The tests' sample file (tools/devstack/src/sample.rs), from the devstack binary."""
    devstack = os.path.join(os.environ["ROOT"], "target", "debug", "devstack")
    return subprocess.run([devstack, "sample", "price-index", str(rows)],
                          check=True, capture_output=True, text=True).stdout


def mariadb(sql):
    out = subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-N", "-B", database, "-e", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def emails():
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    state = json.load(urllib.request.urlopen(f"{endpoint}/moto-api/data.json"))
    return state.get("ses", {}).get("Message", [])


print("P1 · landing bucket -> SQS -> file-orchestrator -> mysql-loader -> MariaDB -> archive -> email")
key = f"mysql/price_index/demo-{int(time.time())}.csv"
body = price_index_csv(20_000)
mails_before = len(emails())
s3.put_object(Bucket=landing, Key=key, Body=body.encode())
print(f"  dropped s3://{landing}/{key} ({len(body):,} bytes, 20,000 rows)")

deadline = time.time() + 300
name = key.rsplit("/", 1)[1]
# The outcome email is the orchestrator's last step: archived, reported and exported by then.
while time.time() < deadline:
    mailed = [m for m in emails()[mails_before:] if key in m["subject"]]
    dead = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])
    if mailed or dead:
        break
    time.sleep(0.5)
else:
    sys.exit("the file was not processed within 300 s: see .devstack/logs/file-orchestrator.log")
if dead:
    sys.exit("the file went to the dead-letter queue: see .devstack/logs/file-orchestrator.log")
archived = [o["Key"] for o in s3.list_objects_v2(Bucket=archive, Prefix="price_index/").get("Contents", [])
            if o["Key"].endswith(name)]

print(f"  rows in price_index: {mariadb('SELECT COUNT(*) FROM price_index')}")
print(f"  ledger: {mariadb('SELECT object_key, parts, rows_loaded FROM landfall_load_ledger ORDER BY loaded_at DESC LIMIT 1')}")
print(f"  archived to s3://{archive}/{archived[0]}")
print("  report (average price by year, month, geo, category), first rows:")
for line in mariadb("SELECT year, month, geo, category, avg_price FROM price_index_report "
                    "ORDER BY year, month, geo, category LIMIT 3").splitlines():
    print(f"       {line.replace(chr(9), ' | ')}")
reports = os.environ["REPORTS_BUCKET"]
exported = s3.list_objects_v2(Bucket=reports, Prefix="price_index/").get("Contents", [])
latest = max(exported, key=lambda o: o["LastModified"]) if exported else None
if latest:
    print(f"  report exported to s3://{reports}/{latest['Key']} ({latest['Size']:,} bytes)")
for mail in emails()[mails_before:]:
    print(f"  email to {', '.join(mail['destinations']['ToAddresses'])}: {mail['subject']}")
