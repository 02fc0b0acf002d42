-- The totesys star schema on Amazon Redshift, for a warehouse that outgrew one PostgreSQL
-- (WarehouseEngine=redshift): the same tables and columns as ../warehouse/0001_star_schema.sql,
-- in the SQL Redshift and PostgreSQL both run (the local stack's Data API runs it on
-- PostgreSQL). Redshift enforces no key, so none is declared: the loader keeps one row per
-- dimension key and per fact source version itself, and checks each fact file's references
-- by set. Record ids are the loader's (the table's highest plus one, under the ledger's
-- lock): gapless, as on PostgreSQL. TIME keeps Redshift's microseconds; the files carry
-- milliseconds.

CREATE TABLE IF NOT EXISTS dim_date (
  date_id      DATE NOT NULL,
  year         INTEGER NOT NULL,
  month        INTEGER NOT NULL,
  day          INTEGER NOT NULL,
  day_of_week  INTEGER NOT NULL,
  day_name     VARCHAR(16) NOT NULL,
  month_name   VARCHAR(16) NOT NULL,
  quarter      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_staff (
  staff_id         INTEGER NOT NULL,
  first_name       VARCHAR(256) NOT NULL,
  last_name        VARCHAR(256) NOT NULL,
  department_name  VARCHAR(256) NOT NULL,
  location         VARCHAR(256) NOT NULL,
  email_address    VARCHAR(512) NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_location (
  location_id     INTEGER NOT NULL,
  address_line_1  VARCHAR(512) NOT NULL,
  address_line_2  VARCHAR(512),
  district        VARCHAR(256),
  city            VARCHAR(256) NOT NULL,
  postal_code     VARCHAR(64) NOT NULL,
  country         VARCHAR(256) NOT NULL,
  phone           VARCHAR(64) NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_currency (
  currency_id    INTEGER NOT NULL,
  currency_code  VARCHAR(3) NOT NULL,
  currency_name  VARCHAR(256) NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_design (
  design_id      INTEGER NOT NULL,
  design_name    VARCHAR(512) NOT NULL,
  file_location  VARCHAR(1024) NOT NULL,
  file_name      VARCHAR(1024) NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_counterparty (
  counterparty_id                    INTEGER NOT NULL,
  counterparty_legal_name            VARCHAR(512) NOT NULL,
  counterparty_legal_address_line_1  VARCHAR(512) NOT NULL,
  counterparty_legal_address_line_2  VARCHAR(512),
  counterparty_legal_district        VARCHAR(256),
  counterparty_legal_city            VARCHAR(256) NOT NULL,
  counterparty_legal_postal_code     VARCHAR(64) NOT NULL,
  counterparty_legal_country         VARCHAR(256) NOT NULL,
  counterparty_legal_phone_number    VARCHAR(64) NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_payment_type (
  payment_type_id    INTEGER NOT NULL,
  payment_type_name  VARCHAR(256) NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_transaction (
  transaction_id     INTEGER NOT NULL,
  transaction_type   VARCHAR(64) NOT NULL,
  sales_order_id     INTEGER,
  purchase_order_id  INTEGER
);

CREATE TABLE IF NOT EXISTS fact_sales_order (
  sales_record_id              INTEGER NOT NULL,
  sales_order_id               INTEGER NOT NULL,
  created_date                 DATE NOT NULL,
  created_time                 TIME NOT NULL,
  last_updated_date            DATE NOT NULL,
  last_updated_time            TIME NOT NULL,
  sales_staff_id               INTEGER NOT NULL,
  counterparty_id              INTEGER NOT NULL,
  units_sold                   INTEGER NOT NULL,
  unit_price                   DECIMAL(10,2) NOT NULL,
  currency_id                  INTEGER NOT NULL,
  design_id                    INTEGER NOT NULL,
  agreed_payment_date          DATE NOT NULL,
  agreed_delivery_date         DATE NOT NULL,
  agreed_delivery_location_id  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS fact_purchase_orders (
  purchase_record_id           INTEGER NOT NULL,
  purchase_order_id            INTEGER NOT NULL,
  created_date                 DATE NOT NULL,
  created_time                 TIME NOT NULL,
  last_updated_date            DATE NOT NULL,
  last_updated_time            TIME NOT NULL,
  staff_id                     INTEGER NOT NULL,
  counterparty_id              INTEGER NOT NULL,
  item_code                    VARCHAR(256) NOT NULL,
  item_quantity                INTEGER NOT NULL,
  item_unit_price              DECIMAL(10,2) NOT NULL,
  currency_id                  INTEGER NOT NULL,
  agreed_delivery_date         DATE NOT NULL,
  agreed_payment_date          DATE NOT NULL,
  agreed_delivery_location_id  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS fact_payment (
  payment_record_id  INTEGER NOT NULL,
  payment_id         INTEGER NOT NULL,
  created_date       DATE NOT NULL,
  created_time       TIME NOT NULL,
  last_updated_date  DATE NOT NULL,
  last_updated_time  TIME NOT NULL,
  transaction_id     INTEGER NOT NULL,
  counterparty_id    INTEGER NOT NULL,
  payment_amount     DECIMAL(10,2) NOT NULL,
  currency_id        INTEGER NOT NULL,
  payment_type_id    INTEGER NOT NULL,
  paid               BOOLEAN NOT NULL,
  payment_date       DATE NOT NULL
);

-- warehouse-loader's bookkeeping, apart from the star schema BI users query (as on
-- PostgreSQL, 0002_load_bookkeeping.sql).
CREATE SCHEMA IF NOT EXISTS landfall;

-- One row per loaded manifest, written in the load's own transaction (under LOCK of this
-- table, which every load takes first: loads never run side by side).
CREATE TABLE IF NOT EXISTS landfall.load_ledger (
  manifest        VARCHAR(1024) NOT NULL,
  source          VARCHAR(2048) NOT NULL,
  source_version  VARCHAR(1024) NOT NULL,
  source_table    VARCHAR(64) NOT NULL,
  sequence        BIGINT NOT NULL,
  upper_bound     TIMESTAMP,
  row_count       INTEGER NOT NULL,
  loaded_at       TIMESTAMP NOT NULL
);

-- The version of each dimension row now in the warehouse: an older version arriving late
-- changes nothing.
CREATE TABLE IF NOT EXISTS landfall.dim_version (
  dim                  VARCHAR(64) NOT NULL,
  id                   INTEGER NOT NULL,
  source_last_updated  TIMESTAMP NOT NULL,
  joined_last_updated  TIMESTAMP
);

-- What a load found wrong with its files (a row count that is not the manifest's, a
-- reference to a dimension row not loaded yet), written inside the load's transaction and
-- turned into its failure by landfall.raise_problems: the transaction leaves nothing, so
-- this table stays empty.
CREATE TABLE IF NOT EXISTS landfall.load_problems (
  manifest  VARCHAR(1024) NOT NULL,
  problem   VARCHAR(4096) NOT NULL
);

CREATE OR REPLACE PROCEDURE landfall.raise_problems(p_manifest VARCHAR(1024))
AS $$
DECLARE
    found VARCHAR(4096);
BEGIN
    SELECT INTO found min(problem) FROM landfall.load_problems WHERE manifest = p_manifest;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'landfall: %', found;
    END IF;
END;
$$ LANGUAGE plpgsql;
