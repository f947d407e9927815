//! The tenant's signing keys, cached. Entra rolls keys over, so the set is fetched again every
//! [`REFRESH_EVERY`] and when a token names a key we do not hold; unknown-`kid` refetches share
//! one global budget ([`MIN_REFETCH_INTERVAL`]) so a flood of forged tokens cannot become a flood
//! of requests to Entra. See `docs/ENTRA.md`, "ID token (v2)".

use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use url::Url;

/// The whole set is fetched again after this long, even if every `kid` is known (keys can be
/// withdrawn, not only added).
pub const REFRESH_EVERY: Duration = Duration::from_secs(86_400); // 24 hours
/// At most one refetch for an unknown `kid` per this interval, whatever the `kid`.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// One published key: the JWK and, for multi-tenant authorities, the issuer it signs for (the
/// `issuer` member Entra adds to each key, possibly with the `{tenantid}` template).
#[derive(Clone)]
pub struct SigningKey {
    /// The key.
    pub key: DecodingKey,
    /// Its `issuer` member, if published.
    pub issuer: Option<String>,
}

#[derive(Deserialize)]
struct RawKey {
    #[serde(flatten)]
    jwk: Jwk,
    #[serde(default)]
    issuer: Option<String>,
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

struct Fetched {
    keys: Vec<(Option<String>, RawKey)>,
    at: Instant,
}

/// The JWKS of one tenant.
pub struct JwksCache {
    http: reqwest::Client,
    uri: Url,
    keys: RwLock<Option<Fetched>>,
    /// One fetch at a time; when the last one was tried (success or not), for the budget.
    last_attempt: Mutex<Option<Instant>>,
    refresh_every: Duration,
    min_refetch_interval: Duration,
}

/// Why no key could be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
        Self::with_intervals(http, uri, REFRESH_EVERY, MIN_REFETCH_INTERVAL)
    }

    /// The same with other intervals (tests shorten them).
    pub fn with_intervals(
        http: reqwest::Client,
        uri: Url,
        refresh_every: Duration,
        min_refetch_interval: Duration,
    ) -> Self {
        Self { http, uri, keys: RwLock::new(None), last_attempt: Mutex::new(None), refresh_every, min_refetch_interval }
    }

    /// The RSA key with this `kid`.
    pub async fn key(&self, kid: &str) -> Result<SigningKey, JwksError> {
        if let Some((key, age)) = self.cached(kid).await
            && age < self.refresh_every
        {
            return key;
        }
        let mut last_attempt = self.last_attempt.lock().await;
        let age = self.keys.read().await.as_ref().map(|fetched| fetched.at.elapsed());
        let stale = age.is_none_or(|age| age >= self.refresh_every);
        let cached = self.cached(kid).await.map(|(key, _)| key);
        let within_budget = last_attempt.is_none_or(|at| at.elapsed() >= self.min_refetch_interval);
        // Never fetched: fetch. Otherwise a scheduled refresh (stale set) or an unknown kid, both
        // within the global budget; failed attempts count too, so an unreachable JWKS is not
        // hammered either. A known key of a current set needs nothing (someone else refreshed
        // while we waited).
        let fetch = age.is_none() || ((stale || cached.is_none()) && within_budget);
        if !fetch {
            return cached.unwrap_or_else(|| Err(JwksError::UnknownKey(kid.to_owned())));
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => *self.keys.write().await = Some(Fetched { keys, at: Instant::now() }),
            // A scheduled refresh that fails keeps the keys we have; a missing key cannot wait.
            Err(err) => return cached.unwrap_or(Err(err)),
        }
        match self.cached(kid).await {
            Some((key, _)) => key,
            None => Err(JwksError::UnknownKey(kid.to_owned())),
        }
    }

    async fn cached(&self, kid: &str) -> Option<(Result<SigningKey, JwksError>, Duration)> {
        let keys = self.keys.read().await;
        let fetched = keys.as_ref()?;
        let (_, raw) = fetched.keys.iter().find(|(k, _)| k.as_deref() == Some(kid))?;
        let key =
            DecodingKey::from_jwk(&raw.jwk).map(|key| SigningKey { key, issuer: raw.issuer.clone() }).map_err(|err| {
                JwksError::Unavailable { uri: self.uri.to_string(), reason: format!("key '{kid}' is unusable: {err}") }
            });
        Some((key, fetched.at.elapsed()))
    }

    async fn fetch(&self) -> Result<Vec<(Option<String>, RawKey)>, JwksError> {
        let unavailable = |reason: String| JwksError::Unavailable { uri: self.uri.to_string(), reason };
        let response = self.http.get(self.uri.clone()).send().await.map_err(|err| unavailable(err.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let set: RawKeySet = response.json().await.map_err(|err| unavailable(err.to_string()))?;
        // Keys of a type we cannot use (EC for other purposes, say) are skipped, not fatal.
        Ok(set
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<RawKey>(value).ok())
            .map(|raw| (raw.jwk.common.key_id.clone(), raw))
            .collect())
    }
}
