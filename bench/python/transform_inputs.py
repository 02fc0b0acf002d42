"""Generated ingestion objects for `make bench-transform`: the dimension tables a sales order
refers to and N sales orders, as gzip JSON lines in db-extract's exact format (integers as
numbers, numerics as strings, timestamps ISO-8601 with milliseconds, NULL as null)."""
import datetime
import gzip
import json
import os
import random

BASE = datetime.datetime(2022, 11, 3, 14, 20, 49, 962000)


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def write(directory, table, rows):
    with gzip.open(os.path.join(directory, f"{table}.jsonl.gz"), "wt", compresslevel=1) as out:
        for row in rows:
            out.write(json.dumps(row, separators=(", ", " : ")))
            out.write("\n")


def generate(directory, orders, seed=7, first_id=1):
    """The dimension tables and `orders` sales orders, ids from `first_id` (another object of
    the same tables: the same dimension rows, new orders)."""
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    at = stamp(BASE)
    write(directory, "address", ({
        "address_id": i, "address_line_1": f"{i} Erdman Street",
        "address_line_2": None if i % 3 else f"Flat {i}", "district": None if i % 2 else "Avon",
        "city": f"City {i}", "postal_code": f"{10000 + i}", "country": "San Marino",
        "phone": f"6265 95{i:04d}", "created_at": at, "last_updated": at} for i in range(1, 31)))
    write(directory, "department", ({
        "department_id": i, "department_name": f"Department {i}", "location": f"Site {i}",
        "manager": "M", "created_at": at, "last_updated": at} for i in range(1, 9)))
    write(directory, "currency", ({"currency_id": i, "currency_code": code, "created_at": at, "last_updated": at}
                                  for i, code in enumerate(["GBP", "USD", "EUR"], 1)))
    write(directory, "design", ({
        "design_id": i, "created_at": at, "design_name": f"Design {i}", "file_location": "/usr/share/d",
        "file_name": f"d-{i}.json", "last_updated": at} for i in range(1, 1001)))
    write(directory, "counterparty", ({
        "counterparty_id": i, "counterparty_legal_name": f"Counterparty {i}", "legal_address_id": i,
        "commercial_contact": "C", "delivery_contact": "D", "created_at": at, "last_updated": at}
        for i in range(1, 21)))
    write(directory, "staff", ({
        "staff_id": i, "first_name": f"First{i}", "last_name": f"Last{i}", "department_id": 1 + i % 8,
        "email_address": f"s{i}@terrifictotes.com", "created_at": at, "last_updated": at}
        for i in range(1, 21)))

    def order(i):
        created = BASE + datetime.timedelta(seconds=i * 60 + rng.randrange(60), milliseconds=rng.randrange(1000))
        updated = created + datetime.timedelta(minutes=rng.randrange(3) * 7)
        day = created.date()
        return {
            "sales_order_id": i, "created_at": stamp(created), "last_updated": stamp(updated),
            "design_id": rng.randint(1, 1000), "staff_id": rng.randint(1, 20), "counterparty_id": rng.randint(1, 20),
            "units_sold": rng.randint(1000, 100000), "unit_price": f"{rng.randint(200, 400) / 100:.2f}",
            "currency_id": rng.randint(1, 3),
            "agreed_delivery_date": (day + datetime.timedelta(days=rng.randint(1, 10))).isoformat(),
            "agreed_payment_date": (day + datetime.timedelta(days=rng.randint(1, 10))).isoformat(),
            "agreed_delivery_location_id": rng.randint(1, 30)}
    write(directory, "sales_order", (order(i) for i in range(first_id, first_id + orders)))
