//! What identifies a load: the object version (`BatchId`), one attempt at it (`Attempt`),
//! the ledger's record of its source, and what a promotion reports.

use sha2::{Digest, Sha256};

/// Identifies one object version everywhere: stage rows, ledger, logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchId(pub(crate) String);

impl BatchId {
    /// sha256 of bucket, key and version (or ETag when the bucket is unversioned).
    pub fn for_object(bucket: &str, key: &str, version: &str) -> BatchId {
        let mut digest = Sha256::new();
        for part in [bucket, key, version] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        BatchId(hex::encode(digest.finalize()))
    }

    /// 64 lowercase hex digits, so it is safe inside SQL text (LOAD DATA takes no parameters).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One attempt at loading a split file: the object it loads (the ledger's key) and the
/// batch its parts are staged under, which no other attempt shares — so a part another
/// attempt staged (a failed try, a crashed one, a concurrent duplicate delivery) is never
/// counted or promoted with these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub object: BatchId,
    pub stage: BatchId,
}

impl Attempt {
    /// `token` names the attempt, e.g. the orchestrator's invocation request id.
    pub fn new(object: BatchId, token: &str) -> Attempt {
        let mut digest = Sha256::new();
        for part in [object.as_str(), token] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        Attempt {
            stage: BatchId(hex::encode(digest.finalize())),
            object,
        }
    }
}

/// An attempt lives inside one file-orchestrator invocation (15 minutes at most): stage
/// rows of an attempt older than this were abandoned and are removed by the next promotion.
pub const ABANDONED_AFTER_SECONDS: u32 = 3600;

/// The object a batch came from, recorded in the ledger.
#[derive(Debug, Clone)]
pub struct LedgerSource {
    pub dataset: String,
    pub key: String,
    pub version: String,
    /// When it landed (its notification's eventTime): of the uploads of one key, one that
    /// landed before an upload already loaded loads nothing. None: no order is known.
    pub landed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promoted {
    pub rows: u64,
    /// The ledger already had this object: nothing was loaded again.
    pub already_loaded: bool,
    /// A later upload of the same key (this version) was loaded first: nothing was loaded,
    /// so the older upload does not overwrite the newer one's rows.
    pub superseded_by: Option<String>,
}

impl Promoted {
    pub(crate) const ALREADY_LOADED: Promoted = Promoted {
        rows: 0,
        already_loaded: true,
        superseded_by: None,
    };

    /// Rows were written: the transaction commits.
    pub(crate) fn wrote(&self) -> bool {
        !self.already_loaded && self.superseded_by.is_none()
    }

    pub(crate) fn loaded(rows: u64) -> Promoted {
        Promoted {
            rows,
            already_loaded: false,
            superseded_by: None,
        }
    }
}
