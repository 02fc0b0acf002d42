"""The Python baseline for make bench-mysql: what a user writes today."""
import sys
import time

import pandas as pd
from sqlalchemy import create_engine

path, url = sys.argv[1], sys.argv[2]
started = time.perf_counter()
frame = pd.read_csv(path, dtype={"ref_date": str, "geo": str, "category": str, "product": str, "uom": str},
                    keep_default_na=False, na_values={"uom": [""]})
engine = create_engine(url.replace("mysql://", "mysql+pymysql://"))
frame.to_sql("price_index", engine, if_exists="append", index=False, method="multi", chunksize=1000)
print(f"rows={len(frame)} seconds={time.perf_counter() - started:.3f}")
