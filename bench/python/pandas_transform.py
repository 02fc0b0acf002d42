"""bench-transform's Python baseline: what a user would write with pandas — read_json(lines=True),
merges for the joined dimensions, timestamps split into date and time, dim_date from the
referenced range, to_parquet per warehouse table."""
import os
import sys
import time

import pandas as pd

CURRENCY_NAMES = {"GBP": "Pound Sterling", "USD": "US Dollar", "EUR": "Euro"}

source, target = sys.argv[1], sys.argv[2]
os.makedirs(target, exist_ok=True)
started = time.perf_counter()


def read(table):
    return pd.read_json(os.path.join(source, f"{table}.jsonl.gz"), lines=True, compression="gzip",
                        dtype={"unit_price": str, "agreed_delivery_date": str, "agreed_payment_date": str})


def out(frame, table):
    frame.to_parquet(os.path.join(target, f"{table}.parquet"), index=False, compression="zstd")


address, department = read("address"), read("department")
location = address.rename(columns={"address_id": "location_id"})[
    ["location_id", "address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone"]]
out(location, "dim_location")
counterparty = read("counterparty").merge(address, left_on="legal_address_id", right_on="address_id")
counterparty = counterparty.rename(columns={
    "address_line_1": "counterparty_legal_address_line_1", "address_line_2": "counterparty_legal_address_line_2",
    "district": "counterparty_legal_district", "city": "counterparty_legal_city",
    "postal_code": "counterparty_legal_postal_code", "country": "counterparty_legal_country",
    "phone": "counterparty_legal_phone_number"})
out(counterparty[["counterparty_id", "counterparty_legal_name", "counterparty_legal_address_line_1",
                  "counterparty_legal_address_line_2", "counterparty_legal_district", "counterparty_legal_city",
                  "counterparty_legal_postal_code", "counterparty_legal_country",
                  "counterparty_legal_phone_number"]], "dim_counterparty")
staff = read("staff").merge(department, on="department_id")
out(staff[["staff_id", "first_name", "last_name", "department_name", "location", "email_address"]], "dim_staff")
currency = read("currency")
currency["currency_name"] = currency["currency_code"].map(CURRENCY_NAMES)
out(currency[["currency_id", "currency_code", "currency_name"]], "dim_currency")
out(read("design")[["design_id", "design_name", "file_location", "file_name"]], "dim_design")

orders = read("sales_order").drop_duplicates(subset=["sales_order_id", "last_updated"])
created, updated = pd.to_datetime(orders["created_at"]), pd.to_datetime(orders["last_updated"])
fact = pd.DataFrame({
    "sales_order_id": orders["sales_order_id"],
    "created_date": created.dt.date, "created_time": created.dt.time,
    "last_updated_date": updated.dt.date, "last_updated_time": updated.dt.time,
    "sales_staff_id": orders["staff_id"], "counterparty_id": orders["counterparty_id"],
    "units_sold": orders["units_sold"], "unit_price": orders["unit_price"].astype(float),
    "currency_id": orders["currency_id"], "design_id": orders["design_id"],
    "agreed_payment_date": pd.to_datetime(orders["agreed_payment_date"]).dt.date,
    "agreed_delivery_date": pd.to_datetime(orders["agreed_delivery_date"]).dt.date,
    "agreed_delivery_location_id": orders["agreed_delivery_location_id"]})
out(fact, "fact_sales_order")

referenced = pd.concat([fact[c] for c in ["created_date", "last_updated_date", "agreed_payment_date",
                                         "agreed_delivery_date"]])
days = pd.date_range(referenced.min(), referenced.max(), freq="D")
out(pd.DataFrame({"date_id": days.date, "year": days.year, "month": days.month, "day": days.day,
                  "day_of_week": days.dayofweek + 1, "day_name": days.day_name(),
                  "month_name": days.month_name(), "quarter": days.quarter}), "dim_date")
print(time.perf_counter() - started)
