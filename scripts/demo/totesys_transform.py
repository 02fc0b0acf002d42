"""P4 demo, part 2: the ingestion objects of part 1 -> star-transform (via the ingestion queue)
-> Parquet per warehouse table and ready manifests in the processed bucket.

Waits until every ingestion object has its ready manifest, then prints, per extract run, the
warehouse rows each table received: the first run builds every dimension and fact; the second
carries only what the churn changed (new fact versions, changed dims and the counterparties
whose address changed).
"""
import collections
import json
import os
import sys
import time

import boto3

ingestion, processed = os.environ["INGESTION_BUCKET"], os.environ["PROCESSED_BUCKET"]
s3 = boto3.client("s3")


def keys(bucket, prefix=""):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return out


print()
print("P4 · ingestion bucket -> SQS -> star-transform -> star schema Parquet (processed bucket)")
sources = keys(ingestion)
for _ in range(1500):  # up to 5 minutes: an object may wait a retry or two for a sibling
    # The first cycle's manifests have been loaded into the warehouse (moved to loaded/).
    # The calendar's days are manifests of their own (ready/calendar/, loaded/calendar/).
    manifests = [k for k in keys(processed, "ready/") + keys(processed, "loaded/")
                 if not k.split("/", 1)[1].startswith("calendar/")]
    if len(manifests) >= len(sources):
        break
    time.sleep(0.2)
else:
    sys.exit(f"{len(manifests)} of {len(sources)} objects transformed: see .devstack/logs/star-transform.log")

by_run = collections.defaultdict(collections.Counter)
for key in manifests:
    manifest = json.loads(s3.get_object(Bucket=processed, Key=key)["Body"].read())
    for output in manifest["outputs"]:
        by_run[manifest["sequence"]][output["table"]] += output["rows"]
for sequence, tables in sorted(by_run.items()):
    label = "first run" if sequence == 1 else f"run {sequence}"
    print(f"  {label}: " + ", ".join(f"{t} {n:,}" for t, n in sorted(tables.items())))
states = {o["Key"]: o["Size"]
          for page in s3.get_paginator("list_objects_v2").paginate(Bucket=processed, Prefix="state/")
          for o in page.get("Contents", [])}
largest = max(states, key=states.get)
print(f"  {len(manifests)} manifests under s3://{processed}/ready/ and loaded/; "
      f"state: {len(states)} objects under s3://{processed}/state/, "
      f"{sum(states.values()) / 1e3:.1f} KB gzip in all, the largest {largest} "
      f"({states[largest] / 1e3:.1f} KB)")
