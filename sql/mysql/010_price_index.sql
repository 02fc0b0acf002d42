-- Demo dataset price_index: monthly prices by geography and product.

CREATE TABLE IF NOT EXISTS price_index (
  ref_date   CHAR(7)       NOT NULL,  -- YYYY-MM
  geo        VARCHAR(64)   NOT NULL,
  category   VARCHAR(64)   NOT NULL,
  product    VARCHAR(128)  NOT NULL,
  uom        VARCHAR(32)   NULL,
  price      DECIMAL(12,2) NOT NULL,
  loaded_at  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (ref_date, geo, product)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Files (and the parts of split files) are staged here, tagged with their batch, and
-- promoted together by load_price_index in one transaction.
CREATE TABLE IF NOT EXISTS price_index_stage (
  landfall_batch CHAR(64)      NOT NULL,
  landfall_part  INT           NOT NULL,
  ref_date       CHAR(7)       NOT NULL,
  geo            VARCHAR(64)   NOT NULL,
  category       VARCHAR(64)   NOT NULL,
  product        VARCHAR(128)  NOT NULL,
  uom            VARCHAR(32)   NULL,
  price          DECIMAL(12,2) NOT NULL,
  KEY by_batch (landfall_batch, landfall_part)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS price_index_report (
  year          INT           NOT NULL,
  month         INT           NOT NULL,
  geo           VARCHAR(64)   NOT NULL,
  category      VARCHAR(64)   NOT NULL,
  avg_price     DECIMAL(14,4) NOT NULL,
  observations  INT           NOT NULL,
  PRIMARY KEY (year, month, geo, category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DELIMITER $$

-- Upsert by (ref_date, geo, product): a later file's price wins.
-- Portable to MySQL 8.0, 8.4 and MariaDB: no CREATE OR REPLACE PROCEDURE (MariaDB only),
-- and the new values named through a derived table's columns, not VALUES(col) (deprecated
-- since MySQL 8.0.20, warning 1287) nor a row alias (MariaDB lacks it).
DROP PROCEDURE IF EXISTS load_price_index$$
CREATE PROCEDURE load_price_index(IN p_batch CHAR(64))
BEGIN
  INSERT INTO price_index (ref_date, geo, category, product, uom, price)
  SELECT * FROM (
    SELECT ref_date, geo, category AS new_category, product, uom AS new_uom, price AS new_price
    FROM price_index_stage
    WHERE landfall_batch = p_batch
  ) AS staged
  ON DUPLICATE KEY UPDATE category = new_category, uom = new_uom, price = new_price;
END$$

-- Average price by year, month, geography and category.
DROP PROCEDURE IF EXISTS report_price_index$$
CREATE PROCEDURE report_price_index()
BEGIN
  DELETE FROM price_index_report;
  INSERT INTO price_index_report (year, month, geo, category, avg_price, observations)
  SELECT CAST(LEFT(ref_date, 4) AS UNSIGNED), CAST(RIGHT(ref_date, 2) AS UNSIGNED),
         geo, category, ROUND(AVG(price), 4), COUNT(*)
  FROM price_index
  GROUP BY 1, 2, 3, 4;
END$$

DELIMITER ;
