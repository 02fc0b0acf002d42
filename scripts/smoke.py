"""make smoke: one acceptance run against a landfall stack, deployed or local.

    smoke.py --stack NAME --region REGION

The stack's outputs come from CloudFormation (DescribeStacks), the credentials and endpoints
from the environment, as any AWS tool finds them: a deployed stack with the caller's
credentials, the local stack with .devstack/env (AWS_ENDPOINT_URL). There is no other path.

Each pipeline gets one small input of its own — the `landfall_smoke` datasets of
config/datasets.toml (P1) and config/dynamodb.toml (P2), three `landfall-smoke-` orders of its
own customer (P3), and a `landfall-smoke/` object in the website bucket (P5); P4's extract is
fired once, as its schedule fires it — and the run waits, with progress, for each outcome AWS
can show it: rows in the target (read back through the stack's own exports, or Redshift's Data
API), the archive, the email (the function's "email sent" line in CloudWatch Logs), the audit
item, the warehouse visible through the extract's watermark, the invalidation. It prints one
line per pipeline with its latency, fails naming the pipeline and the step that did not happen,
and removes what it added, whatever happened. It writes only its own rows and objects.
"""
import argparse
import csv
import io
import json
import secrets
import sys
import threading
import time
from datetime import datetime, timezone

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SMOKE = "landfall_smoke"
# How long each step may take: an email or an archive follows its load within seconds; the
# website queue gathers changes for up to 60 s before one invalidation (template.yaml).
STEP_SECONDS = 300


class Missing(Exception):
    """A step that did not happen in time."""

    def __init__(self, step, hint):
        super().__init__(f"{step}: {hint}")
        self.step = step


class Pipeline:
    """One pipeline's run: `start` drops its input, `steps` are waited for in order, `clean`
    removes what the run added. The AWS clients are the run's (`self.smoke`)."""

    name = ""
    # Why this stack has nothing of the pipeline to run (set by `start`), or None.
    skipped = None

    def __init__(self, smoke):
        self.smoke = smoke
        self.out = smoke.outputs
        self.run = smoke.run
        self.created = []  # (bucket, key) of every object the run found or put
        self.detail = []

    def wait(self, step, check, hint, seconds=STEP_SECONDS, every=1):
        started = time.monotonic()
        reported = started
        while True:
            found = check()
            if found:
                self.smoke.say(f"{self.name}: {step} ({time.monotonic() - started:.1f} s)")
                return found
            now = time.monotonic()
            if now - started > seconds:
                raise Missing(step, hint)
            if now - reported >= 15:
                self.smoke.say(f"{self.name}: waiting for {step} ({now - started:.0f} s)")
                reported = now
            time.sleep(every)

    # --- helpers every pipeline uses ---------------------------------------------------------

    def put(self, bucket, key, body, content_type="text/csv"):
        self.smoke.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        self.created.append((bucket, key))

    def new_objects(self, bucket, prefix):
        """Objects under `prefix` written since the run started."""
        pages = self.smoke.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", [])
                if o["LastModified"] >= self.smoke.started_at]

    def keep(self, bucket, objects):
        self.created.extend((bucket, o["Key"]) for o in objects)
        return objects

    def archived(self, folder, file):
        found = [o for o in self.new_objects(self.out["ArchiveBucketName"], f"{folder}/")
                 if o["Key"].endswith(f"/{file}")]
        return self.keep(self.out["ArchiveBucketName"], found)

    def emailed(self, function_output):
        """The function's `email sent` line about this run, from CloudWatch Logs."""
        group = f"/aws/lambda/{self.out[function_output]}"
        try:
            events = self.smoke.logs.filter_log_events(
                logGroupName=group, startTime=int(self.smoke.started_at.timestamp() * 1000),
                # Terms, all of which must appear (CloudWatch Logs, "Filter pattern syntax").
                filterPattern=f"email sent {self.run}")["events"]
        except ClientError as err:
            if err.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        return events

    def claimed_notices(self, folder):
        return self.keep(self.out["ArchiveBucketName"],
                         self.new_objects(self.out["ArchiveBucketName"], f"notices/{folder}/"))

    def clean(self):
        s3 = self.smoke.s3
        for bucket, key in self.created:
            # Every version: a versioned bucket keeps the object's data under a delete marker.
            versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
            doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                      for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
                      if v["Key"] == key]
            if doomed:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})


def smoke_csv(run):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["slot", "run", "note"])
    for slot, note in ((1, "first"), (2, "second"), (3, "third")):
        writer.writerow([slot, run, note])
    return out.getvalue().encode()


class Mysql(Pipeline):
    """P1: landing → file-orchestrator → mysql-loader → MySQL → archive → reports → email."""

    name = "P1 mysql"

    def start(self):
        self.file = f"{self.run}-mysql.csv"
        self.put(self.out["LandingBucketName"], f"mysql/{SMOKE}/{self.file}", smoke_csv(self.run))

    def steps(self):
        hint = (f"see the DLQ {self.out['MysqlFilesDLQUrl']} and the log of "
                f"{self.out['FileOrchestratorFunctionName']}")
        self.wait("rows loaded (the reporter's export of the table holds the run's 3 rows)",
                  self.reported, hint)
        self.wait("archived", lambda: self.archived(SMOKE, self.file), hint)
        self.wait("email sent", lambda: self.emailed("FileOrchestratorFunctionName"), hint)
        self.claimed_notices(SMOKE)
        self.detail.append("3 rows loaded, exported, archived, emailed")

    def reported(self):
        bucket = self.out["ReportsBucketName"]
        for export in self.new_objects(bucket, f"{SMOKE}/{SMOKE}/"):
            self.keep(bucket, [export])
            text = self.smoke.s3.get_object(Bucket=bucket, Key=export["Key"])["Body"].read().decode()
            if sum(self.run in line for line in text.splitlines()) == 3:
                return True
        return False


class Dynamodb(Pipeline):
    """P2: landing → dynamodb-loader → ImportTable → pointer switched → archive → email."""

    name = "P2 dynamodb"

    def start(self):
        self.file = f"{self.run}-dynamodb.csv"
        self.pointer = f"{self.out['DynamodbPointerPrefix']}/{SMOKE}"
        self.table = None
        self.put(self.out["LandingBucketName"], f"dynamodb/{SMOKE}/{self.file}", smoke_csv(self.run))

    def steps(self):
        hint = (f"see the DLQ {self.out['DynamodbFilesDLQUrl']} and the log of "
                f"{self.out['DynamodbLoaderFunctionName']}")
        self.wait("imported (the pointer names a table holding the run's 3 items)", self.imported, hint)
        self.wait("archived", lambda: self.archived(f"dynamodb/{SMOKE}", self.file), hint)
        self.wait("email sent", lambda: self.emailed("DynamodbLoaderFunctionName"), hint)
        self.claimed_notices(f"dynamodb/{SMOKE}")
        self.detail.append(f"3 items in {self.table}, archived, emailed")

    def imported(self):
        try:
            table = self.smoke.ssm.get_parameter(Name=self.pointer)["Parameter"]["Value"]
            items = self.smoke.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        except ClientError as err:
            if err.response["Error"]["Code"] in ("ParameterNotFound", "ResourceNotFoundException"):
                return False
            raise
        if sum(item.get("run", {}).get("S") == self.run for item in items) == 3:
            self.table = table
            return True
        return False

    def clean(self):
        # The converted files ImportTable read (a lifecycle rule would expire them in 7 days).
        self.keep(self.out["LandingBucketName"],
                  self.new_objects(self.out["LandingBucketName"], f"imports/{SMOKE}/"))
        super().clean()
        # The smoke's table and its pointer: the next run imports into a new one.
        if self.table:
            try:
                self.smoke.dynamodb.delete_table(TableName=self.table)
            except ClientError as err:
                if err.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
            try:
                self.smoke.ssm.delete_parameter(Name=self.pointer)
            except ClientError as err:
                if err.response["Error"]["Code"] != "ParameterNotFound":
                    raise


class Orders(Pipeline):
    """P3: orders file → orders-loader (audit, crawler, COPY, orders_load) → Redshift."""

    name = "P3 orders"
    # The smoke's own customer: P3 may refuse orders of unknown customers (UnknownCustomers).
    CUSTOMER = "landfall-smoke"

    def start(self):
        out = self.out
        self.target = {"Database": out["OrdersRedshiftDatabase"]}
        if "OrdersRedshiftWorkgroup" in out:
            self.target["WorkgroupName"] = out["OrdersRedshiftWorkgroup"]
        else:
            self.target["ClusterIdentifier"] = out["OrdersRedshiftClusterId"]
        if "OrdersRedshiftSecretArn" in out:
            self.target["SecretArn"] = out["OrdersRedshiftSecretArn"]
        elif "OrdersRedshiftDbUser" in out:
            self.target["DbUser"] = out["OrdersRedshiftDbUser"]
        self.orders = f"landfall-smoke-{self.run}-"
        self.sql("INSERT INTO customers (customer_id, name, segment, country) "
                 "SELECT :customer, 'landfall smoke', 'smoke', 'none' "
                 "WHERE NOT EXISTS (SELECT 1 FROM customers WHERE customer_id = :customer)",
                 customer=self.CUSTOMER)
        self.key = f"transformed/orders/{self.run}-orders.csv"
        body = "order_id,customer_id,order_ts,status,amount,currency\n" + "".join(
            f"{self.orders}{n},{self.CUSTOMER},2026-01-0{n} 00:00:00,placed,{n}.00,GBP\n"
            for n in (1, 2, 3))
        bucket = out["TransformedBucketName"]
        put = self.smoke.s3.put_object(Bucket=bucket, Key=self.key, Body=body.encode(),
                                       ContentType="text/csv")
        self.created.append((bucket, self.key))
        # The audit item's key, as orders-loader names a file version: by the notification's
        # version id, or by the ETag where it carries none (an unversioned bucket's).
        versions = ["etag:" + put["ETag"].strip('"')]
        if put.get("VersionId") not in (None, "", "null"):
            versions.insert(0, put["VersionId"])
        self.audit_files = [f"s3://{bucket}/{self.key}#{version}" for version in versions]

    def steps(self):
        hint = (f"see the DLQ {self.out['OrdersFilesDLQUrl']} and the log of "
                f"{self.out['OrdersLoaderFunctionName']}")
        self.wait("rows in orders_enriched (the run's 3 orders, enriched)", self.loaded, hint)
        self.wait("audited LOADED", self.audited, hint)
        self.detail.append("3 orders in orders_enriched, audited LOADED")

    def loaded(self):
        rows = self.sql("SELECT COUNT(*) FROM orders_enriched WHERE order_id LIKE :orders "
                        "AND customer_name = 'landfall smoke'", orders=self.orders + "%")
        return rows[0][0].get("longValue") == 3

    def audited(self):
        for file in self.audit_files:
            item = self.smoke.dynamodb.get_item(TableName=self.out["OrdersAuditTableName"],
                                                Key={"file": {"S": file}}).get("Item")
            if item and item.get("status", {}).get("S") == "LOADED":
                return True
        return False

    def sql(self, statement, **parameters):
        """One statement through the Redshift Data API, waited for; its records."""
        data = self.smoke.redshift_data
        request = dict(self.target, Sql=statement)
        if parameters:
            request["Parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
        statement_id = data.execute_statement(**request)["Id"]
        while True:
            described = data.describe_statement(Id=statement_id)
            if described["Status"] == "FINISHED":
                break
            if described["Status"] in ("FAILED", "ABORTED"):
                raise RuntimeError(f"Redshift: {described.get('Error')} ({statement})")
            time.sleep(0.5)
        if described.get("HasResultSet"):
            return data.get_statement_result(Id=statement_id)["Records"]
        return []

    def clean(self):
        super().clean()
        if not hasattr(self, "audit_files"):
            return  # it stopped before its file landed
        for file in self.audit_files:
            self.smoke.dynamodb.delete_item(TableName=self.out["OrdersAuditTableName"],
                                            Key={"file": {"S": file}})
        self.sql("DELETE FROM orders_enriched WHERE order_id LIKE :orders", orders=self.orders + "%")
        self.sql("DELETE FROM orders_ledger WHERE source_key = :key", key=self.key)
        self.sql("DELETE FROM customers WHERE customer_id = :customer", customer=self.CUSTOMER)


class Totesys(Pipeline):
    """P4: db-extract (fired once, as its schedule fires it) → ingestion → star-transform →
    warehouse-loader → warehouse.

    The source is the user's OLTP database, inside their VPC, read by db-extract's read-only
    user: the smoke can neither reach it nor write to it, so it adds no rows. It fires the
    extract once and waits until the warehouse is visible through the watermark each table's
    run reached: a changed table's rows extracted, transformed and loaded, a quiet table's
    watermark advanced. warehouse-loader is invoked as its schedule would invoke it, so the
    run does not wait for the schedule. Both are what the schedules do anyway: nothing to
    remove afterwards."""

    name = "P4 totesys"

    def start(self):
        if self.out.get("TotesysPipeline") == "disabled":
            self.skipped = "Totesys=disabled: P4 is not deployed"
            return
        self.prefix = self.out["DbExtractStatePrefix"]
        answer = self.invoke("DbExtractFunctionName", {"mode": "dispatch"})
        self.tables = answer["tables"]
        self.rows = 0

    def steps(self):
        hint = (f"see the DLQ {self.out['IngestionDLQUrl']} and the logs of "
                f"{self.out['DbExtractFunctionName']}, {self.out['StarTransformFunctionName']} "
                f"and {self.out['WarehouseLoaderFunctionName']}")
        states = self.wait(f"every table extracted (the {self.tables} tables' states rewritten)",
                           self.extracted, hint)
        # A table that has never had a row has nothing to load (warehouse-loader skips it).
        self.watermarks = {table: state["watermark"] for table, state in states.items()
                           if state["sequence"] > 0}
        # A warehouse-loader run every ten seconds, not every second.
        freshness = self.wait("the warehouse visible through every table's new watermark",
                              self.visible, hint, every=10)
        lag = max((t["lag_seconds"] for t in freshness if t["lag_seconds"] is not None), default=0)
        self.detail.append(f"{self.tables} tables extracted, {self.rows} warehouse rows loaded, "
                           f"visible through {min(self.watermarks.values(), default='-')} "
                           f"(lag {lag:.0f} s)")

    def extracted(self):
        """Each table's state, once every one was rewritten by a finished run since the start."""
        states = {}
        pages = self.smoke.ssm.get_paginator("get_parameters_by_path").paginate(Path=self.prefix)
        for parameter in (p for page in pages for p in page["Parameters"]):
            state = json.loads(parameter["Value"])
            if parameter["LastModifiedDate"] >= self.smoke.started_at and not state.get("pending"):
                states[parameter["Name"].rsplit("/", 1)[1]] = state
        return states if len(states) >= self.tables else None

    def visible(self):
        report = self.invoke("WarehouseLoaderFunctionName", {})
        self.rows += sum(n for manifest in report.get("loaded", []) for _, n in manifest["rows"])
        if report.get("rejected"):
            raise Missing("loaded", f"warehouse-loader rejected {report['rejected']}")
        tables = (report.get("freshness") or {}).get("tables", [])
        through = {t["table"]: t["visible_through"] for t in tables}
        if all((through.get(table) or "") >= mark for table, mark in self.watermarks.items()):
            return tables
        return None

    def invoke(self, function_output, event):
        """The function, invoked and waited for; its answer, or the error it raised."""
        answer = self.smoke.lambda_.invoke(FunctionName=self.out[function_output],
                                           Payload=json.dumps(event).encode())
        body = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            raise RuntimeError(f"{self.out[function_output]} failed: {body}")
        return body


class Website(Pipeline):
    """P5: website bucket → SQS → cdn-invalidator → CloudFront invalidation."""

    name = "P5 website"

    def start(self):
        self.key = f"landfall-smoke/{self.run}.html"
        self.put(self.out["WebsiteBucketName"], self.key,
                 b"<!doctype html><title>landfall smoke</title>", content_type="text/html")

    def steps(self):
        hint = (f"see the DLQ {self.out['WebsiteChangesDLQUrl']} and the log of "
                f"{self.out['CdnInvalidatorFunctionName']}")
        invalidation = self.wait(f"invalidation of /{self.key} created", self.invalidation, hint)
        self.detail.append(f"invalidation {invalidation} of /{self.key}")

    def invalidation(self):
        cloudfront = self.smoke.cloudfront
        distribution = self.out["WebsiteDistributionId"]
        listed = cloudfront.list_invalidations(DistributionId=distribution, MaxItems="25")
        for summary in listed["InvalidationList"].get("Items", []):
            if summary["CreateTime"] < self.smoke.started_at:
                continue
            batch = cloudfront.get_invalidation(DistributionId=distribution, Id=summary["Id"])
            paths = batch["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", [])
            if f"/{self.key}" in paths or "/*" in paths:
                return summary["Id"]
        return None


PIPELINES = (Mysql, Dynamodb, Orders, Totesys, Website)


class Smoke:
    def __init__(self, stack, region):
        session = boto3.Session(region_name=region)
        self.s3 = session.client("s3")
        self.ssm = session.client("ssm")
        self.dynamodb = session.client("dynamodb")
        self.logs = session.client("logs")
        self.cloudfront = session.client("cloudfront")
        self.redshift_data = session.client("redshift-data")
        # A synchronous invoke runs up to 15 minutes: botocore's 60 s read timeout would cut it
        # and invoke the function again.
        self.lambda_ = session.client("lambda", config=Config(read_timeout=900))
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        # Letters and digits only: a CloudWatch Logs filter term needs no quoting then.
        self.run = "smoke" + datetime.now(timezone.utc).strftime("%Y%m%dt%H%M%S") + secrets.token_hex(3)
        # S3's LastModified has whole seconds: a second's margin.
        self.started_at = datetime.fromtimestamp(int(time.time()) - 1, timezone.utc)
        self.lock = threading.Lock()

    def say(self, line):
        with self.lock:
            print(f"  {line}", flush=True)

    def go(self):
        pipelines = [p(self) for p in PIPELINES]
        results = {}

        def run(pipeline):
            began = time.monotonic()
            try:
                pipeline.start()
                if pipeline.skipped:
                    results[pipeline.name] = ("skipped", 0.0, pipeline.skipped)
                    return
                pipeline.steps()
                results[pipeline.name] = ("ok", time.monotonic() - began, "; ".join(pipeline.detail))
            except Missing as missing:
                results[pipeline.name] = ("FAILED", time.monotonic() - began, str(missing))
            except Exception as err:  # an AWS error: named, the other pipelines go on
                results[pipeline.name] = ("FAILED", time.monotonic() - began, f"{type(err).__name__}: {err}")

        print(f"smoke run {self.run}: " + ", ".join(p.name for p in pipelines))
        threads = [threading.Thread(target=run, args=(p,)) for p in pipelines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for pipeline in pipelines:
            try:
                pipeline.clean()
            except Exception as err:
                self.say(f"{pipeline.name}: could not remove everything it added: {err}")
        for pipeline in pipelines:
            status, seconds, detail = results[pipeline.name]
            print(f"smoke: {pipeline.name:<12} {status:<6} {seconds:6.1f} s  {detail}")
        return all(status in ("ok", "skipped") for status, _, _ in results.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    sys.exit(0 if Smoke(args.stack, args.region).go() else 1)


if __name__ == "__main__":
    main()
