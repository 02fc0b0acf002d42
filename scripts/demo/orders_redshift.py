"""P3 demo: orders files under transformed/orders/ go through the audit table, the Glue crawler
and one Redshift Data API transaction each (COPY into staging, the procedure, staging emptied,
duplicates removed) into orders_enriched.

Files: A, then B (overlapping A's last 1,000 orders with later order_ts), then A again (the
same bytes), then a file with a bad amount. The final table keeps one
row per order, B's revision where they overlap. Reads the audit table and the crawler from moto,
and the warehouse through the local Data API (the devstack serves it on PostgreSQL).
"""
import os
import subprocess
import sys
import time

import boto3

bucket = os.environ["TRANSFORMED_BUCKET"]
audit_table = os.environ["ORDERS_AUDIT_TABLE"]
crawler = os.environ["ORDERS_CRAWLER"]
dlq = os.environ["ORDERS_FILES_DLQ"]
queue = os.environ["ORDERS_FILES_QUEUE"]
devstack = os.path.join(os.environ["ROOT"], "target", "debug", "devstack")
s3 = boto3.client("s3")
sqs = boto3.client("sqs")
glue = boto3.client("glue")
dynamodb = boto3.client("dynamodb")
# The function's own target (template defaults); locally the devstack's Data API answers.
redshift = boto3.client("redshift-data", endpoint_url=os.environ["LANDFALL_LAMBDA_ENDPOINT"])
TARGET = {"WorkgroupName": "landfall", "Database": "dev"}


def sample(*args):
    return subprocess.run([devstack, "sample", *args], check=True, capture_output=True,
                          text=True).stdout


def sql(statement, parameters=()):
    """One statement through the Data API, waited for; its rows as lists of strings."""
    extra = {"Parameters": list(parameters)} if parameters else {}  # the API refuses an empty list
    sent = redshift.execute_statement(Sql=statement, **TARGET, **extra)
    while (described := redshift.describe_statement(Id=sent["Id"]))["Status"] not in (
            "FINISHED", "FAILED", "ABORTED"):
        time.sleep(0.1)
    if described["Status"] != "FINISHED":
        sys.exit(f"{statement!r}: {described.get('Error')}")
    if not described.get("HasResultSet"):
        return []
    records = redshift.get_statement_result(Id=sent["Id"])["Records"]
    return [[next(iter(field.values())) for field in record] for record in records]


def seed_customers():
    rows = [line.split(",") for line in sample("customers", "100").splitlines()]
    values = ", ".join(f"(:id{i}, :name{i}, :segment{i}, :country{i})" for i in range(len(rows)))
    parameters = [{"name": f"{column}{i}", "value": value}
                  for i, row in enumerate(rows)
                  for column, value in zip(("id", "name", "segment", "country"), row)]
    sql("DELETE FROM customers")
    sql(f"INSERT INTO customers (customer_id, name, segment, country) VALUES {values}", parameters)
    print(f"  customers: {len(rows)} rows seeded through the Data API")


def audit_items(key):
    items = dynamodb.scan(TableName=audit_table)["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()}
            for item in items if item["key"]["S"] == key]


def in_queue():
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def drop(key, body):
    """Puts the file and waits until its notification is handled and its audit items are done."""
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    print(f"  dropped s3://{bucket}/{key} ({len(body):,} bytes, {body.count(chr(10)) - 1:,} rows)")
    deadline = time.time() + 120
    while time.time() < deadline:
        items = audit_items(key)
        if items and all(i["status"] != "RECEIVED" for i in items) and in_queue() == 0:
            return
        time.sleep(0.5)
    sys.exit(f"{key} was not loaded within 120 s: see .devstack/logs/orders-loader.log")


def dead_letters():
    return int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


print("P3 · transformed/orders/ -> SQS -> orders-loader -> audit (DynamoDB) + Glue crawler"
      " + Redshift Data API (COPY -> staging -> orders_load -> orders_dedupe)")
seed_customers()
sql("DELETE FROM orders_enriched")
sql("DELETE FROM orders_ledger")
run = int(time.time())
a = f"transformed/orders/orders-a-{run}.csv"
b = f"transformed/orders/orders-b-{run}.csv"
bad = f"transformed/orders/orders-bad-{run}.csv"
first = sample("orders", "3000")
drop(a, first)
drop(b, sample("orders", "3000", "--first", "2000", "--revision", "1"))
# moto's notifications carry no version id, so locally the loader knows a file by its ETag and
# the same bytes again are a duplicate delivery; in AWS the new version id loads again and
# orders_dedupe keeps one row per order.
print("  the first file again (the same bytes: a second delivery of the same file):")
drop(a, first)
lines = sample("orders", "3").splitlines(keepends=True)
lines[2] = lines[2].replace(",1.01,", ",one pound,")
dead_before = dead_letters()
drop(bad, "".join(lines))

print(f"  audit table {audit_table}:")
for key in (a, b, bad):
    for item in sorted(audit_items(key), key=lambda i: i["received_at"]):
        outcome = (f"staged={item['rows_staged']} loaded={item['rows_loaded']}"
                   f" unknown_customers={item['unknown_customers']} {item['duration_ms']} ms"
                   if item["status"] == "LOADED" else item.get("error_message", ""))
        print(f"    {key.rsplit('/', 1)[1]:<28} v={item['version'][:14]}… {item['status']:<9} {outcome}")
print(f"  dead-letter queue: {dead_letters() - dead_before} new message(s) (the bad file, at once)")

state = glue.get_crawler(Name=crawler)["Crawler"]
print(f"  crawler {crawler}: {state['State']}"
      + (f", last crawl {state['LastCrawl']['Status']}" if "LastCrawl" in state else ""))

print("  orders_enriched by customer segment:")
for segment, orders, distinct, amount in sql(
        "SELECT segment, COUNT(*), COUNT(DISTINCT order_id), SUM(amount) FROM orders_enriched"
        " GROUP BY segment ORDER BY segment"):
    print(f"    {segment:<16} {int(orders):>6,} orders  {int(distinct):>6,} distinct  {float(amount):>12,.2f} GBP")
[[total, distinct, newer]] = sql(
    "SELECT COUNT(*), COUNT(DISTINCT order_id),"
    " SUM(CASE WHEN source_key = :b THEN 1 ELSE 0 END) FROM orders_enriched",
    [{"name": "b", "value": b}])
print(f"  {int(total):,} rows, {int(distinct):,} distinct orders"
      f" ({'no duplicate' if total == distinct else 'DUPLICATES'}); {int(newer):,} from the later file B")
if total != distinct or int(total) != 5000:
    sys.exit("expected 5,000 orders, each once")
