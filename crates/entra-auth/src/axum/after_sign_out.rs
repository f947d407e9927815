//! Where the browser lands after signing out. Entra sends it back to the post-logout redirect URI,
//! by default the callback (already a registered redirect URI, so nothing more to register). A
//! callback with no `state`, `code` or `error` is that landing, and sends the browser on to the
//! page the sign-out asked for (`return_to`), kept meanwhile in a short-lived cookie, or else to
//! [`AuthRoutes::after_sign_out`](crate::axum::AuthRoutes::after_sign_out), as
//! Microsoft.Identity.Web's signed-out callback does. The cookie holds only a path of this site,
//! checked again when it is read.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::axum::own_cookies;
use crate::return_to::LocalPath;

const HTTP_NAME: &str = "entra-signed-out";
const HTTPS_NAME: &str = "__Host-entra-signed-out";
/// The cookie's name once `__Host-` is taken off.
pub(crate) const UNPREFIXED_NAME: &str = HTTP_NAME;
/// As long as someone may spend on Entra's sign-out pages (an account to pick, a confirmation).
const LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The after-sign-out cookie of a browser, over https or not.
pub(crate) struct AfterSignOut {
    /// Over https: `Secure` and the `__Host-` prefix.
    pub(crate) secure: bool,
}

impl AfterSignOut {
    fn name(&self) -> &'static str {
        if self.secure { HTTPS_NAME } else { HTTP_NAME }
    }

    /// The cookie that brings the browser to `return_to` once Entra has signed it out.
    pub(crate) fn remember(&self, return_to: &LocalPath) -> HeaderValue {
        own_cookies::set(self.name(), URL_SAFE_NO_PAD.encode(return_to.as_str()), LIFETIME, self.secure)
    }

    /// The path this browser asked to land on, if it holds the cookie and it reads as a path of
    /// this site; and the cookie's removal.
    pub(crate) fn take(&self, request: &HeaderMap) -> (Option<LocalPath>, Option<HeaderValue>) {
        let value = own_cookies::in_request(request)
            .find(|cookie| cookie.name() == self.name())
            .map(|cookie| cookie.value().to_owned());
        let Some(value) = value else { return (None, None) };
        let return_to = URL_SAFE_NO_PAD
            .decode(value)
            .ok()
            .and_then(|path| String::from_utf8(path).ok())
            .and_then(|path| LocalPath::parse(&path));
        (return_to, Some(own_cookies::removal(self.name(), self.secure)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::COOKIE;

    use super::*;

    fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&format!("other=1; {pair}")).unwrap());
        headers
    }

    #[test]
    fn the_path_round_trips_in_a_cookie_that_scripts_cannot_read() {
        let cookies = AfterSignOut { secure: true };
        let path = LocalPath::parse("/bye?from=a;b,c").unwrap();
        let set = cookies.remember(&path);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("__Host-entra-signed-out="), "{text}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=600"] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        let (taken, removal) = cookies.take(&request_with(&set));
        assert_eq!(taken.unwrap().as_str(), path.as_str());
        assert!(removal.unwrap().to_str().unwrap().contains("Max-Age=0"));
        assert_eq!(cookies.take(&HeaderMap::new()).0.map(|path| path.as_str().to_owned()), None);
        let plain = AfterSignOut { secure: false };
        assert!(plain.remember(&path).to_str().unwrap().starts_with("entra-signed-out="));
        assert!(plain.take(&request_with(&set)).0.is_none(), "the https cookie is not the http one");
    }

    #[test]
    fn a_value_that_is_not_a_path_of_this_site_leads_nowhere_and_is_removed() {
        let cookies = AfterSignOut { secure: false };
        for planted in ["//evil.example/", "https://evil.example/", "/\\evil.example", "not base64!"] {
            let value = if planted == "not base64!" { planted.to_owned() } else { URL_SAFE_NO_PAD.encode(planted) };
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, HeaderValue::from_str(&format!("entra-signed-out={value}")).unwrap());
            let (taken, removal) = cookies.take(&headers);
            assert!(taken.is_none(), "{planted}");
            assert!(removal.is_some(), "{planted}");
        }
    }
}
