"""P4 demo, part 3: ready manifests -> warehouse-loader -> the PostgreSQL warehouse.

Fires warehouse-loader's schedule for the second cycle (the churn's changes), then shows the
warehouse: the row count of every table, a BI query (units sold and value by month and
currency), and the pipeline lag the loader measured (now minus the time up to which every
totesys change is visible in the warehouse).
"""
import json
import os
import subprocess

root = os.environ.get("ROOT", os.getcwd())
database = os.environ.get("WAREHOUSE_DATABASE", "warehouse")


def sql(query):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-AtF", "\t", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


print()
print("P4 · processed bucket -> warehouse-loader (schedule) -> PostgreSQL warehouse")
out = subprocess.run([f"{root}/target/debug/devstack", "tick", "warehouse-loader"],
                     check=True, capture_output=True, text=True).stdout
report = json.loads(out)
rows = sum(n for m in report["loaded"] for _, n in m["rows"])
print(f"  second cycle: {len(report['loaded'])} manifests, {rows:,} rows written; "
      f"waiting {len(report['waiting'])}, rejected {len(report['rejected'])}")

tables = ["dim_date", "dim_location", "dim_counterparty", "dim_staff", "dim_currency", "dim_design",
          "dim_payment_type", "dim_transaction", "fact_sales_order", "fact_purchase_orders", "fact_payment"]
counts = sql(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables))
print("  rows per table: " + ", ".join(f"{t} {int(n):,}" for t, n in counts))
versions = sql("SELECT count(*) - count(DISTINCT sales_order_id) FROM fact_sales_order")[0][0]
print(f"  fact_sales_order keeps history: {versions} rows are newer versions of an order already there")

print("  units sold and value by month and currency (latest 6 months, current versions):")
bi = sql("""
  WITH latest AS (
    SELECT DISTINCT ON (sales_order_id) * FROM fact_sales_order
    ORDER BY sales_order_id, last_updated_date DESC, last_updated_time DESC)
  SELECT d.year || '-' || lpad(d.month::text, 2, '0'), c.currency_code,
         sum(f.units_sold), sum(f.units_sold * f.unit_price)
  FROM latest f
  JOIN dim_date d ON d.date_id = f.created_date
  JOIN dim_currency c USING (currency_id)
  GROUP BY 1, 2 ORDER BY 1 DESC, 2 LIMIT 6""")
for month, currency, units, value in bi:
    print(f"    {month}  {currency}  {int(units):>10,} units  {float(value):>16,.2f}")

tables_lag = [t for t in report["freshness"]["tables"] if t["lag_seconds"] is not None]
stalest = max(tables_lag, key=lambda t: t["lag_seconds"])
print(f"  pipeline lag: {stalest['lag_seconds']:.1f} s (stalest table: {stalest['table']}, "
      f"visible through {stalest['visible_through']}); the alarm fires above 1800 s")
