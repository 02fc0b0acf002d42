"""bench-transform's second Python reference: the same transform as pandas_transform.py with
polars (lazy-free, eager frames; gzip is decompressed first, as read_ndjson takes plain bytes)."""
import gzip
import os
import sys
import time

import polars as pl

CURRENCY_NAMES = {"GBP": "Pound Sterling", "USD": "US Dollar", "EUR": "Euro"}

source, target = sys.argv[1], sys.argv[2]
os.makedirs(target, exist_ok=True)
started = time.perf_counter()


def read(table):
    with open(os.path.join(source, f"{table}.jsonl.gz"), "rb") as f:
        return pl.read_ndjson(gzip.decompress(f.read()))


def out(frame, table):
    frame.write_parquet(os.path.join(target, f"{table}.parquet"), compression="zstd")


address, department = read("address"), read("department")
out(address.rename({"address_id": "location_id"}).select(
    "location_id", "address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone"),
    "dim_location")
out(read("counterparty").join(address, left_on="legal_address_id", right_on="address_id").select(
    "counterparty_id", "counterparty_legal_name",
    pl.col("address_line_1").alias("counterparty_legal_address_line_1"),
    pl.col("address_line_2").alias("counterparty_legal_address_line_2"),
    pl.col("district").alias("counterparty_legal_district"), pl.col("city").alias("counterparty_legal_city"),
    pl.col("postal_code").alias("counterparty_legal_postal_code"),
    pl.col("country").alias("counterparty_legal_country"),
    pl.col("phone").alias("counterparty_legal_phone_number")), "dim_counterparty")
out(read("staff").join(department, on="department_id").select(
    "staff_id", "first_name", "last_name", "department_name", "location", "email_address"), "dim_staff")
out(read("currency").with_columns(currency_name=pl.col("currency_code").replace_strict(CURRENCY_NAMES)).select(
    "currency_id", "currency_code", "currency_name"), "dim_currency")
out(read("design").select("design_id", "design_name", "file_location", "file_name"), "dim_design")

ts = "%Y-%m-%dT%H:%M:%S%.3f"
orders = read("sales_order").unique(subset=["sales_order_id", "last_updated"], keep="first")
created, updated = pl.col("created_at").str.to_datetime(ts), pl.col("last_updated").str.to_datetime(ts)
fact = orders.select(
    "sales_order_id",
    created.dt.date().alias("created_date"), created.dt.time().alias("created_time"),
    updated.dt.date().alias("last_updated_date"), updated.dt.time().alias("last_updated_time"),
    pl.col("staff_id").alias("sales_staff_id"), "counterparty_id", "units_sold",
    pl.col("unit_price").cast(pl.Decimal(10, 2)), "currency_id", "design_id",
    pl.col("agreed_payment_date").str.to_date(), pl.col("agreed_delivery_date").str.to_date(),
    "agreed_delivery_location_id")
out(fact, "fact_sales_order")

dates = pl.concat([fact[c] for c in ["created_date", "last_updated_date", "agreed_payment_date",
                                    "agreed_delivery_date"]])
days = pl.date_range(dates.min(), dates.max(), "1d", eager=True).alias("date_id")
out(pl.DataFrame(days).select(
    "date_id", pl.col("date_id").dt.year().alias("year"), pl.col("date_id").dt.month().alias("month"),
    pl.col("date_id").dt.day().alias("day"), pl.col("date_id").dt.weekday().alias("day_of_week"),
    pl.col("date_id").dt.strftime("%A").alias("day_name"), pl.col("date_id").dt.strftime("%B").alias("month_name"),
    pl.col("date_id").dt.quarter().alias("quarter")), "dim_date")
print(time.perf_counter() - started)
