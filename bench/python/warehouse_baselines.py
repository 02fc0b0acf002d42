"""The Python a user would write to load star-transform's Parquet into the warehouse, with
the loader's own stage/merge SQL (from `bench-warehouse sql`), one transaction per source
table with its ledger row — only the bulk path differs:

  copy     pandas.read_parquet -> to_csv -> psycopg2 copy_expert (the strong baseline)
  to_sql   pandas.read_parquet -> DataFrame.to_sql(method="multi") (awswrangler's
           postgresql.to_sql does the same INSERTs through pandas)

Usage: warehouse_baselines.py copy|to_sql <parquet dir> <database> <sql json>. Prints seconds.
"""
import io
import json
import sys
import time

import pandas as pd
import sqlalchemy

from warehouse_files import SOURCES, files_of

LEDGER = ("INSERT INTO landfall.load_ledger (manifest, source, source_version, source_table, sequence, rows) "
          "VALUES (%s, %s, '1', %s, %s, %s)")


def copy_expert(conn, statements, df):
    buffer = io.StringIO()
    df.to_csv(buffer, header=False, index=False)
    buffer.seek(0)
    with conn.connection.cursor() as cur:
        cur.copy_expert(statements["copy"] + " WITH (FORMAT csv)", buffer)


def to_sql(conn, statements, df):
    # The stage is temporary: name the session's own temporary schema, so pandas finds the
    # table and appends to it instead of creating another.
    temp = conn.exec_driver_sql("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()").scalar()
    df.to_sql("landfall_stage", conn, schema=temp, if_exists="append", index=False, method="multi",
              chunksize=2000)


def main():
    mode, directory, database, sql_path = sys.argv[1:5]
    bulk = {"copy": copy_expert, "to_sql": to_sql}[mode]
    with open(sql_path) as f:
        sql = json.load(f)
    started = time.perf_counter()
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1/{database}")
    for sequence, source in enumerate(SOURCES, 1):
        files = files_of(directory, source)
        if not files:
            continue
        with engine.begin() as conn:
            frames = [(table, pd.read_parquet(path, dtype_backend="pyarrow")) for table, path in files]
            conn.exec_driver_sql(LEDGER, (f"ready/{source}.json", f"bench://{source}", source, sequence,
                                          sum(len(df) for _, df in frames)))
            for table, df in frames:
                statements = sql[table]
                conn.exec_driver_sql(statements["create_stage"])
                bulk(conn, statements, df)
                conn.exec_driver_sql(statements["merge"])
                conn.exec_driver_sql(statements["drop_stage"])
    print(time.perf_counter() - started)


if __name__ == "__main__":
    main()
