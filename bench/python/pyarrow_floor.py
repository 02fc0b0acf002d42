"""The floor for bench-transform: pyarrow reads each ingestion object (gzip JSON lines) and
writes it as Parquet, with no transform at all."""
import os
import sys
import time

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

source, target = sys.argv[1], sys.argv[2]
os.makedirs(target, exist_ok=True)
started = time.perf_counter()
for name in sorted(os.listdir(source)):
    table = pj.read_json(pa.input_stream(os.path.join(source, name), compression="gzip"))
    pq.write_table(table, os.path.join(target, name.replace(".jsonl.gz", ".parquet")), compression="zstd")
print(time.perf_counter() - started)
