-- Each attempt at loading a split file stages its parts under a batch id of its own, so rows
-- of a failed or abandoned attempt can never be promoted by another. This table says which
-- object an attempt was for and when it started, so those rows can be removed: by the
-- promotion of the same object, or once older than any attempt can live.
CREATE TABLE IF NOT EXISTS landfall_stage_attempts (
  stage_batch  CHAR(64)     NOT NULL PRIMARY KEY,  -- sha256 of the load id and the attempt
  load_id      CHAR(64)     NOT NULL,              -- the object (landfall_load_ledger.load_id)
  stage_table  VARCHAR(64)  NOT NULL,              -- where its rows are
  started_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY by_load (load_id),
  KEY by_age (stage_table, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
