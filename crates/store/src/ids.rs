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
pub fn wamid() -> String {
    let mut bytes = [0u8; 30];
    rand::rng().fill(&mut bytes[..]);
    bytes[0] = 0x1c; // keeps the recognisable "HBgL…" style prefix family
    format!(
        "wamid.{}",
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    )
}

/// A random secret of `n` bytes, hex encoded.
pub fn secret(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
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
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A 32-hex-digit conversation id, as in status webhooks.
pub fn conversation_id() -> String {
    secret(16)
}
