//! The keyed MAC on every frame: HMAC-SHA256 (RustCrypto `hmac` + `sha2`)
//! under the 256-bit cluster key, truncated to its first 16 bytes (128
//! bits, as RFC 2104 §5 and RFC 4868 allow; a forger must guess 2^128
//! tags). Nothing here is hand-rolled: this module only decides which bytes
//! are covered and where the tag goes.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::wire::TAG_LEN;

/// The cluster key, prepared once: HMAC's inner and outer pads are hashed at
/// construction and each frame starts from a copy of that state.
#[derive(Clone)]
pub(crate) struct FrameAuth {
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for FrameAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print anything derived from the key.
        f.write_str("FrameAuth(<redacted>)")
    }
}

impl FrameAuth {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        Self { keyed }
    }

    /// The 16-byte tag over `covered`.
    pub(crate) fn tag(&self, covered: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(covered);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Whether `tag` is the tag of `covered`, compared in constant time.
    pub(crate) fn verify(&self, covered: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(covered);
        mac.verify_truncated_left(tag).is_ok()
    }

    /// Writes the tag of `frame[..len - TAG_LEN]` into its last `TAG_LEN`
    /// bytes. `frame` is a whole frame built by [`crate::wire`].
    pub(crate) fn seal(&self, frame: &mut [u8]) {
        let body = frame.len() - TAG_LEN;
        let tag = self.tag(&frame[..body]);
        frame[body..].copy_from_slice(&tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe"), truncated: pins that the tag really is
    /// HMAC-SHA256's first 16 bytes and not some other keyed hash.
    #[test]
    fn tag_is_truncated_hmac_sha256_rfc4231_case_2() {
        // RFC 4231 uses a 4-byte key; HMAC zero-pads keys to the block size,
        // so the same key zero-extended to 32 bytes gives the same MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let auth = FrameAuth::new(&key);
        let tag = auth.tag(b"what do ya want for nothing?");
        let expected = [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7];
        assert_eq!(tag, expected);
        assert!(auth.verify(b"what do ya want for nothing?", &expected));
        let mut wrong = expected;
        wrong[15] ^= 1;
        assert!(!auth.verify(b"what do ya want for nothing?", &wrong));
        assert!(!FrameAuth::new(&[7; 32]).verify(b"what do ya want for nothing?", &expected));
    }

    #[test]
    fn seal_then_verify_round_trips_and_any_bit_flip_fails() {
        let auth = FrameAuth::new(&[0x42; 32]);
        let mut frame = [0u8; 64];
        for (i, b) in frame.iter_mut().enumerate() {
            *b = i as u8;
        }
        auth.seal(&mut frame);
        let (body, tag) = frame.split_at(64 - TAG_LEN);
        assert!(auth.verify(body, tag));
        for bit in 0..(64 * 8) {
            let mut bad = frame;
            bad[bit / 8] ^= 1 << (bit % 8);
            let (body, tag) = bad.split_at(64 - TAG_LEN);
            assert!(!auth.verify(body, tag), "flip of bit {bit} went unnoticed");
        }
    }
}
