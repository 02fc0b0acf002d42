"""The Python a user would write to load an orders file from S3 into the warehouse, with the
function's own statements (from `bench-orders statements`) in one transaction; only the way
the rows reach staging differs:

  copy     boto3 get_object -> psycopg2 copy_expert of the streamed body (the strong baseline)
  to_sql   boto3 get_object -> pandas.read_csv -> DataFrame.to_sql(method="multi")

Usage: orders_baselines.py copy|to_sql <bucket> <key> <database> <statements json>.
Prints seconds.
"""
import json
import sys
import time

import boto3
import pandas as pd
import sqlalchemy

COPY_TO_STAGING = "COPY orders_staging "


def copy_expert(conn, columns, body):
    with conn.connection.cursor() as cur:
        cur.copy_expert(f"COPY orders_staging {columns} FROM STDIN WITH (FORMAT csv, HEADER true)", body)


def to_sql(conn, columns, body):
    df = pd.read_csv(body, dtype={"amount": str})
    df.to_sql("orders_staging", conn, if_exists="append", index=False, method="multi", chunksize=2000)


def main():
    mode, bucket, key, database, statements_path = sys.argv[1:6]
    bulk = {"copy": copy_expert, "to_sql": to_sql}[mode]
    with open(statements_path) as f:
        statements = json.load(f)
    started = time.perf_counter()
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1/{database}")
    with engine.begin() as conn:
        for statement in statements:
            if statement.startswith(COPY_TO_STAGING):
                bulk(conn, statement[len(COPY_TO_STAGING):statement.index(")") + 1], body)
            else:
                conn.exec_driver_sql(statement)
    print(time.perf_counter() - started)


if __name__ == "__main__":
    main()
