-- The uploads of one landing key load in the order they landed: this row names the latest
-- upload of each key that was loaded (its notification's eventTime, which S3 writes to the
-- millisecond). A load takes the row's lock in the transaction that promotes it, so loads of
-- one key are serialised, and an upload that landed before the one already loaded is
-- superseded: it loads nothing, and the correction keeps its rows.
CREATE TABLE IF NOT EXISTS landfall_key_order (
  key_id         CHAR(64)      NOT NULL PRIMARY KEY,  -- sha256 of the landing key
  landed         VARCHAR(40)   NOT NULL,              -- eventTime, ISO 8601 in UTC
  object_version VARCHAR(1024) NOT NULL               -- the upload it names
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
