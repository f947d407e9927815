//! Where and how the app listens: `PORT`, `BIND_ADDRESS`, `TRUST_FORWARDED_HEADERS`, and the
//! limits a client may cost the server (not settings).

use std::net::IpAddr;
use std::time::Duration;

use crate::config::problems::Problems;
use crate::config::settings::Settings;

/// Where and how the app listens.
#[derive(Debug)]
pub struct ListenerConfig {
    /// `BIND_ADDRESS`.
    pub bind_address: IpAddr,
    /// `PORT`.
    pub port: u16,
    /// `TRUST_FORWARDED_HEADERS`.
    pub trust_forwarded_headers: bool,
    /// Not settings: how long connections may take and how many there may be.
    pub server_limits: ServerLimits,
}

/// What a client may cost the server before it is cut off, and what it may open.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// A client must send its whole request head within this (slowloris). The timer starts
    /// whenever a connection waits for a request head, so it also closes idle kept-alive
    /// connections.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// HTTP/2 clients may open WebSockets (RFC 8441's `SETTINGS_ENABLE_CONNECT_PROTOCOL` is
    /// offered): in proxy mode, for the app behind; our own routes have none.
    pub websockets_over_http2: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections: 1024, websockets_over_http2: false }
    }
}

pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<ListenerConfig> {
    let port = match settings.port.trim().parse::<u16>() {
        Ok(port) => Some(port),
        Err(_) => {
            problems.add("PORT", format!("'{}' is not a port number (0-65535).", settings.port));
            None
        }
    };
    let bind_address = match settings.bind_address.trim().parse::<IpAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.add(
                "BIND_ADDRESS",
                format!("'{}' is not an IP address; use 0.0.0.0 (all interfaces) or 127.0.0.1.", settings.bind_address),
            );
            None
        }
    };
    let trust_forwarded_headers = problems.boolean("TRUST_FORWARDED_HEADERS", &settings.trust_forwarded_headers);
    Some(ListenerConfig {
        bind_address: bind_address?,
        port: port?,
        trust_forwarded_headers,
        server_limits: ServerLimits::default(),
    })
}
