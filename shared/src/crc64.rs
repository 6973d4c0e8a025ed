//! CRC-64/XZ, the checksum OSS reports as `x-oss-hash-crc64ecma` (decimal u64).
//!
//! Parameters: poly 0x42F0E1EBA9EA3693, reflected, init and xorout all ones (the same as Go's
//! `crc64.ECMA` table with the standard pre/post inversion). The SIMD work is `crc-fast`'s.

use crc_fast::{CrcAlgorithm, Digest};

const ALGORITHM: CrcAlgorithm = CrcAlgorithm::Crc64Xz;

/// The CRC-64/XZ of `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    crc_fast::checksum(ALGORITHM, bytes)
}

/// The CRC of `a ++ b`, given `crc(a)`, `crc(b)` and `b`'s length: how CRCs of parts hashed in
/// parallel become the whole object's CRC.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    crc_fast::checksum_combine(ALGORITHM, crc_a, crc_b, len_b)
}

/// An incremental CRC-64/XZ over a stream of chunks, counting the bytes it has seen.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest,
    len: u64,
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc64")
            .field("crc", &self.value())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    /// A CRC over no bytes yet.
    pub fn new() -> Self {
        Self {
            digest: Digest::new(ALGORITHM),
            len: 0,
        }
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// The CRC of everything fed so far.
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }

    /// How many bytes have been fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes have been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_matches_crc64_xz() {
        assert_eq!(checksum(b"123456789"), 11_051_210_869_376_104_954);
        assert_eq!(checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn empty_input_has_crc_zero() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(Crc64::new().value(), 0);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut crc = Crc64::new();
        for chunk in data.chunks(4093) {
            crc.update(chunk);
        }
        assert_eq!(crc.value(), checksum(&data));
        assert_eq!(crc.len(), data.len() as u64);
    }

    #[test]
    fn combining_part_crcs_gives_whole_crc() {
        let data: Vec<u8> = (0..300_001u32)
            .map(|i| (i ^ (i >> 7)).to_le_bytes()[0])
            .collect();
        let mut whole = 0;
        for part in data.chunks(65_536) {
            whole = combine(whole, checksum(part), part.len() as u64);
        }
        assert_eq!(whole, checksum(&data));
        assert_eq!(combine(whole, checksum(b""), 0), whole);
    }
}
