//! Identifiers shaped like Meta's: digit-string object ids, `wamid.` message ids, opaque tokens.

use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};

/// A 15-digit object id (business, WABA, app, phone number, media, template).
pub fn object_id() -> String {
    let mut rng = rand::rng();
    let first: u8 = rng.random_range(1..=9);
    let mut s = first.to_string();
    for _ in 0..14 {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

/// A message id: `wamid.` followed by base64 (URL-safe alphabet, so it can stand in a path).
///
/// The 30 bytes are Meta's recognisable `HBgL…` prefix, then a 64-bit sequence that grows with
/// time (unix milliseconds × 4,096 plus a counter, so ids made close together share a long
/// prefix), then 19 random bytes. Keys made close in time land in the same few index pages of
/// the `messages` and `statuses` tables instead of all over them: random keys made every batch
/// dirty pages across the whole file (docs/BENCHMARKS.md).
pub fn wamid() -> String {
    let mut bytes = [0u8; 30];
    bytes[0] = 0x1c;
    bytes[1] = 0x18;
    bytes[2] = 0x0b;
    bytes[3..11].copy_from_slice(&next_sequence().to_be_bytes());
    rand::rng().fill(&mut bytes[11..]);
    // one allocation, of the final size: "wamid." and 40 base64 characters
    let mut id = String::with_capacity(46);
    id.push_str("wamid.");
    base64::engine::general_purpose::URL_SAFE.encode_string(bytes, &mut id);
    id
}

/// Unix milliseconds × 4,096, strictly increasing within this process.
fn next_sequence() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        << 12;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A random secret of `n` bytes, hex encoded.
pub fn secret(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex_lower(&bytes)
}

/// `bytes` in lowercase hex, as `hex::encode` writes them, into one allocation of the final
/// size (`hex::encode` collects 2 × n `char`s one by one: ~900 instructions for the 16 bytes of
/// a send's conversation id, against ~200 here; docs/BENCHMARKS.md, thirty-fourth round).
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// An access token: opaque, high-entropy, in Meta's `EAA…` style.
pub fn access_token() -> String {
    let mut bytes = [0u8; 36];
    rand::rng().fill(&mut bytes[..]);
    format!(
        "EAAG{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Tokens are stored hashed; only the hash is ever compared or persisted.
pub fn token_hash(token: &str) -> String {
    hex::encode(token_digest(token))
}

/// A token's SHA-256, the bytes [`token_hash`] writes in hex: what the server's cache of
/// principals is keyed by, so that a request does not spell the hash out (a String and 64
/// characters formatted one by one, ~2,500 instructions a request) unless it misses.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A 32-hex-digit conversation id, as in status webhooks.
pub fn conversation_id() -> String {
    secret(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wamids_keep_meta_prefix_and_are_unique_and_clustered() {
        let a = wamid();
        let b = wamid();
        assert!(a.starts_with("wamid.HBgL"), "{a}");
        assert_eq!(a.len(), 46, "{a}");
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
        // made a moment apart: they share the prefix up to the sequence's low bits
        let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        assert!(common >= "wamid.".len() + 8, "{a} / {b}");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(wamid()));
        }
    }

    #[test]
    fn a_token_is_stored_as_its_digest_in_hex() {
        // SHA-256 of "abc" (FIPS 180-2's example)
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(token_hash("abc"), abc);
        assert_eq!(hex::encode(token_digest("abc")), abc);
        assert_ne!(token_digest("abc"), token_digest("abd"));
    }

    #[test]
    fn hex_is_written_as_the_hex_crate_writes_it() {
        let every: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&every), hex::encode(&every));
        assert_eq!(hex_lower(&[]), "");
        let id = conversation_id();
        assert_eq!(id.len(), 32, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        assert_ne!(id, conversation_id());
    }

    #[test]
    fn the_sequence_strictly_increases() {
        let mut last = next_sequence();
        for _ in 0..100_000 {
            let n = next_sequence();
            assert!(n > last);
            last = n;
        }
    }
}
