//! The tenant's token-signing keys and the JWKS that publishes them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

/// One RSA key pair with its key id.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    public: RsaPublicKey,
    /// The SPKI PEM of the public key: what an HS256 "key confusion" attacker would use.
    pub(crate) public_pem: String,
}

impl SigningKey {
    /// Generates a fresh 2048-bit key, as Entra's keys are.
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let public = RsaPublicKey::from(&private);
        let private_pem = private.to_pkcs1_pem(LineEnding::LF)?;
        let public_pem = public.to_public_key_pem(LineEnding::LF)?;
        let kid = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>());
        Ok(Self {
            kid,
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes())?,
            decoding: DecodingKey::from_rsa_pem(public_pem.as_bytes())?,
            public,
            public_pem,
        })
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(self.public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(self.public.e().to_bytes_be()),
        })
    }
}

/// The active key signs; earlier keys stay published (as in an Entra key rollover) so tokens
/// they signed still verify.
pub(crate) struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    pub(crate) fn generate() -> anyhow::Result<Self> {
        Ok(Self { keys: vec![SigningKey::generate()?] })
    }

    pub(crate) fn active(&self) -> &SigningKey {
        // `keys` is never empty: built with one and only ever pushed to.
        &self.keys[self.keys.len() - 1]
    }

    pub(crate) fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// Makes a new key the signing key; the previous one stays published.
    pub(crate) fn rotate(&mut self, key: SigningKey) {
        self.keys.push(key);
        // Keep the published set small, like Entra's (a handful of keys).
        if self.keys.len() > 3 {
            self.keys.remove(0);
        }
    }

    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().rev().map(SigningKey::jwk).collect::<Vec<_>>() })
    }
}
