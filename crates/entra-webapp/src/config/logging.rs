//! `LOG_FORMAT` and `RUST_LOG`.

use crate::config::problems::Problems;
use crate::config::settings::Settings;

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the logger needs.
#[derive(Debug)]
pub struct LoggingConfig {
    /// `LOG_FORMAT`.
    pub format: LogFormat,
    /// `RUST_LOG`.
    pub filter: String,
}

pub(crate) fn validate(settings: &Settings, problems: &mut Problems) -> Option<LoggingConfig> {
    let format = match settings.log_format.trim().to_ascii_lowercase().as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        other => {
            problems.add("LOG_FORMAT", format!("'{other}' is not a log format; use text or json."));
            None
        }
    };
    Some(LoggingConfig { format: format?, filter: settings.rust_log.clone() })
}
