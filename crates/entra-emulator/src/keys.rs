//! The tenant's token-signing keys and the JWKS that publishes them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// One RSA key pair with its key id.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    /// Signs with `ring`, several times faster than the pure-Rust RSA behind `jsonwebtoken`'s
    /// `rust_crypto` backend: signing is most of what a sign-in costs the emulator.
    signer: RsaKeyPair,
    pub(crate) decoding: DecodingKey,
    public: RsaPublicKey,
    /// The SPKI PEM of the public key: what an HS256 "key confusion" attacker would use.
    pub(crate) public_pem: String,
    /// A self-signed certificate of the key, DER (`x5c`), as Entra publishes its keys.
    certificate_der: Vec<u8>,
}

impl SigningKey {
    /// Generates a fresh 2048-bit key, as Entra's keys are.
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let public = RsaPublicKey::from(&private);
        let public_pem = public.to_public_key_pem(LineEnding::LF)?;
        let pkcs8 = private.to_pkcs8_der()?;
        let signer = RsaKeyPair::from_pkcs8(pkcs8.as_bytes())
            .map_err(|err| anyhow::anyhow!("ring refused the generated key: {err}"))?;
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_bytes().into(), &rcgen::PKCS_RSA_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "accounts.accesscontrol.windows.net");
        let certificate_der = params.self_signed(&key_pair)?.der().to_vec();
        // Entra's key id is the certificate's thumbprint (`kid` = `x5t`).
        let kid = URL_SAFE_NO_PAD.encode(Sha1::digest(&certificate_der));
        Ok(Self {
            kid,
            signer,
            decoding: DecodingKey::from_rsa_pem(public_pem.as_bytes())?,
            public,
            public_pem,
            certificate_der,
        })
    }

    /// The RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256) of a JWT's signing input, base64url.
    pub(crate) fn sign_rs256(&self, signing_input: &[u8]) -> anyhow::Result<String> {
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input, &mut signature)
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(URL_SAFE_NO_PAD.encode(signature))
    }

    /// The key as Entra's JWKS shows it: no `alg`; `x5t`, `x5c` and the `issuer` it signs for.
    fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(self.public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(self.public.e().to_bytes_be()),
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.certificate_der)],
            "issuer": issuer,
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

    /// The published keys, each with `issuer` (a tenant's, or the `{tenantid}` template).
    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        json!({ "keys": self.keys.iter().rev().map(|key| key.jwk(issuer)).collect::<Vec<_>>() })
    }
}
