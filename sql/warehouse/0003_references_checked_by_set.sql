-- The facts' references to their dimensions (0001) are checked by warehouse-loader once per
-- loaded file, by set — each referenced key of the file against its dimension, in the load's
-- transaction — instead of by PostgreSQL's per-row triggers, which lock the referenced row
-- for every fact row (about 7x the cost of the load itself). A fact still never lands
-- without its dimension rows: its manifest waits, as before. Nothing else writes the facts,
-- and the loader never deletes a dimension row.
--
-- PostgreSQL 18 and later keep each constraint declared, NOT ENFORCED (no triggers), so BI
-- tools still see the star in the catalog. Earlier servers cannot, so the constraints are
-- dropped there; the column comments below name every reference on every server.
DO $$
DECLARE
  fk record;
BEGIN
  FOR fk IN
    SELECT conrelid::regclass AS tbl, conname
    FROM pg_constraint
    WHERE contype = 'f'
      AND conrelid IN ('fact_sales_order'::regclass, 'fact_purchase_orders'::regclass, 'fact_payment'::regclass)
  LOOP
    IF current_setting('server_version_num')::int >= 180000 THEN
      EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I NOT ENFORCED', fk.tbl, fk.conname);
    ELSE
      EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END IF;
  END LOOP;
END $$;

COMMENT ON COLUMN fact_sales_order.created_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_sales_order.last_updated_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_sales_order.sales_staff_id IS 'references dim_staff(staff_id)';
COMMENT ON COLUMN fact_sales_order.counterparty_id IS 'references dim_counterparty(counterparty_id)';
COMMENT ON COLUMN fact_sales_order.currency_id IS 'references dim_currency(currency_id)';
COMMENT ON COLUMN fact_sales_order.design_id IS 'references dim_design(design_id)';
COMMENT ON COLUMN fact_sales_order.agreed_payment_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_sales_order.agreed_delivery_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_sales_order.agreed_delivery_location_id IS 'references dim_location(location_id)';

COMMENT ON COLUMN fact_purchase_orders.created_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_purchase_orders.last_updated_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_purchase_orders.staff_id IS 'references dim_staff(staff_id)';
COMMENT ON COLUMN fact_purchase_orders.counterparty_id IS 'references dim_counterparty(counterparty_id)';
COMMENT ON COLUMN fact_purchase_orders.currency_id IS 'references dim_currency(currency_id)';
COMMENT ON COLUMN fact_purchase_orders.agreed_delivery_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_purchase_orders.agreed_payment_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_purchase_orders.agreed_delivery_location_id IS 'references dim_location(location_id)';

COMMENT ON COLUMN fact_payment.created_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_payment.last_updated_date IS 'references dim_date(date_id)';
COMMENT ON COLUMN fact_payment.transaction_id IS 'references dim_transaction(transaction_id)';
COMMENT ON COLUMN fact_payment.counterparty_id IS 'references dim_counterparty(counterparty_id)';
COMMENT ON COLUMN fact_payment.currency_id IS 'references dim_currency(currency_id)';
COMMENT ON COLUMN fact_payment.payment_type_id IS 'references dim_payment_type(payment_type_id)';
COMMENT ON COLUMN fact_payment.payment_date IS 'references dim_date(date_id)';
