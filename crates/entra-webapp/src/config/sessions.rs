//! Where sessions live and how long: `SESSION_STORE`, `REDIS_PASSWORD`, `SESSION_SECRET`,
//! `MAX_SESSIONS`, `SESSION_IDLE_MINUTES`, `SESSION_MAX_HOURS`.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::config::problems::{Problems, is_loopback};
use crate::config::settings::Settings;

/// Where sessions live.
#[derive(Debug)]
pub enum SessionStoreConfig {
    /// In this process, at most this many.
    Memory {
        /// `MAX_SESSIONS`.
        max_sessions: usize,
    },
    /// In Redis at this URL (it may hold a password).
    Redis {
        /// `SESSION_STORE`, with `REDIS_PASSWORD` folded in.
        url: SecretString,
    },
}

/// Sessions: store, keys and lifetimes.
#[derive(Debug)]
pub struct SessionsConfig {
    /// `SESSION_SECRET`, split at commas (the first seals, all open); empty when unset.
    pub secrets: Vec<SecretString>,
    /// `SESSION_STORE`.
    pub store: SessionStoreConfig,
    /// `SESSION_IDLE_MINUTES`.
    pub idle: Duration,
    /// `SESSION_MAX_HOURS`.
    pub max_lifetime: Duration,
}

pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<SessionsConfig> {
    let secrets: Vec<SecretString> = match &settings.session_secret {
        Some(value) if !value.trim().is_empty() => match problems.resolved("SESSION_SECRET", value) {
            Some(value) => {
                let secrets: Vec<&str> = value.split(',').map(str::trim).collect();
                if secrets.iter().any(|s| s.len() < 32) {
                    problems.add(
                        "SESSION_SECRET",
                        "each comma-separated secret must be at least 32 characters; generate one with: openssl rand -base64 48",
                    );
                }
                secrets.into_iter().map(|s| SecretString::from(s.to_owned())).collect()
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    let max_sessions = match settings.max_sessions.trim().parse::<usize>() {
        Ok(limit) if limit > 0 => Some(limit),
        _ => {
            problems.add("MAX_SESSIONS", format!("'{}' is not a positive number.", settings.max_sessions));
            None
        }
    };
    let store = match problems.resolved("SESSION_STORE", settings.session_store.trim()) {
        Some(value) if value.eq_ignore_ascii_case("memory") => {
            max_sessions.map(|max_sessions| SessionStoreConfig::Memory { max_sessions })
        }
        Some(value) => redis(&value, settings, &secrets, problems),
        None => None,
    };
    let idle = match settings.session_idle_minutes.trim().parse::<u64>() {
        Ok(minutes) if minutes > 0 => Some(Duration::from_secs(minutes * 60)),
        _ => {
            problems.add(
                "SESSION_IDLE_MINUTES",
                format!("'{}' is not a positive number of minutes.", settings.session_idle_minutes),
            );
            None
        }
    };
    let max_lifetime = match settings.session_max_hours.trim().parse::<u64>() {
        Ok(hours) if (1..=24 * 90).contains(&hours) => Some(Duration::from_secs(hours * 3600)),
        _ => {
            problems.add(
                "SESSION_MAX_HOURS",
                format!("'{}' is not a number of hours from 1 to 2160 (90 days).", settings.session_max_hours),
            );
            None
        }
    };
    Some(SessionsConfig { secrets, store: store?, idle: idle?, max_lifetime: max_lifetime? })
}

/// A Redis `SESSION_STORE`: TLS unless on loopback, the password folded in, a secret required.
fn redis(
    value: &str,
    settings: &Settings,
    secrets: &[SecretString],
    problems: &mut Problems,
) -> Option<SessionStoreConfig> {
    let mut url = match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "redis" | "rediss") && url.host().is_some() => url,
        _ => {
            problems.add(
                "SESSION_STORE",
                "must be 'memory' or a Redis URL such as redis://localhost:6379 or rediss://<name>.redis.cache.windows.net:6380.",
            );
            return None;
        }
    };
    if url.scheme() == "redis" && !is_loopback(&url) {
        problems.add(
            "SESSION_STORE",
            format!(
                "'redis://' to {} would send sealed sessions and the Redis password in clear over the network; use rediss:// (TLS, port 6380 on Azure Cache for Redis). Plain redis:// is accepted for localhost only.",
                url.host_str().unwrap_or("the host")
            ),
        );
    }
    if let Some(password) = settings.redis_password.as_deref().filter(|p| !p.is_empty())
        && url.set_password(Some(password)).is_err()
    {
        problems.add("REDIS_PASSWORD", "cannot be combined with the SESSION_STORE URL.");
    }
    if secrets.is_empty() {
        problems.add(
            "SESSION_SECRET",
            "is required with a Redis SESSION_STORE: every instance must seal and open the same session records, across restarts. Generate one with: openssl rand -base64 48",
        );
    }
    Some(SessionStoreConfig::Redis { url: SecretString::from(url.to_string()) })
}
