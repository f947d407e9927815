//! Keys derived from the session secret(s) (`SESSION_SECRET` in entra-webapp), one per purpose:
//! sealing pending sign-in cookies, sealing session records at rest, and naming stored records by
//! a keyed hash. With several secrets (rotation) the first seals and names new things; every one
//! opens and finds old ones, so a secret rotates without signing anyone out.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// HKDF salt: fixed, so the same secret gives the same keys on every instance.
const SALT: &[u8] = b"entra-webapp";

/// One purpose's key, derived from one secret. The `info` labels keep purposes apart: a cookie
/// sealed for one purpose never opens as another.
struct SealingKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn derive(secret: &SecretString, label: &str) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), secret.expose_secret().as_bytes());
        let mut key = [0u8; 32];
        let mut id = [0u8; KEY_ID_LEN];
        // Both lengths are far below HKDF-SHA-256's limit (8160 bytes): expansion cannot fail.
        let _ = hkdf.expand(format!("{label}-key-v1").as_bytes(), &mut key);
        let _ = hkdf.expand(format!("{label}-key-id-v1").as_bytes(), &mut id);
        Self { id, cipher: Aes256Gcm::new(&key.into()) }
    }
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Too short or of an unknown format version.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed with a secret that is no longer configured.
    #[error("sealed with a secret that is not configured (rotated out?)")]
    UnknownKey,
    /// The authentication tag does not verify: tampered, or moved to another context.
    #[error("the sealed value was tampered with or moved")]
    Tampered,
}

/// Sealing failed (AES-GCM refuses only absurdly large inputs).
#[derive(Debug, thiserror::Error)]
#[error("cannot seal the value")]
pub struct SealError;

/// Seals and opens values with AES-256-GCM, each bound to a context (a record's id, a cookie's
/// name) so a value copied elsewhere does not open.
pub struct Sealer {
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} keys)", self.keys.len())
    }
}

impl Sealer {
    /// Keys for `label` from `secrets` (at least one).
    fn derive(secrets: &[SecretString], label: &str) -> Self {
        Self { keys: secrets.iter().map(|s| SealingKey::derive(s, label)).collect() }
    }

    /// Seals `plaintext`, bound to `context`.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.keys.first().ok_or(SealError)?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let ciphertext = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plaintext, aad: context })
            .map_err(|_| SealError)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&key.id);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens a sealed value bound to `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT_VERSION {
            return Err(OpenError::Malformed);
        }
        let key_id = &sealed[1..1 + KEY_ID_LEN];
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or(OpenError::UnknownKey)?;
        key.cipher.decrypt(nonce, Payload { msg: &sealed[HEADER_LEN..], aad: context }).map_err(|_| OpenError::Tampered)
    }
}

/// Names stored things by HMAC-SHA-256 of their identifier, so a dump of the store holds no
/// session id or Entra `sid`: what a name is cannot be found without the secret, and a stolen
/// name is not a cookie.
pub struct KeyedNames {
    keys: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for KeyedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyedNames({} keys)", self.keys.len())
    }
}

impl KeyedNames {
    fn derive(secrets: &[SecretString]) -> Self {
        let keys = secrets
            .iter()
            .filter_map(|secret| {
                let hkdf = Hkdf::<Sha256>::new(Some(SALT), secret.expose_secret().as_bytes());
                let mut key = [0u8; 32];
                hkdf.expand(b"store-key-names-v1", &mut key).ok()?;
                <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()
            })
            .collect();
        Self { keys }
    }

    /// The name of `value` under every configured secret, the first secret's first: write under
    /// the first, look under all.
    pub fn names(&self, value: &[u8]) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| {
                let mut mac = key.clone();
                mac.update(value);
                hex(&mac.finalize().into_bytes())
            })
            .collect()
    }

    /// The first secret's name of `value` (for writes).
    pub fn name(&self, value: &[u8]) -> String {
        self.names(value).into_iter().next().unwrap_or_default()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Every key the sign-in and session machinery needs, from the same secret list.
#[derive(Debug)]
pub struct SessionKeys {
    /// Seals pending sign-in cookies.
    pub pending_sign_ins: Sealer,
    /// Seals session records at rest.
    pub records: Sealer,
    /// Names records and indexes in a shared store.
    pub names: KeyedNames,
    /// Whether the secrets were generated for this process (nothing survives a restart).
    pub ephemeral: bool,
}

impl SessionKeys {
    /// Keys from the configured secrets, the first one current; with none, from a random secret
    /// that lives as long as the process.
    pub fn from_secrets(secrets: &[SecretString]) -> Self {
        let ephemeral = secrets.is_empty();
        let random;
        let secrets = if ephemeral {
            random = [crate::secret::random_token(48)];
            &random[..]
        } else {
            secrets
        };
        Self {
            // "session-record" keeps the key ids of records sealed before keys had purposes.
            records: Sealer::derive(secrets, "session-record"),
            pending_sign_ins: Sealer::derive(secrets, "pending-sign-in-cookie"),
            names: KeyedNames::derive(secrets),
            ephemeral,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(values: &[&str]) -> SessionKeys {
        let secrets: Vec<SecretString> = values.iter().map(|v| SecretString::from((*v).to_owned())).collect();
        SessionKeys::from_secrets(&secrets)
    }

    #[test]
    fn sealed_values_open_and_hide_their_content() {
        let keys = keys(&["first-secret-first-secret-first-secret"]);
        let sealed = keys.records.seal(b"id-1", b"refresh-token-value").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"refresh"));
        assert_eq!(keys.records.open(b"id-1", &sealed).unwrap(), b"refresh-token-value");
    }

    #[test]
    fn a_value_moved_tampered_or_sealed_for_another_purpose_does_not_open() {
        let keys = keys(&["first-secret-first-secret-first-secret"]);
        let mut sealed = keys.records.seal(b"id-1", b"data").unwrap();
        assert_eq!(keys.records.open(b"id-2", &sealed), Err(OpenError::Tampered));
        assert_eq!(keys.pending_sign_ins.open(b"id-1", &sealed), Err(OpenError::UnknownKey));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(keys.records.open(b"id-1", &sealed), Err(OpenError::Tampered));
        assert_eq!(keys.records.open(b"id-1", b"short"), Err(OpenError::Malformed));
    }

    #[test]
    fn rotation_second_secret_opens_rotated_out_secret_does_not() {
        let old = keys(&["old-secret-old-secret-old-secret-old"]);
        let sealed_with_old = old.records.seal(b"id", b"data").unwrap();
        let rotated = keys(&["new-secret-new-secret-new-secret-new", "old-secret-old-secret-old-secret-old"]);
        assert_eq!(rotated.records.open(b"id", &sealed_with_old).unwrap(), b"data");
        let new_only = keys(&["new-secret-new-secret-new-secret-new"]);
        assert_eq!(new_only.records.open(b"id", &sealed_with_old), Err(OpenError::UnknownKey));
    }

    #[test]
    fn names_are_keyed_hashes_first_secret_first() {
        let old = keys(&["old-secret-old-secret-old-secret-old"]);
        let rotated = keys(&["new-secret-new-secret-new-secret-new", "old-secret-old-secret-old-secret-old"]);
        let name = old.names.name(b"session-id");
        assert_eq!(name.len(), 64);
        assert!(!name.contains("session"));
        let names = rotated.names.names(b"session-id");
        assert_eq!(names.len(), 2);
        assert_ne!(names[0], name, "writes use the new secret");
        assert_eq!(names[1], name, "lookups find what the old secret named");
    }

    #[test]
    fn short_or_unversioned_values_are_malformed_and_an_empty_plaintext_round_trips() {
        let keys = keys(&["first-secret-first-secret-first-secret"]);
        let empty = keys.records.seal(b"id", b"").unwrap();
        assert_eq!(empty.len(), HEADER_LEN + TAG_LEN, "the shortest sealed value");
        assert_eq!(keys.records.open(b"id", &empty).unwrap(), b"");
        for short in [&[1u8, 0, 0][..], &[1u8; 20][..], &[1u8; HEADER_LEN + TAG_LEN - 1][..], &[][..]] {
            assert_eq!(keys.records.open(b"id", short), Err(OpenError::Malformed), "{} bytes", short.len());
        }
        let mut other_version = keys.records.seal(b"id", b"data").unwrap();
        other_version[0] = FORMAT_VERSION + 1;
        assert_eq!(keys.records.open(b"id", &other_version), Err(OpenError::Malformed));
    }

    #[test]
    fn debug_output_counts_keys_and_shows_none() {
        let keys = keys(&["first-secret-first-secret-first-secret", "second-secret-second-secret-second"]);
        let debug = format!("{keys:?}");
        assert!(debug.contains("Sealer(2 keys)") && debug.contains("KeyedNames(2 keys)"), "{debug}");
        assert!(!debug.contains("first-secret"), "{debug}");
    }

    #[test]
    fn without_secrets_keys_are_random_per_process() {
        let a = SessionKeys::from_secrets(&[]);
        let b = SessionKeys::from_secrets(&[]);
        assert!(a.ephemeral);
        assert_ne!(a.names.name(b"x"), b.names.name(b"x"));
    }
}
