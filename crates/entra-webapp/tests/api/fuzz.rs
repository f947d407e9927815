//! Property tests (a bounded fuzz run; raise PROPTEST_CASES for a longer one): no callback query
//! and no session-record bytes make the app panic or answer 5xx.

use std::sync::OnceLock;

use entra_auth::SessionKeys;
use entra_webapp::sessions::decode_record;
use proptest::prelude::*;
use secrecy::SecretString;

use crate::helpers::*;

struct Shared {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    /// A live pending sign-in: its cookie (sent by hand on every case, so the callback's removal
    /// does not spend it) and its state (put in the query, so cases get past the state check).
    pending_cookie: String,
    state: String,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (app, pending_cookie, state) = runtime.block_on(async {
            let app = spawn_app().await;
            let login = browser().get(app.url("/login")).send().await.unwrap();
            let pending_cookie = cookie_pair(&set_cookie(&login, "entra-signin.").expect("a pending sign-in cookie"));
            let state = query_param(&location(&login), "state").expect("the state sent to Entra");
            (app, pending_cookie, state)
        });
        Shared { runtime, app, pending_cookie, state }
    })
}

fn query_part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("state".to_owned()),
        Just("code".to_owned()),
        Just("error".to_owned()),
        Just("error_description".to_owned()),
        Just("error_codes".to_owned()),
        "[a-z_]{1,12}",
        "\\PC{0,40}",
        "(%[0-9A-Fa-f]{2}){1,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn no_callback_query_panics_or_answers_5xx(pairs in proptest::collection::vec((query_part(), query_part()), 0..6), raw_tail in "\\PC{0,30}") {
        let shared = shared();
        let mut query: String = pairs.iter().map(|(k, v)| {
            let k: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            format!("{k}={v}")
        }).collect::<Vec<_>>().join("&");
        query.push('&');
        query.extend(raw_tail.chars().filter(|c| c.is_ascii_graphic() && *c != '#'));
        let response = shared.runtime.block_on(async {
            shared.app.browser.get(format!("{}/callback?{query}", shared.app.base_url)).send().await.unwrap()
        });
        let status = response.status();
        // With none of these it is where Entra sends the browser after sign-out: on, within the site.
        let parsed: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let landing = ["state", "code", "error"].iter().all(|name| !parsed.iter().any(|(k, _)| k == name));
        if landing {
            let to = location(&response);
            prop_assert!(status == 303 && to.starts_with('/') && !to.starts_with("//"), "{query} answered {status} to {to}");
        } else {
            prop_assert!(status.is_client_error(), "{query} answered {status}");
        }
    }

    /// With the right state and its cookie, what follows the state check is fuzzed: `error`,
    /// `error_description`, `error_codes` and `code` (redeemed at the emulator, which refuses it).
    #[test]
    fn past_the_state_check_no_callback_query_panics_or_answers_5xx(pairs in proptest::collection::vec((query_part(), query_part()), 0..5)) {
        let shared = shared();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("state", &shared.state);
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        let query = query.finish();
        let (status, page) = shared.runtime.block_on(async {
            let response = browser()
                .get(format!("{}/callback?{query}", shared.app.base_url))
                .header("cookie", &shared.pending_cookie)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        });
        prop_assert!(status.is_client_error(), "{query} answered {status}");
        prop_assert!(!page.contains("does not belong to a sign-in"), "{query} stopped at the state check");
    }

    #[test]
    fn no_session_record_bytes_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512), json in "\\PC{0,200}") {
        let keys = SessionKeys::from_secrets(&[SecretString::from("fuzz-secret-fuzz-secret-fuzz-secret-01".to_owned())]);
        prop_assert!(decode_record(&keys.records, "id", &bytes).is_none());
        // Sealed with the right key but not a record: still no session, no panic.
        let sealed = keys.records.seal(b"id", json.as_bytes()).unwrap();
        prop_assert!(decode_record(&keys.records, "id", &sealed).is_none());
    }
}
