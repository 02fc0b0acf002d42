"""The Python a user would write for P2's conversion: csv.DictReader, boto3's TypeSerializer for
the DynamoDB types, json.dumps per item, gzip at level 1 — the same items and keys as the Rust path.
Usage: python_dynamodb.py <input.csv> <output dir>; prints the seconds it took."""
import csv
import gzip
import json
import os
import sys
import time
from decimal import Decimal

from boto3.dynamodb.types import TypeSerializer

started = time.perf_counter()
source, target = sys.argv[1], sys.argv[2]
os.makedirs(target, exist_ok=True)
serializer = TypeSerializer()


def key_part(value):
    return value.replace("%", "%25").replace("#", "%23")


with open(source, newline="", encoding="utf-8") as f, \
        gzip.open(os.path.join(target, "part-00000.json.gz"), "wt", compresslevel=1, encoding="utf-8") as out:
    for row in csv.DictReader(f):
        item = {"pk": "#".join(key_part(row[c]) for c in ("ref_date", "geo", "product"))}
        for name, value in row.items():
            if name == "price":
                item[name] = Decimal(value)
            elif name == "uom" and value == "":
                item[name] = None
            else:
                item[name] = value
        typed = {k: serializer.serialize(v) for k, v in item.items()}
        out.write(json.dumps({"Item": typed}) + "\n")
print(time.perf_counter() - started)
