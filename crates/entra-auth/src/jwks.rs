//! The tenant's signing keys, cached, refetched when a token names a key we have not seen (Entra
//! rolls keys over). See `ENTRA.md`, "ID token (v2)".

use std::collections::HashSet;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::{Mutex, RwLock};
use url::Url;

/// A `kid` already looked for in vain triggers at most one refetch per this interval, so a flood
/// of tokens naming it cannot turn into a flood of requests to Entra. A `kid` never seen before
/// always triggers one (that is a key rollover).
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The JWKS of one tenant.
pub struct JwksCache {
    http: reqwest::Client,
    uri: Url,
    keys: RwLock<Option<(JwkSet, Instant)>>,
    /// Kids missing from the current set; cleared at every fetch.
    refetch: Mutex<HashSet<String>>,
}

/// Why no key could be found.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The JWKS could not be fetched.
    #[error("cannot fetch the signing keys from {uri}: {reason}")]
    Unavailable {
        /// The JWKS URI.
        uri: String,
        /// What went wrong.
        reason: String,
    },
    /// The token names a key the tenant does not publish, even after a refetch.
    #[error("no signing key with kid '{0}'")]
    UnknownKey(String),
}

impl JwksCache {
    /// An empty cache for `uri`; keys are fetched on first use.
    pub fn new(http: reqwest::Client, uri: Url) -> Self {
        Self {
            http,
            uri,
            keys: RwLock::new(None),
            refetch: Mutex::new(HashSet::new()),
        }
    }

    /// The RSA key with this `kid`.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, JwksError> {
        if let Some(key) = self.cached(kid).await {
            return key;
        }
        // One fetch at a time; whoever waited finds the fresh set in the cache.
        let mut missing = self.refetch.lock().await;
        if let Some(key) = self.cached(kid).await {
            return key;
        }
        let recently_fetched = self
            .keys
            .read()
            .await
            .as_ref()
            .is_some_and(|(_, fetched)| fetched.elapsed() < MIN_REFETCH_INTERVAL);
        if !recently_fetched || !missing.contains(kid) {
            let set = self.fetch().await?;
            *self.keys.write().await = Some((set, Instant::now()));
            missing.clear();
        }
        match self.cached(kid).await {
            Some(key) => key,
            None => {
                missing.insert(kid.to_owned());
                Err(JwksError::UnknownKey(kid.to_owned()))
            }
        }
    }

    async fn cached(&self, kid: &str) -> Option<Result<DecodingKey, JwksError>> {
        let keys = self.keys.read().await;
        let (set, _) = keys.as_ref()?;
        let jwk = set.find(kid)?;
        Some(DecodingKey::from_jwk(jwk).map_err(|err| JwksError::Unavailable {
            uri: self.uri.to_string(),
            reason: format!("key '{kid}' is unusable: {err}"),
        }))
    }

    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        let unavailable = |reason: String| JwksError::Unavailable { uri: self.uri.to_string(), reason };
        let response = self
            .http
            .get(self.uri.clone())
            .send()
            .await
            .map_err(|err| unavailable(err.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        response.json::<JwkSet>().await.map_err(|err| unavailable(err.to_string()))
    }
}
