"""bench-transform's output files, grouped as the loader's manifests (one per source table)."""
import os

SOURCES = ["address", "department", "currency", "design", "payment_type", "counterparty", "staff",
           "transaction", "sales_order", "purchase_order", "payment"]
TABLES = ["dim_date", "dim_location", "dim_counterparty", "dim_staff", "dim_currency", "dim_design",
          "dim_payment_type", "dim_transaction", "fact_sales_order", "fact_purchase_orders", "fact_payment"]


def files_of(directory, source):
    """[(warehouse table, path)] of one source table's object, in load order."""
    out = []
    for table in TABLES:
        path = os.path.join(directory, f"{table}-{source}.parquet")
        if os.path.exists(path):
            out.append((table, path))
    return out
