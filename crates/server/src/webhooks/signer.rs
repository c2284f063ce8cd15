//! `X-Hub-Signature-256` (cloud-api-facts.md §10.2): hex HMAC-SHA256 of exactly the bytes
//! sent, keyed with the app secret. The bytes are Meta's format
//! (`greenlight_domain::webhook::to_meta_bytes`: compact, non-ASCII as lowercase `\uXXXX`), so a
//! receiver that verifies the raw body and one that re-escapes a parsed body both agree.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header value: `sha256=<64 lowercase hex digits>`.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
