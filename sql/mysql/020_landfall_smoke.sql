-- make smoke's own table (scripts/smoke.py, config/datasets.toml): three rows, one per slot,
-- that each smoke run replaces; the reporter exports the table for the smoke to read back.

CREATE TABLE IF NOT EXISTS landfall_smoke (
  slot       INT           NOT NULL,
  run        VARCHAR(64)   NOT NULL,
  note       VARCHAR(64)   NOT NULL,
  loaded_at  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (slot)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
