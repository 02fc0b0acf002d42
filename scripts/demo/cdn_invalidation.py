"""P5 demo: changes in the website bucket become CloudFront invalidations.

Talks to the local stack the way a user's tooling would (boto3, endpoint from
.devstack/env); the invalidations are made by the real cdn-invalidator binary,
fed by the local SQS event source mapping.
"""
import os
import sys
import time

import boto3

bucket = os.environ["WEBSITE_BUCKET"]
distribution = os.environ["WEBSITE_DISTRIBUTION"]
dlq = os.environ["WEBSITE_CHANGES_DLQ"]
s3 = boto3.client("s3")
cloudfront = boto3.client("cloudfront")
sqs = boto3.client("sqs")


def invalidation_ids():
    listing = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    return [item["Id"] for item in listing.get("Items", [])]


# The queue's event source gathers changes for up to 60 s (MaximumBatchingWindowInSeconds in
# template.yaml) so a site deploy becomes one invalidation; the devstack's poller does the same.
BATCHING_WINDOW = 60


def wait_for_new(before, timeout=BATCHING_WINDOW + 30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        new = [i for i in invalidation_ids() if i not in before]
        if new:
            return new
        time.sleep(0.3)
    sys.exit(f"no invalidation within {timeout}s: see .devstack/logs/cdn-invalidator.log")


def show(ids):
    for invalidation_id in ids:
        batch = cloudfront.get_invalidation(DistributionId=distribution, Id=invalidation_id)[
            "Invalidation"]["InvalidationBatch"]
        paths = batch["Paths"].get("Items", [])
        print(f"  -> invalidation {invalidation_id} on distribution {distribution}: {len(paths)} path(s)")
        for path in sorted(paths):
            print(f"       {path}")


print("P5 · website bucket -> S3 notification -> SQS -> cdn-invalidator -> CloudFront")
pages = ["index.html", "about/team.html", "docs/release notes.html", "café/menü.html"]
before = invalidation_ids()
for key in pages:
    s3.put_object(Bucket=bucket, Key=key, Body=f"<h1>{key}</h1>".encode(), ContentType="text/html")
print(f"  uploaded {len(pages)} pages to s3://{bucket}/ "
      f"(changes are gathered for up to {BATCHING_WINDOW} s into one invalidation)")
show(wait_for_new(before))

before = invalidation_ids()
s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>new home page</h1>", ContentType="text/html")
print("  overwrote index.html")
show(wait_for_new(before))

depth = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
print(f"  dead-letter queue: {depth['Attributes']['ApproximateNumberOfMessages']} message(s)")
