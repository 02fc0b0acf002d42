-- The totesys warehouse star schema: ../../../shared/spec/warehouse_schema.sql with the
-- project's conventions (spec/README.md): record ids assigned by the warehouse (identity),
-- time(3), numeric(10,2), every fact date and key referencing its dimension.

CREATE TABLE dim_date (
  date_id      date PRIMARY KEY,
  year         integer NOT NULL,
  month        integer NOT NULL,
  day          integer NOT NULL,
  day_of_week  integer NOT NULL,   -- ISO: 1 = Monday .. 7 = Sunday
  day_name     varchar NOT NULL,
  month_name   varchar NOT NULL,
  quarter      integer NOT NULL
);

CREATE TABLE dim_staff (
  staff_id         integer PRIMARY KEY,
  first_name       varchar NOT NULL,
  last_name        varchar NOT NULL,
  department_name  varchar NOT NULL,
  location         varchar NOT NULL,
  email_address    varchar NOT NULL
);

CREATE TABLE dim_location (
  location_id     integer PRIMARY KEY,
  address_line_1  varchar NOT NULL,
  address_line_2  varchar,
  district        varchar,
  city            varchar NOT NULL,
  postal_code     varchar NOT NULL,
  country         varchar NOT NULL,
  phone           varchar NOT NULL
);

CREATE TABLE dim_currency (
  currency_id    integer PRIMARY KEY,
  currency_code  varchar(3) NOT NULL,
  currency_name  varchar NOT NULL
);

CREATE TABLE dim_design (
  design_id      integer PRIMARY KEY,
  design_name    varchar NOT NULL,
  file_location  varchar NOT NULL,
  file_name      varchar NOT NULL
);

CREATE TABLE dim_counterparty (
  counterparty_id                    integer PRIMARY KEY,
  counterparty_legal_name            varchar NOT NULL,
  counterparty_legal_address_line_1  varchar NOT NULL,
  counterparty_legal_address_line_2  varchar,
  counterparty_legal_district        varchar,
  counterparty_legal_city            varchar NOT NULL,
  counterparty_legal_postal_code     varchar NOT NULL,
  counterparty_legal_country         varchar NOT NULL,
  counterparty_legal_phone_number    varchar NOT NULL
);

CREATE TABLE dim_payment_type (
  payment_type_id    integer PRIMARY KEY,
  payment_type_name  varchar NOT NULL
);

CREATE TABLE dim_transaction (
  transaction_id     integer PRIMARY KEY,
  transaction_type   varchar NOT NULL,
  sales_order_id     integer,
  purchase_order_id  integer
);

CREATE TABLE fact_sales_order (
  sales_record_id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sales_order_id               integer NOT NULL,
  created_date                 date NOT NULL REFERENCES dim_date(date_id),
  created_time                 time(3) NOT NULL,
  last_updated_date            date NOT NULL REFERENCES dim_date(date_id),
  last_updated_time            time(3) NOT NULL,
  sales_staff_id               integer NOT NULL REFERENCES dim_staff(staff_id),
  counterparty_id              integer NOT NULL REFERENCES dim_counterparty(counterparty_id),
  units_sold                   integer NOT NULL,
  unit_price                   numeric(10,2) NOT NULL,
  currency_id                  integer NOT NULL REFERENCES dim_currency(currency_id),
  design_id                    integer NOT NULL REFERENCES dim_design(design_id),
  agreed_payment_date          date NOT NULL REFERENCES dim_date(date_id),
  agreed_delivery_date         date NOT NULL REFERENCES dim_date(date_id),
  agreed_delivery_location_id  integer NOT NULL REFERENCES dim_location(location_id)
);

CREATE TABLE fact_purchase_orders (
  purchase_record_id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  purchase_order_id            integer NOT NULL,
  created_date                 date NOT NULL REFERENCES dim_date(date_id),
  created_time                 time(3) NOT NULL,
  last_updated_date            date NOT NULL REFERENCES dim_date(date_id),
  last_updated_time            time(3) NOT NULL,
  staff_id                     integer NOT NULL REFERENCES dim_staff(staff_id),
  counterparty_id              integer NOT NULL REFERENCES dim_counterparty(counterparty_id),
  item_code                    varchar NOT NULL,
  item_quantity                integer NOT NULL,
  item_unit_price              numeric(10,2) NOT NULL,
  currency_id                  integer NOT NULL REFERENCES dim_currency(currency_id),
  agreed_delivery_date         date NOT NULL REFERENCES dim_date(date_id),
  agreed_payment_date          date NOT NULL REFERENCES dim_date(date_id),
  agreed_delivery_location_id  integer NOT NULL REFERENCES dim_location(location_id)
);

CREATE TABLE fact_payment (
  payment_record_id  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payment_id         integer NOT NULL,
  created_date       date NOT NULL REFERENCES dim_date(date_id),
  created_time       time(3) NOT NULL,
  last_updated_date  date NOT NULL REFERENCES dim_date(date_id),
  last_updated_time  time(3) NOT NULL,
  transaction_id     integer NOT NULL REFERENCES dim_transaction(transaction_id),
  counterparty_id    integer NOT NULL REFERENCES dim_counterparty(counterparty_id),
  payment_amount     numeric(10,2) NOT NULL,
  currency_id        integer NOT NULL REFERENCES dim_currency(currency_id),
  payment_type_id    integer NOT NULL REFERENCES dim_payment_type(payment_type_id),
  paid               boolean NOT NULL,
  payment_date       date NOT NULL REFERENCES dim_date(date_id)
);
