"""P2 demo: a price_index file dropped under dynamodb/ becomes a DynamoDB table through ImportTable.

Then a changed file replaces it: a new table, the pointer (an SSM parameter) moves, the old table
goes (the local stack's grace period is 0 s). Reads DynamoDB, SSM and SES mail from moto.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import boto3

landing = os.environ["LANDING_BUCKET"]
dlq = os.environ["DYNAMODB_FILES_DLQ"]
pointer = "/landfall/dynamodb/price_index"
s3 = boto3.client("s3")
sqs = boto3.client("sqs")
ssm = boto3.client("ssm")
dynamodb = boto3.client("dynamodb")


def price_index_csv(first, last):
    """The tests' sample rows first..last (tools/devstack/src/sample.rs), from the devstack binary."""
    devstack = os.path.join(os.environ["ROOT"], "target", "debug", "devstack")
    text = subprocess.run([devstack, "sample", "price-index", str(last)],
                          check=True, capture_output=True, text=True).stdout
    header, *rows = text.splitlines(keepends=True)
    return header + "".join(rows[first:last])


def emails():
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    state = json.load(urllib.request.urlopen(f"{endpoint}/moto-api/data.json"))
    return state.get("ses", {}).get("Message", [])


def current_table():
    try:
        return ssm.get_parameter(Name=pointer)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def import_file(name, first, last):
    key = f"dynamodb/price_index/{name}-{int(time.time())}.csv"
    body = price_index_csv(first, last)
    before = len(emails())
    s3.put_object(Bucket=landing, Key=key, Body=body.encode())
    print(f"  dropped s3://{landing}/{key} ({len(body):,} bytes, {last - first:,} rows)")
    deadline = time.time() + 300
    while time.time() < deadline:
        mailed = [m for m in emails()[before:] if key in m["subject"]]
        dead = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
                   ["Attributes"]["ApproximateNumberOfMessages"])
        if mailed or dead:
            break
        time.sleep(0.5)
    else:
        sys.exit("the file was not imported within 300 s: see .devstack/logs/dynamodb-loader.log")
    if dead:
        sys.exit("the file went to the dead-letter queue: see .devstack/logs/dynamodb-loader.log")
    print(f"  email to {', '.join(mailed[0]['destinations']['ToAddresses'])}: {mailed[0]['subject']}")


def show_table(month, geo, i):
    table = current_table()
    count = dynamodb.scan(TableName=table, Select="COUNT")["Count"]
    print(f"  pointer {pointer} -> {table}; {count:,} items")
    # How a reader finds an item: the pointer names the table, the natural key names the item.
    key = f"2024-{month:02d}#Region {geo}, North#Item {i}"
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}})["Item"]
    print(f"  item {key}: "
          + ", ".join(f"{k}={list(v.values())[0]}" for k, v in sorted(item.items()) if k != "pk"))
    return table


print("P2 · landing bucket -> SQS -> dynamodb-loader -> gzip DynamoDB JSON -> ImportTable -> pointer (SSM)")
import_file("prices", 0, 2_000)
first = show_table(6, 1, 1001)
print("  a changed file replaces the table (rows 1,000-2,999):")
import_file("prices-changed", 1_000, 3_000)
second = show_table(5, 0, 2500)
tables = [t for t in dynamodb.list_tables()["TableNames"] if t.startswith("landfall-price_index-")]
print(f"  pointer moved {first} -> {second}; {first} "
      + ("deleted (grace period 0 s locally)" if first not in tables else "kept for its grace period"))
