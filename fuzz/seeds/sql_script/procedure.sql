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
CREATE OR REPLACE PROCEDURE load_price_index(IN p_batch CHAR(64))
BEGIN
  INSERT INTO price_index (ref_date, geo, category, product, uom, price)
  SELECT ref_date, geo, category, product, uom, price
  FROM price_index_stage
  WHERE landfall_batch = p_batch
  ON DUPLICATE KEY UPDATE category = VALUES(category), uom = VALUES(uom), price = VALUES(price);
END$$

-- Average price by year, month, geography and category.
CREATE OR REPLACE PROCEDURE report_price_index()
BEGIN
  DELETE FROM price_index_report;
  INSERT INTO price_index_report (year, month, geo, category, avg_price, observations)
  SELECT CAST(LEFT(ref_date, 4) AS UNSIGNED), CAST(RIGHT(ref_date, 2) AS UNSIGNED),
         geo, category, ROUND(AVG(price), 4), COUNT(*)
  FROM price_index
  GROUP BY 1, 2, 3, 4;
END$$

DELIMITER ;
