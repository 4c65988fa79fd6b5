//! Ids of jobs, runs (history items) and backups.
//!
//! An id is 20 lower-case base32hex characters (`0-9a-v`), the shape of Event Store Cloud ids
//! such as `c196ogto0aeqohe3ommq`: 96 bits, of which the first 32 are the creation second
//! and the other 64 are random. Ids therefore sort roughly by creation, are safe in every
//! key, tag and path they end up in, and two servers never mint the same one.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ports::IdGenerator;

/// The length of every id the engine makes.
pub const ID_LEN: usize = 20;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// Whether `id` has the shape of an engine-made id.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| ALPHABET.contains(&b))
}

/// Encodes 12 bytes as 20 base32hex characters, most significant bits first (the last
/// character carries one bit and four zero bits of padding).
pub fn encode(bytes: [u8; 12]) -> String {
    let mut value: u128 = 0;
    for b in bytes {
        value = (value << 8) | u128::from(b);
    }
    value <<= 4; // 96 bits → 100 bits, a whole number of 5-bit digits
    let mut out = String::with_capacity(ID_LEN);
    for i in (0..ID_LEN).rev() {
        let digit = ((value >> (i * 5)) & 0x1f) as usize;
        out.push(char::from(ALPHABET[digit]));
    }
    out
}

/// Time-prefixed random ids from the operating system's random source.
#[derive(Debug, Default)]
pub struct RandomIds {
    /// Only used if the OS random source fails, which on supported platforms it does not;
    /// keeps ids unique within the process even then.
    fallback: AtomicU64,
}

impl IdGenerator for RandomIds {
    fn new_id(&self) -> String {
        let now = chrono::Utc::now();
        let seconds = u32::try_from(now.timestamp().max(0)).unwrap_or(u32::MAX);
        let mut random = [0u8; 8];
        if getrandom::fill(&mut random).is_err() {
            let n = self.fallback.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::from(now.timestamp_subsec_nanos());
            random =
                splitmix64(n ^ nanos.rotate_left(32) ^ std::process::id() as u64).to_be_bytes();
        }
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..].copy_from_slice(&random);
        encode(bytes)
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_event_store_cloud_shape() {
        // GIVEN the generator WHEN asked for ids THEN each is 20 base32hex chars and unique
        let ids = RandomIds::default();
        let made: std::collections::HashSet<String> = (0..1000).map(|_| ids.new_id()).collect();
        assert_eq!(made.len(), 1000);
        for id in &made {
            assert!(is_valid_id(id), "{id}");
        }
        assert!(is_valid_id("c196ogto0aeqohe3ommq"));
    }

    #[test]
    fn encoding_keeps_byte_order() {
        assert_eq!(encode([0; 12]), "00000000000000000000");
        assert_eq!(encode([0xff; 12]), "vvvvvvvvvvvvvvvvvvvg");
        assert!(
            encode([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
                > encode([0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9])
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "C196OGTO0AEQOHE3OMMQ",
            "c196ogto0aeqohe3omm",
            "c196ogto0aeqohe3ommqx",
            "w196ogto0aeqohe3ommq",
            "../ogto0aeqohe3ommq",
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
