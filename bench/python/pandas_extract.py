"""The Python a user would write for an incremental extract: psycopg2 + pandas read_sql +
to_json(lines=True) + gzip. Usage: pandas_extract.py <database> <watermark> <out.jsonl.gz>"""
import gzip
import sys

import pandas as pd
import psycopg2

database, watermark, out = sys.argv[1:4]
conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
frame = pd.read_sql("SELECT * FROM sales_order WHERE last_updated > %(w)s", conn, params={"w": watermark})
with gzip.open(out, "wt") as f:
    frame.to_json(f, orient="records", lines=True, date_format="iso", date_unit="ms")
