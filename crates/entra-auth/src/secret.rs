//! Protocol secrets as types: they print `[REDACTED]` and are compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serializer};
use sha2::{Digest, Sha256};

/// A fresh random value of `bytes` bytes, base64url: state, nonce, PKCE verifier, CSRF token.
pub(crate) fn random_token(bytes: usize) -> SecretString {
    let mut buffer = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rngs::OsRng, buffer.as_mut_slice());
    SecretString::from(URL_SAFE_NO_PAD.encode(buffer))
}

/// The S256 PKCE challenge of a verifier (RFC 7636).
pub(crate) fn pkce_challenge(verifier: &SecretString) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()))
}

/// Compares two secrets without leaking where they differ (`subtle`; only the length, which is
/// public for every value compared here, may show).
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

/// Serde for `SecretString` fields of server-side records. The value is written out only into the
/// server-side session store (sealed at rest by the store), never into a cookie or a page.
pub(crate) mod serde_secret {
    use super::*;

    /// Writes the secret.
    pub(crate) fn serialize<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose_secret())
    }

    /// Reads the secret.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
        String::deserialize(deserializer).map(SecretString::from)
    }
}

/// Serde for `Option<SecretString>`.
pub(crate) mod serde_secret_option {
    use super::*;

    /// Writes the secret, if any.
    pub(crate) fn serialize<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => serializer.serialize_some(secret.expose_secret()),
            None => serializer.serialize_none(),
        }
    }

    /// Reads the secret, if any.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SecretString>, D::Error> {
        Option::<String>::deserialize(deserializer).map(|value| value.map(SecretString::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        let verifier = SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(pkce_challenge(&verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stored {
        #[serde(with = "serde_secret")]
        always: SecretString,
        #[serde(with = "serde_secret_option")]
        maybe: Option<SecretString>,
    }

    #[test]
    fn server_side_records_round_trip_their_secrets() {
        let stored = Stored { always: SecretString::from("a1"), maybe: Some(SecretString::from("m2")) };
        let json = serde_json::to_string(&stored).unwrap();
        assert_eq!(json, r#"{"always":"a1","maybe":"m2"}"#);
        let back: Stored = serde_json::from_str(&json).unwrap();
        assert_eq!(back.always.expose_secret(), "a1");
        assert_eq!(back.maybe.map(|m| m.expose_secret().to_owned()).as_deref(), Some("m2"));
        let none: Stored = serde_json::from_str(r#"{"always":"a1","maybe":null}"#).unwrap();
        assert!(none.maybe.is_none());
        assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"always":"a1","maybe":null}"#);
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }

    #[test]
    fn random_tokens_differ_and_debug_hides_them() {
        let a = random_token(32);
        let b = random_token(32);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 43);
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }
}
