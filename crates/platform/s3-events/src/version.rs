//! One version of one S3 object: the identity every exactly-once key is built from (ledger
//! rows, audit ids, ClientTokens, table names, transform state). Its spelling is decided here
//! and nowhere else, so that two pipelines — or two deliveries — never name one upload two ways.

use std::fmt;
use std::str::FromStr;

/// What tells two uploads of one key apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// S3's version id, on a bucket with versioning enabled.
    Id(String),
    /// The ETag, unquoted, where S3 gives no version id: a bucket never versioned, or one whose
    /// versioning is suspended, where every upload is version `"null"` (S3 User Guide,
    /// "Working with objects in a versioning-suspended bucket") and so names nothing.
    ETag(String),
    /// An object landfall wrote itself and never overwrites (split parts, archive copies).
    Derived,
}

/// The version id S3 gives every object of a bucket whose versioning is suspended, and
/// ListObjectVersions gives every object of a bucket never versioned.
const NULL_VERSION_ID: &str = "null";
/// How [`Version::ETag`] is spelled in stored ledgers, audit items and protocols.
const ETAG_PREFIX: &str = "etag:";

impl Version {
    /// The version S3 reports (HeadObject, a notification, a listing): the version id when it
    /// is a real one, else the ETag (quotes removed). The one place `"null"` is mapped.
    pub fn from_s3(version_id: Option<&str>, etag: Option<&str>) -> Version {
        match version_id.filter(|id| !id.is_empty() && *id != NULL_VERSION_ID) {
            Some(id) => Version::Id(id.to_owned()),
            None => Version::ETag(etag.unwrap_or_default().trim_matches('"').to_owned()),
        }
    }

    /// The S3 version id to read or delete exactly this version, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Version::Id(id) => Some(id),
            _ => None,
        }
    }

    /// The ETag that identifies this version when it has no version id, unquoted.
    pub fn etag(&self) -> Option<&str> {
        match self {
            Version::ETag(etag) => Some(etag),
            _ => None,
        }
    }

    /// The version id or the ETag without its spelling's prefix (e.g. for a table name).
    pub fn bare(&self) -> &str {
        match self {
            Version::Id(value) | Version::ETag(value) => value,
            Version::Derived => "",
        }
    }
}

/// `<id>`, `etag:<etag>`, or empty for a derived object: the strings stored since the first
/// release, so ledgers, audit items and protocols written before this type stay valid.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Id(id) => f.write_str(id),
            Version::ETag(etag) => write!(f, "{ETAG_PREFIX}{etag}"),
            Version::Derived => Ok(()),
        }
    }
}

impl FromStr for Version {
    type Err = std::convert::Infallible;

    /// The inverse of `Display`.
    fn from_str(text: &str) -> Result<Version, Self::Err> {
        Ok(match text.strip_prefix(ETAG_PREFIX) {
            Some(etag) => Version::ETag(etag.to_owned()),
            None if text.is_empty() => Version::Derived,
            None => Version::Id(text.to_owned()),
        })
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Version, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(text.parse().unwrap_or_else(|never| match never {}))
    }
}

/// One version of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ObjectVersion {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Which version of the key.
    pub version: Version,
}

impl ObjectVersion {
    /// `s3://bucket/key`
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// `If-Match` for a request about exactly this object when it has no version id: its
    /// ETag, quoted as S3 gives it.
    pub fn if_match(&self) -> Option<String> {
        self.version.etag().map(|etag| format!("\"{etag}\""))
    }
}

/// `bucket/key#version`: how an archive copy records its source, and what a notice claims.
impl fmt::Display for ObjectVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.bucket, self.key, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_null_version_id_and_a_missing_one_are_named_by_etag() {
        for id in [None, Some(""), Some("null")] {
            assert_eq!(
                Version::from_s3(id, Some("\"abc\"")),
                Version::ETag("abc".into()),
                "{id:?}"
            );
        }
        assert_eq!(
            Version::from_s3(Some("3HL4kqtJlcpXroDTDmJ"), Some("\"abc\"")),
            Version::Id("3HL4kqtJlcpXroDTDmJ".into())
        );
    }

    #[test]
    fn the_stored_spellings_are_unchanged_and_read_back() {
        for (version, text) in [
            (Version::Id("v1".into()), "v1"),
            (Version::ETag("e1".into()), "etag:e1"),
            (Version::Derived, ""),
        ] {
            assert_eq!(version.to_string(), text);
            assert_eq!(text.parse::<Version>().unwrap(), version);
        }
        let object = ObjectVersion {
            bucket: "b".into(),
            key: "k".into(),
            version: Version::ETag("e1".into()),
        };
        let json = serde_json::to_string(&object).unwrap();
        assert_eq!(json, r#"{"bucket":"b","key":"k","version":"etag:e1"}"#);
        assert_eq!(
            serde_json::from_str::<ObjectVersion>(&json).unwrap(),
            object
        );
        assert_eq!(object.to_string(), "b/k#etag:e1");
        assert_eq!(object.if_match().as_deref(), Some("\"e1\""));
    }
}
