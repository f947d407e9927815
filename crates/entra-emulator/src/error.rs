//! Error answers in the shapes Entra and Graph use, so clients parse them as they would the real ones.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use crate::clock;

/// An OAuth error from the token endpoint: `error`, `error_description` starting with the AADSTS
/// code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) code: u32,
    pub(crate) message: String,
    /// Entra's `suberror` (`consent_required`, `bad_token`...), when it sends one.
    pub(crate) suberror: Option<&'static str>,
}

impl OAuthError {
    pub(crate) fn new(error: &str, code: u32, message: impl Into<String>) -> Self {
        let status = if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        Self { status, error: error.to_owned(), code, message: message.into(), suberror: None }
    }

    /// With Entra's `suberror`.
    pub(crate) fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    pub(crate) fn invalid_request(code: u32, message: impl Into<String>) -> Self {
        Self::new("invalid_request", code, message)
    }

    pub(crate) fn invalid_grant(code: u32, message: impl Into<String>) -> Self {
        Self::new("invalid_grant", code, message)
    }

    pub(crate) fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Self::new("invalid_client", code, message)
    }

    /// What the personal-account (`consumers`) service answers an app that does not take
    /// personal accounts: its errors carry no AADSTS code.
    pub(crate) fn not_enabled_for_consumers() -> Self {
        Self::new(
            "unauthorized_client",
            0,
            "The client does not exist or is not enabled for consumers. If you are the application developer, configure a new application through the App Registrations in the Azure Portal.",
        )
    }

    /// `AADSTS50011: ...` with the trace and correlation ids appended, as Entra writes it.
    pub(crate) fn description(&self, trace_id: Uuid, correlation_id: Uuid, timestamp: &str) -> String {
        if self.code == 0 {
            return self.message.clone();
        }
        format!(
            "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
            self.code, self.message
        )
    }

    /// The query/form parameters sent back to a redirect URI for an authorize error.
    pub(crate) fn redirect_params(&self) -> Vec<(String, String)> {
        let trace_id = Uuid::new_v4();
        let correlation_id = Uuid::new_v4();
        let timestamp = clock::entra_timestamp();
        if self.code == 0 {
            return vec![
                ("error".to_owned(), self.error.clone()),
                ("error_description".to_owned(), self.message.clone()),
            ];
        }
        vec![
            ("error".to_owned(), self.error.clone()),
            ("error_description".to_owned(), self.description(trace_id, correlation_id, &timestamp)),
            ("error_codes".to_owned(), format!("[{}]", self.code)),
            ("timestamp".to_owned(), timestamp),
            ("trace_id".to_owned(), trace_id.to_string()),
            ("correlation_id".to_owned(), correlation_id.to_string()),
            ("error_uri".to_owned(), format!("https://login.microsoftonline.com/error?code={}", self.code)),
        ]
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let trace_id = Uuid::new_v4();
        let correlation_id = Uuid::new_v4();
        let timestamp = clock::entra_timestamp();
        if self.code == 0 {
            let body = json!({ "error": self.error, "error_description": self.message });
            return (self.status, [("cache-control", "no-store")], Json(body)).into_response();
        }
        let mut body = json!({
            "error": self.error,
            "error_description": self.description(trace_id, correlation_id, &timestamp),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let Some(suberror) = self.suberror {
            body["suberror"] = json!(suberror);
        }
        (self.status, [("cache-control", "no-store")], Json(body)).into_response()
    }
}

/// A Graph error: `{"error": {"code", "message", "innerError": {...}}}`.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl GraphError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into() }
    }

    pub(crate) fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let request_id = Uuid::new_v4();
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": clock::graph_date(),
                    "request-id": request_id,
                    "client-request-id": request_id,
                }
            }
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        response
    }
}
