//! Microsoft Graph: `GET /v1.0/me` and the photo, over the shared client, honouring `Retry-After`
//! on 429/503 within a bounded number of retries and total wait. See `docs/ENTRA.md`, "Microsoft Graph".

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// At most this many retries of one throttled call.
const MAX_RETRIES: u32 = 3;
/// At most this much waiting for `Retry-After` across the retries of one call.
const MAX_TOTAL_WAIT: Duration = Duration::from_secs(8);
/// Without `Retry-After`, back off exponentially from this.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// At most this many pages of group memberships are read (100 objects each by default): a user in
/// more groups than that is refused rather than half-resolved.
pub const MAX_MEMBERSHIP_PAGES: usize = 200;

/// The profile fields the app shows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Graph user id (equals the `oid` claim).
    pub id: String,
    /// Full name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Email; null for many accounts.
    #[serde(default)]
    pub mail: Option<String>,
    /// Sign-in name.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// First name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub surname: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
}

impl Profile {
    /// The address to show: `mail`, else the `userPrincipalName`.
    pub fn email(&self) -> Option<&str> {
        self.mail.as_deref().or(self.user_principal_name.as_deref())
    }
}

/// A photo's bytes and content type.
pub struct Photo {
    /// `image/jpeg`, `image/png`...
    pub content_type: String,
    /// The image.
    pub bytes: Vec<u8>,
}

/// Why a Graph call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// 401: the token is not accepted; `claims` carries a claims challenge when Graph sent one.
    #[error("Graph refused the access token (401)")]
    Unauthorized {
        /// The decoded `claims` of a `WWW-Authenticate` challenge.
        claims: Option<String>,
    },
    /// 403: a permission is missing.
    #[error("Graph denied access (403)")]
    Forbidden,
    /// 404.
    #[error("Graph found no such resource (404)")]
    NotFound,
    /// Still throttled after the bounded retries.
    #[error("Graph is throttling requests (HTTP {status}) and did not recover within the retry budget")]
    Throttled {
        /// 429 or 503.
        status: u16,
    },
    /// Any other error status.
    #[error("Graph answered HTTP {status} ({code})")]
    Status {
        /// HTTP status.
        status: u16,
        /// Graph's error code.
        code: String,
    },
    /// No answer.
    #[error("cannot reach Graph: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// An answer we cannot read.
    #[error("Graph answered something that is not the expected JSON")]
    Malformed,
    /// A page of results pointed somewhere that is not this Graph endpoint (the token is never
    /// sent there), or there were more than [`MAX_MEMBERSHIP_PAGES`] pages.
    #[error("Graph's paging did not stay on the Graph endpoint within {MAX_MEMBERSHIP_PAGES} pages")]
    BadPaging,
}

/// One page of a directory object collection.
#[derive(Deserialize)]
struct DirectoryObjectPage {
    value: Vec<DirectoryObject>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct DirectoryObject {
    #[serde(rename = "@odata.type", default)]
    odata_type: String,
    id: String,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorDetail,
}

#[derive(Deserialize)]
struct GraphErrorDetail {
    code: String,
}

/// Graph over the shared client.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    endpoint: Url,
}

impl GraphClient {
    /// `endpoint` is the Graph base, e.g. `https://graph.microsoft.com`.
    pub fn new(http: reqwest::Client, endpoint: Url) -> Self {
        Self { http, endpoint }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.as_str().trim_end_matches('/'))
    }

    /// `GET /v1.0/me`.
    pub async fn me(&self, token: &SecretString) -> Result<Profile, GraphError> {
        let response = self.get(&self.url("/v1.0/me"), token).await?;
        response.json::<Profile>().await.map_err(|_| GraphError::Malformed)
    }

    /// `GET {endpoint}{path}` as JSON, with Graph's handling of throttling and claims challenges:
    /// what [`crate::axum::DownstreamApi`] uses for any API.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: &SecretString,
    ) -> Result<T, GraphError> {
        let response = self.get(&self.url(path), token).await?;
        response.json::<T>().await.map_err(|_| GraphError::Malformed)
    }

    /// `POST {endpoint}{path}` with `body` as JSON, the answer parsed as JSON; throttling and
    /// claims challenges as for [`Self::get_json`].
    pub async fn post_json<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        token: &SecretString,
    ) -> Result<T, GraphError> {
        let json = serde_json::to_vec(body).map_err(|_| GraphError::Malformed)?;
        let response = self.send(reqwest::Method::POST, &self.url(path), token, Some(&json)).await?;
        response.json::<T>().await.map_err(|_| GraphError::Malformed)
    }

    /// The subjects of the signed-in user's `top` most recent messages (`Mail.Read`).
    pub async fn recent_message_subjects(&self, token: &SecretString, top: u8) -> Result<Vec<String>, GraphError> {
        #[derive(Deserialize)]
        struct Messages {
            value: Vec<Message>,
        }
        #[derive(Deserialize)]
        struct Message {
            #[serde(default)]
            subject: Option<String>,
        }
        let path =
            format!("/v1.0/me/messages?$top={top}&$select=subject,receivedDateTime&$orderby=receivedDateTime%20desc");
        let messages: Messages = self.get_json(&path, token).await?;
        Ok(messages.value.into_iter().map(|message| message.subject.unwrap_or_default()).collect())
    }

    /// The object ids of every group the signed-in user is a member of, directly or through nested
    /// groups: `GET /v1.0/me/transitiveMemberOf`, every page (`User.Read` suffices). Pages are
    /// followed only on this Graph endpoint's origin, so the token goes nowhere else.
    pub async fn member_group_ids(&self, token: &SecretString) -> Result<Vec<String>, GraphError> {
        self.group_ids_from(self.url("/v1.0/me/transitiveMemberOf"), token).await
    }

    /// The same for any user, by object id: `GET /v1.0/users/{id}/transitiveMemberOf`, with a
    /// token holding a membership permission (the app's own with `GroupMember.Read.All`, as
    /// [`EntraClient::user_group_ids`](crate::EntraClient::user_group_ids) gets it).
    pub async fn user_group_ids(&self, token: &SecretString, user: uuid::Uuid) -> Result<Vec<String>, GraphError> {
        self.group_ids_from(self.url(&format!("/v1.0/users/{user}/transitiveMemberOf")), token).await
    }

    async fn group_ids_from(&self, first_page: String, token: &SecretString) -> Result<Vec<String>, GraphError> {
        let mut url = first_page;
        let mut ids = Vec::new();
        for _ in 0..MAX_MEMBERSHIP_PAGES {
            let page: DirectoryObjectPage =
                self.get(&url, token).await?.json().await.map_err(|_| GraphError::Malformed)?;
            let groups = page.value.into_iter().filter(|object| object.odata_type == "#microsoft.graph.group");
            ids.extend(groups.map(|group| group.id));
            match page.next_link {
                None => return Ok(ids),
                Some(next) if self.is_on_endpoint(&next) => url = next,
                Some(_) => return Err(GraphError::BadPaging),
            }
        }
        Err(GraphError::BadPaging)
    }

    /// Whether `url` is on this Graph endpoint (same scheme, host and port, under its path).
    fn is_on_endpoint(&self, url: &str) -> bool {
        let Ok(url) = Url::parse(url) else { return false };
        let root = self.endpoint.path().trim_end_matches('/');
        let under_root = url.path().strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        url.origin() == self.endpoint.origin() && under_root
    }

    /// `GET /v1.0/me/photo/$value`; `Ok(None)` when the user has no photo, or when it is not a
    /// JPEG, PNG or GIF: served from our origin, anything else (SVG with script, HTML) would be
    /// content an attacker with a profile photo could run on our site.
    pub async fn photo(&self, token: &SecretString) -> Result<Option<Photo>, GraphError> {
        let response = match self.get(&self.url("/v1.0/me/photo/$value"), token).await {
            Ok(response) => response,
            Err(GraphError::NotFound) => return Ok(None),
            Err(err) => return Err(err),
        };
        let declared = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let Some(content_type) = declared.and_then(raster_image_type) else {
            tracing::warn!(content_type = declared.unwrap_or("-"), "Graph photo of an unexpected type: not served");
            return Ok(None);
        };
        let content_type = content_type.to_owned();
        let bytes = response.bytes().await.map_err(GraphError::Unreachable)?.to_vec();
        Ok(Some(Photo { content_type, bytes }))
    }

    async fn get(&self, url: &str, token: &SecretString) -> Result<reqwest::Response, GraphError> {
        self.send(reqwest::Method::GET, url, token, None).await
    }

    /// One call, retried on 429/503 within the budget (a JSON body is sent again each time).
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &SecretString,
        json: Option<&[u8]>,
    ) -> Result<reqwest::Response, GraphError> {
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let mut request = self.http.request(method.clone(), url).bearer_auth(token.expose_secret());
            if let Some(json) = json {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(json.to_vec());
            }
            let sent = request.send().await;
            metrics::histogram!("entra_graph_request_duration_seconds").record(started.elapsed().as_secs_f64());
            let response = match sent {
                Ok(response) => response,
                Err(err) => {
                    metrics::counter!("entra_graph_requests_total", "status" => "unreachable").increment(1);
                    return Err(GraphError::Unreachable(err));
                }
            };
            let status = response.status().as_u16();
            metrics::counter!("entra_graph_requests_total", "status" => status.to_string()).increment(1);
            if response.status().is_success() {
                return Ok(response);
            }
            if matches!(status, 429 | 503) {
                let wait = retry_after(&response).unwrap_or(FIRST_BACKOFF * 2u32.pow(attempt));
                // A huge Retry-After must not overflow: saturate, then it is simply over budget.
                if attempt >= MAX_RETRIES || waited.saturating_add(wait) > MAX_TOTAL_WAIT {
                    return Err(GraphError::Throttled { status });
                }
                tracing::info!(status, wait_ms = wait.as_millis() as u64, attempt, "Graph throttled; retrying");
                tokio::time::sleep(wait).await;
                waited += wait;
                attempt += 1;
                continue;
            }
            return Err(error_from(response).await);
        }
    }
}

/// The media type if it is one of the raster types we serve (parameters dropped).
fn raster_image_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    ["image/jpeg", "image/png", "image/gif"].into_iter().find(|allowed| *allowed == essence)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn error_from(response: reqwest::Response) -> GraphError {
    let status = response.status().as_u16();
    match status {
        401 => {
            let claims = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(claims_challenge);
            GraphError::Unauthorized { claims }
        }
        403 => GraphError::Forbidden,
        404 => GraphError::NotFound,
        _ => {
            let code = response
                .json::<GraphErrorBody>()
                .await
                .map(|body| body.error.code)
                .unwrap_or_else(|_| "unknown".to_owned());
            GraphError::Status { status, code }
        }
    }
}

/// The base64-decoded `claims="..."` of a `WWW-Authenticate: Bearer ...` challenge.
/// See `docs/ENTRA.md`, "Token endpoint errors" (claims challenge).
fn claims_challenge(header: &str) -> Option<String> {
    use base64::Engine;
    let start = header.find("claims=\"")? + "claims=\"".len();
    let end = header[start..].find('"')? + start;
    let encoded = &header[start..end];
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
        .ok()?;
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_challenge_is_decoded_from_www_authenticate() {
        let header = r#"Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ==""#;
        assert_eq!(claims_challenge(header).as_deref(), Some(r#"{"access_token":{}}"#));
        assert_eq!(claims_challenge("Bearer realm=\"\""), None);
    }

    #[test]
    fn email_falls_back_to_the_user_principal_name() {
        let profile: Profile =
            serde_json::from_str(r#"{"id":"1","displayName":"M","mail":null,"userPrincipalName":"m@x.test"}"#).unwrap();
        assert_eq!(profile.email(), Some("m@x.test"));
    }

    #[test]
    fn only_raster_photo_types_are_served() {
        assert_eq!(raster_image_type("image/jpeg"), Some("image/jpeg"));
        assert_eq!(raster_image_type("IMAGE/PNG; charset=binary"), Some("image/png"));
        assert_eq!(raster_image_type("image/gif"), Some("image/gif"));
        for refused in ["image/svg+xml", "text/html", "image/webp", "image/jpeg2", ""] {
            assert_eq!(raster_image_type(refused), None, "{refused}");
        }
    }
}
