//! Request ids are ours: every request gets a fresh one (`x-request-id`, set by the layer after
//! this one) that pages quote and logs carry. A client's own id is never trusted as ours; it is
//! kept as a separate log field only when short and plain (`[A-Za-z0-9-]`, at most 64), so it
//! cannot forge log lines or pages.

use axum::extract::Request;
use axum::response::Response;

const HEADER: &str = "x-request-id";
const MAX_CLIENT_ID_LEN: usize = 64;

/// The id a client sent, when it was fit to log.
#[derive(Clone, Debug)]
pub struct ClientRequestId(pub String);

/// Removes the client's `x-request-id` (so ours is generated) and keeps it aside if harmless.
/// A [`crate::guard::GuardLayer`] check: it never answers itself.
pub fn take_client_request_id<B>(request: &mut Request) -> Option<Response<B>> {
    if let Some(value) = request.headers_mut().remove(HEADER)
        && let Ok(text) = value.to_str()
        && is_plain(text)
    {
        request.extensions_mut().insert(ClientRequestId(text.to_owned()));
    }
    None
}

fn is_plain(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_CLIENT_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_client_ids_are_kept() {
        assert!(is_plain("3f1c9a2e-8b4d-4c6f"));
        for bad in ["", "a b", "x\ny", "<script>", &"a".repeat(65), "id=1"] {
            assert!(!is_plain(bad), "{bad:?}");
        }
    }
}
