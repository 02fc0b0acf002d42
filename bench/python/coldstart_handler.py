"""The Python a user deploys for these jobs, as far as a cold start sees it: the imports the
original designs' handlers make (boto3, pandas, pyarrow, pymysql, sqlalchemy) and the clients
they create at module level. It answers an SQS batch with no failures."""
import boto3
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pyarrow.parquet  # noqa: F401
import pymysql  # noqa: F401
import sqlalchemy  # noqa: F401

S3 = boto3.client("s3")


def handler(event, context):
    return {"batchItemFailures": []}
