-- The totesys source schema, as ../shared/spec/totesys_schema.sql specifies it (make totesys-seed applies it).
-- totesys OLTP schema (PostgreSQL), as the source database has it (a Prisma-managed database).
--
-- Notes
--  * Every table has created_at and last_updated: timestamp(3) WITHOUT time zone NOT NULL
--    (created_at DEFAULT CURRENT_TIMESTAMP). last_updated is the incremental-extract cursor.
--  * All integer PKs are SERIAL-style (sequence default), named <table>_id.
--  * Date-like business columns (agreed_*_date, payment_date) are TEXT 'YYYY-MM-DD', not DATE.
--  * Money-ish columns are numeric(10,2) in the real DB (plain NUMERIC in most mocks).
--  * Two Postgres ENUM types exist (Prisma naming, quoted, mixed case).
--  * Quoting: "transaction" is a reserved-ish word; quote it in SQL you generate.

CREATE TYPE "PaymentTypeName" AS ENUM ('SALES_RECEIPT','SALES_REFUND','PURCHASE_PAYMENT','PURCHASE_REFUND');
CREATE TYPE "TransactionType" AS ENUM ('SALE','PURCHASE');

CREATE TABLE address (
  address_id      integer PRIMARY KEY,          -- serial
  address_line_1  text NOT NULL,
  address_line_2  text,                          -- nullable (often NULL)
  district        text,                          -- nullable (often NULL)
  city            text NOT NULL,
  postal_code     text NOT NULL,
  country         text NOT NULL,
  phone           text NOT NULL,
  created_at      timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated    timestamp(3) NOT NULL
);

CREATE TABLE counterparty (
  counterparty_id          integer PRIMARY KEY,
  counterparty_legal_name  text NOT NULL,
  legal_address_id         integer NOT NULL REFERENCES address(address_id),
  commercial_contact       text,
  delivery_contact         text,
  created_at               timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated             timestamp(3) NOT NULL
);

CREATE TABLE currency (
  currency_id    integer PRIMARY KEY,
  currency_code  varchar(3) NOT NULL,            -- real data: GBP(1), USD(2), EUR(3)
  created_at     timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated   timestamp(3) NOT NULL
);

CREATE TABLE department (
  department_id    integer PRIMARY KEY,
  department_name  text NOT NULL,
  location         text,                         -- nullable; note real value 'Leds' (sic) for Dispatch
  manager          text,
  created_at       timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated     timestamp(3) NOT NULL
);

CREATE TABLE design (
  design_id      integer PRIMARY KEY,
  created_at     timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,   -- column order: created_at BEFORE name fields
  design_name    text NOT NULL,
  file_location  text NOT NULL,
  file_name      text NOT NULL,
  last_updated   timestamp(3) NOT NULL                               -- last column
);

CREATE TABLE staff (
  staff_id       integer PRIMARY KEY,
  first_name     text NOT NULL,
  last_name      text NOT NULL,
  department_id  integer NOT NULL REFERENCES department(department_id),
  email_address  text NOT NULL,
  created_at     timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated   timestamp(3) NOT NULL
);

CREATE TABLE sales_order (
  sales_order_id               integer PRIMARY KEY,
  created_at                   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated                 timestamp(3) NOT NULL,
  design_id                    integer NOT NULL REFERENCES design(design_id),
  staff_id                     integer NOT NULL REFERENCES staff(staff_id),
  counterparty_id              integer NOT NULL REFERENCES counterparty(counterparty_id),
  units_sold                   integer NOT NULL,          -- spec note: 1000..100000
  unit_price                   numeric(10,2) NOT NULL,    -- spec note: 2.00..4.00
  currency_id                  integer NOT NULL REFERENCES currency(currency_id),
  agreed_delivery_date         text NOT NULL,             -- 'YYYY-MM-DD'
  agreed_payment_date          text NOT NULL,             -- 'YYYY-MM-DD'
  agreed_delivery_location_id  integer NOT NULL REFERENCES address(address_id)
);

CREATE TABLE purchase_order (
  purchase_order_id            integer PRIMARY KEY,
  created_at                   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated                 timestamp(3) NOT NULL,
  staff_id                     integer NOT NULL REFERENCES staff(staff_id),
  counterparty_id              integer NOT NULL REFERENCES counterparty(counterparty_id),
  item_code                    text NOT NULL,             -- e.g. 'ZDOI5EA'
  item_quantity                integer NOT NULL,
  item_unit_price              numeric(10,2) NOT NULL,
  currency_id                  integer NOT NULL REFERENCES currency(currency_id),
  agreed_delivery_date         text NOT NULL,
  agreed_payment_date          text NOT NULL,
  agreed_delivery_location_id  integer NOT NULL REFERENCES address(address_id)
);

CREATE TABLE payment_type (
  payment_type_id    integer PRIMARY KEY,
  payment_type_name  "PaymentTypeName" NOT NULL,   -- 1 SALES_RECEIPT, 2 SALES_REFUND, 3 PURCHASE_PAYMENT, 4 PURCHASE_REFUND
  created_at         timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated       timestamp(3) NOT NULL
);

CREATE TABLE "transaction" (
  transaction_id     integer PRIMARY KEY,
  transaction_type   "TransactionType" NOT NULL,   -- SALE | PURCHASE
  sales_order_id     integer UNIQUE REFERENCES sales_order(sales_order_id) ON DELETE SET NULL,       -- set iff SALE
  purchase_order_id  integer UNIQUE REFERENCES purchase_order(purchase_order_id) ON DELETE SET NULL, -- set iff PURCHASE
  created_at         timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated       timestamp(3) NOT NULL
);

CREATE TABLE payment (
  payment_id              integer PRIMARY KEY,
  created_at              timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_updated            timestamp(3) NOT NULL,
  transaction_id          integer NOT NULL UNIQUE REFERENCES "transaction"(transaction_id),
  counterparty_id         integer NOT NULL REFERENCES counterparty(counterparty_id),
  payment_amount          numeric(10,2) NOT NULL,
  currency_id             integer NOT NULL REFERENCES currency(currency_id),
  payment_type_id         integer NOT NULL REFERENCES payment_type(payment_type_id),
  paid                    boolean NOT NULL,
  payment_date            text NOT NULL,           -- 'YYYY-MM-DD'
  company_ac_number       integer NOT NULL,        -- dropped by the warehouse model
  counterparty_ac_number  integer NOT NULL         -- dropped by the warehouse model
);
-- FKs in the real dump: ON UPDATE CASCADE ON DELETE RESTRICT everywhere except
-- transaction.{sales,purchase}_order_id (ON DELETE SET NULL). Prisma table _prisma_migrations also exists (ignore it).

-- Typical volumes of the live database (a realistic generator should match their order of magnitude):
--   address 30, counterparty 20, currency 3, department 8, design 472 (ids 1..472),
--   staff 20, payment_type 4, sales_order 11175, purchase_order 4640,
--   transaction 15815 (11175 SALE + 4640 PURCHASE; never both FKs null), payment about one per transaction.
--   sales_order.created_at range 2022-11-03T14:20:52.186 .. 2024-11-14T15:34:09.845; most rows
--   have created_at == last_updated; updates are rare but do happen, several times a day new rows arrive.
