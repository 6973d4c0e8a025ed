//! The state of a multipart copy carried from one invocation to the next in a task's
//! `continuation` field.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The state of a multipart copy carried in [`ReplicationTask::continuation`] from one
/// invocation to the next.
///
/// [`ReplicationTask::continuation`]: crate::task::ReplicationTask::continuation
///
/// The completed parts are packed (28 bytes each, base64), so 10,000 parts take about 370 KiB
/// and the task stays well inside SQS's 1 MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// The multipart upload to resume.
    pub upload_id: String,
    /// The destination key the upload writes.
    pub dst_key: String,
    /// The source key being copied (the candidate that existed).
    pub src_key: String,
    /// The source ETag the copy is pinned to (quoted, as HEAD returned it).
    pub src_etag: String,
    /// The source size in bytes.
    pub src_size: u64,
    /// The source CRC-64/XZ, when it reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_crc64: Option<u64>,
    /// The digest of the source's content headers and user metadata
    /// ([`metadata_digest`](super::metadata_digest)), so a metadata change restarts the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_meta: Option<String>,
    /// The destination as the copy found it, which CompleteMultipartUpload requires still to
    /// hold: absent (`true`) ...
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dst_if_absent: bool,
    /// ... or holding the object with this ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_if_match: Option<String>,
    /// The part size in bytes.
    pub part_size: u64,
    /// The parts completed so far.
    #[serde(with = "packed_parts")]
    pub parts: Vec<ContinuedPart>,
    /// How many invocations have worked on this copy before.
    #[serde(default)]
    pub hops: u32,
    /// How many invocations in a row ended in a transient failure without finishing a part;
    /// the copy gives up (and aborts the upload) after
    /// [`MAX_STALLS`](Continuation::MAX_STALLS).
    #[serde(default)]
    pub stalls: u32,
}

/// A part completed by an earlier invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuedPart {
    /// The part number, from 1.
    pub part_number: u32,
    /// The part's length in bytes.
    pub len: u64,
    /// The part's CRC-64/XZ.
    pub crc64: u64,
    /// The part's CRC-64/NVME (for the destination's full-object checksum).
    pub crc64_nvme: u64,
}

impl Continuation {
    /// How many invocations in a row may end in a transient failure without progress before
    /// the copy is abandoned.
    pub const MAX_STALLS: u32 = 5;

    /// The continuation as the JSON value stored in a task.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads a continuation from a task's `continuation` value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(value)
    }
}

/// Packs parts as big-endian `(u32 number, u64 len, u64 crc64, u64 crc64_nvme)` records, base64.
mod packed_parts {
    use super::*;

    const RECORD: usize = 28;

    pub(super) fn serialize<S: serde::Serializer>(
        parts: &[ContinuedPart],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(parts.len() * RECORD);
        for part in parts {
            bytes.extend_from_slice(&part.part_number.to_be_bytes());
            bytes.extend_from_slice(&part.len.to_be_bytes());
            bytes.extend_from_slice(&part.crc64.to_be_bytes());
            bytes.extend_from_slice(&part.crc64_nvme.to_be_bytes());
        }
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<ContinuedPart>, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(D::Error::custom)?;
        if bytes.len() % RECORD != 0 {
            return Err(D::Error::custom("packed parts are not whole records"));
        }
        let u64_at = |r: &[u8], at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&r[at..at + 8]);
            u64::from_be_bytes(b)
        };
        Ok(bytes
            .chunks_exact(RECORD)
            .map(|r| ContinuedPart {
                part_number: u32::from_be_bytes([r[0], r[1], r[2], r[3]]),
                len: u64_at(r, 4),
                crc64: u64_at(r, 12),
                crc64_nvme: u64_at(r, 20),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::MIB;

    #[test]
    fn continuation_round_trips_and_fits_sqs_for_ten_thousand_parts() {
        let parts = (1..=10_000u32)
            .map(|n| ContinuedPart {
                part_number: n,
                len: 5 * 1024 * MIB,
                crc64: u64::MAX - u64::from(n),
                crc64_nvme: u64::from(n) << 40,
            })
            .collect();
        let c = Continuation {
            upload_id: "u".repeat(200),
            dst_key: "k".repeat(1024),
            src_key: "k".repeat(1024),
            src_etag: "\"ABC\"".into(),
            src_size: 5 * crate::size::TIB,
            src_crc64: Some(u64::MAX),
            src_meta: Some("0".repeat(32)),
            dst_if_absent: false,
            dst_if_match: Some("\"0123456789abcdef0123456789abcdef-10000\"".into()),
            part_size: 5 * 1024 * MIB,
            parts,
            hops: 3,
            stalls: 1,
        };
        let json = serde_json::to_string(&c.to_value()).expect("json");
        assert!(json.len() < 512 * 1024, "{} bytes", json.len());
        assert_eq!(Continuation::from_value(&c.to_value()).expect("parses"), c);
    }

    #[test]
    fn malformed_packed_parts_are_rejected() {
        let value = serde_json::json!({"upload_id":"u","dst_key":"d","src_key":"s",
            "src_etag":"e","src_size":1,"part_size":1,"parts":"AAAA"});
        assert!(Continuation::from_value(&value).is_err());
    }
}
