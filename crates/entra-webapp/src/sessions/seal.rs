//! Session records at rest: sealed with AES-256-GCM under keys derived from `SESSION_SECRET`.
//! The first secret seals; every secret opens, so secrets rotate without signing anyone out.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

struct SealingKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn derive(secret: &str) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"entra-webapp"), secret.as_bytes());
        let mut key = [0u8; 32];
        let mut id = [0u8; KEY_ID_LEN];
        // Both expansions are far below HKDF's output limit: they cannot fail.
        let _ = hkdf.expand(b"session-record-key-v1", &mut key);
        let _ = hkdf.expand(b"session-record-key-id-v1", &mut id);
        Self { id, cipher: Aes256Gcm::new(&key.into()) }
    }
}

/// Why a sealed record did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Too short or of an unknown format version.
    #[error("not a sealed session record")]
    Malformed,
    /// Sealed with a secret that is no longer configured.
    #[error("sealed with a secret that is not configured (rotated out?)")]
    UnknownKey,
    /// The authentication tag does not verify: tampered, or moved to another session id.
    #[error("the record was tampered with")]
    Tampered,
}

/// Seals and opens session records.
pub struct Sealer {
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} keys)", self.keys.len())
    }
}

impl Sealer {
    /// Keys from the configured secrets; with none, one random key (records die with the process).
    pub fn new(secrets: &[SecretString]) -> Self {
        let keys = if secrets.is_empty() {
            let random = crate::sessions::random_secret();
            vec![SealingKey::derive(random.expose_secret())]
        } else {
            secrets.iter().map(|s| SealingKey::derive(s.expose_secret())).collect()
        };
        Self { keys }
    }

    /// Seals `plaintext`, bound to `context` (the session id): a record copied under another id
    /// does not open.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        // Encryption with a valid key and nonce cannot fail for inputs of this size.
        let ciphertext = key
            .cipher
            .encrypt(nonce, Payload { msg: plaintext, aad: context })
            .unwrap_or_default();
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&key.id);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a sealed record.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT_VERSION {
            return Err(OpenError::Malformed);
        }
        let key_id = &sealed[1..1 + KEY_ID_LEN];
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or(OpenError::UnknownKey)?;
        key.cipher
            .decrypt(nonce, Payload { msg: &sealed[HEADER_LEN..], aad: context })
            .map_err(|_| OpenError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values.iter().map(|v| SecretString::from((*v).to_owned())).collect()
    }

    #[test]
    fn sealed_records_open_and_hide_their_content() {
        let sealer = Sealer::new(&secrets(&["first-secret-first-secret-first-secret"]));
        let sealed = sealer.seal(b"id-1", b"refresh-token-value");
        assert!(!sealed.windows(7).any(|w| w == b"refresh"));
        assert_eq!(sealer.open(b"id-1", &sealed).unwrap(), b"refresh-token-value");
    }

    #[test]
    fn a_record_moved_to_another_id_or_tampered_does_not_open() {
        let sealer = Sealer::new(&secrets(&["first-secret-first-secret-first-secret"]));
        let mut sealed = sealer.seal(b"id-1", b"data");
        assert_eq!(sealer.open(b"id-2", &sealed), Err(OpenError::Tampered));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(sealer.open(b"id-1", &sealed), Err(OpenError::Tampered));
        assert_eq!(sealer.open(b"id-1", b"short"), Err(OpenError::Malformed));
    }

    #[test]
    fn rotation_second_secret_opens_rotated_out_secret_does_not() {
        let old = Sealer::new(&secrets(&["old-secret-old-secret-old-secret-old"]));
        let sealed_with_old = old.seal(b"id", b"data");
        let rotated = Sealer::new(&secrets(&["new-secret-new-secret-new-secret-new", "old-secret-old-secret-old-secret-old"]));
        assert_eq!(rotated.open(b"id", &sealed_with_old).unwrap(), b"data");
        let new_only = Sealer::new(&secrets(&["new-secret-new-secret-new-secret-new"]));
        assert_eq!(new_only.open(b"id", &sealed_with_old), Err(OpenError::UnknownKey));
    }
}
