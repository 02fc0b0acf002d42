-- landfall's own bookkeeping. Applied by db-init, in file-name order, once per checksum.

-- One row per loaded object version, written in the same transaction as its rows:
-- a redelivered or duplicate file finds its row and loads nothing.
CREATE TABLE IF NOT EXISTS landfall_load_ledger (
  load_id        CHAR(64)      NOT NULL PRIMARY KEY,  -- sha256 of bucket, key and version/etag
  dataset        VARCHAR(64)   NOT NULL,
  object_key     VARCHAR(1024) NOT NULL,
  object_version VARCHAR(1024) NOT NULL,
  parts          INT           NOT NULL,
  rows_loaded    BIGINT        NOT NULL,
  loaded_at      TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
