-- P3's warehouse: the customer reference table, the staging table COPY fills, the final
-- layer, the load ledger, and the two procedures every load calls. Written in the SQL that
-- Amazon Redshift and PostgreSQL both run (the local stack's Data API runs it on
-- PostgreSQL), so no primary key is declared: Redshift would not enforce one and
-- PostgreSQL would, and the two must behave alike. The ledger and orders_dedupe are what
-- keep the final table at one row per order.

CREATE TABLE IF NOT EXISTS customers (
    customer_id VARCHAR(64) NOT NULL,
    name VARCHAR(256) NOT NULL,
    segment VARCHAR(64) NOT NULL,
    country VARCHAR(64) NOT NULL
);

CREATE TABLE IF NOT EXISTS orders_staging (
    order_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    order_ts TIMESTAMP NOT NULL,
    status VARCHAR(32) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    currency CHAR(3) NOT NULL
);

CREATE TABLE IF NOT EXISTS orders_enriched (
    order_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    order_ts TIMESTAMP NOT NULL,
    status VARCHAR(32) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    currency CHAR(3) NOT NULL,
    -- NULL when the customer is unknown and the policy loads such orders anyway
    customer_name VARCHAR(256),
    segment VARCHAR(64),
    country VARCHAR(64),
    loaded_at TIMESTAMP NOT NULL,
    source_key VARCHAR(1024) NOT NULL,
    source_version VARCHAR(1024) NOT NULL
);

-- One row per loaded object version, written in the load's own transaction.
CREATE TABLE IF NOT EXISTS orders_ledger (
    source_key VARCHAR(1024) NOT NULL,
    source_version VARCHAR(1024) NOT NULL,
    rows_staged BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    unknown_customers BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);

-- Staging (as COPY filled it) joined with the customers into the final table, once per
-- object version. An order twice in one file keeps its latest order_ts; a customer listed
-- twice in the reference table counts once. p_unknown: 'reject' fails the load (the
-- transaction leaves nothing) when an order names an unknown customer, 'load' keeps such
-- orders with NULL customer columns; both count them.
CREATE OR REPLACE PROCEDURE orders_load(
    p_key VARCHAR(1024), p_version VARCHAR(1024), p_loaded_at TIMESTAMP, p_unknown VARCHAR(16))
AS $$
DECLARE
    already BIGINT;
    staged BIGINT;
    unknown BIGINT;
    loaded BIGINT;
BEGIN
    SELECT INTO already COUNT(*) FROM orders_ledger
        WHERE source_key = p_key AND source_version = p_version;
    IF already > 0 THEN
        RETURN;
    END IF;
    SELECT INTO staged COUNT(*) FROM orders_staging;
    SELECT INTO unknown COUNT(*) FROM orders_staging s
        WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id);
    IF unknown > 0 AND p_unknown = 'reject' THEN
        RAISE EXCEPTION 'unknown customers: % of % orders name a customer_id missing from customers', unknown, staged;
    END IF;
    INSERT INTO orders_enriched (order_id, customer_id, order_ts, status, amount, currency,
                                 customer_name, segment, country, loaded_at, source_key, source_version)
    SELECT s.order_id, s.customer_id, s.order_ts, s.status, s.amount, s.currency,
           c.name, c.segment, c.country, p_loaded_at, p_key, p_version
    FROM (SELECT order_id, customer_id, order_ts, status, amount, currency,
                 ROW_NUMBER() OVER (PARTITION BY order_id
                                    ORDER BY order_ts DESC, status DESC, amount DESC, currency DESC, customer_id DESC) AS pick
          FROM orders_staging) s
    LEFT JOIN (SELECT customer_id, name, segment, country,
                      ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY name, segment, country) AS pick
               FROM customers) c
        ON c.customer_id = s.customer_id AND c.pick = 1
    WHERE s.pick = 1;
    GET DIAGNOSTICS loaded := ROW_COUNT;
    INSERT INTO orders_ledger (source_key, source_version, rows_staged, rows_loaded, unknown_customers, loaded_at)
    VALUES (p_key, p_version, staged, loaded, unknown, p_loaded_at);
END;
$$ LANGUAGE plpgsql;

-- One final row per order: the latest order_ts wins, then the later load, then the larger
-- source key and version (a total order, so the same rows always leave the same winner).
-- Scoped to the orders of one object version; with NULLs, the whole table.
CREATE OR REPLACE PROCEDURE orders_dedupe(p_key VARCHAR(1024), p_version VARCHAR(1024))
AS $$
BEGIN
    DELETE FROM orders_enriched
    USING (SELECT order_id, loaded_at, source_key, source_version,
                  ROW_NUMBER() OVER (PARTITION BY order_id
                                     ORDER BY order_ts DESC, loaded_at DESC, source_key DESC, source_version DESC) AS rank
           FROM orders_enriched
           WHERE p_key IS NULL
              OR order_id IN (SELECT order_id FROM orders_enriched
                              WHERE source_key = p_key AND source_version = p_version)) ranked
    WHERE ranked.rank > 1
      AND orders_enriched.order_id = ranked.order_id
      AND orders_enriched.loaded_at = ranked.loaded_at
      AND orders_enriched.source_key = ranked.source_key
      AND orders_enriched.source_version = ranked.source_version;
END;
$$ LANGUAGE plpgsql;
