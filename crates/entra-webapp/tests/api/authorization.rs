//! Who may come in: app roles, groups (with the overage resolved through Graph, and again at each
//! refresh), the tenant allow-list, sign-in hints, and continuous access evaluation. Over TCP
//! against the emulator.

use std::time::Duration;

use entra_emulator::{ALL_COMPANY_GROUP_ID, GroupMembershipClaims, SALES_GROUP_ID, User};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

const OTHER_TENANT: Uuid = Uuid::from_u128(0xfab0_0000_0000_4000_8000_0000_0000_0001);
const MEGAN: &str = "megan@fabrikam.test";
const SHORT_LIFETIME: Duration = Duration::from_secs(2);

fn with_settings(change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static) -> Options {
    Options { settings_change: Some(Box::new(move |settings, _| change(settings))), ..Options::default() }
}

/// The 403 page of the app, saying which requirement failed.
async fn assert_access_denied(response: reqwest::Response, requirement: &str) -> String {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"access-denied\""), "the access-denied page: {html}");
    assert!(html.contains(&format!("<code id=\"requirement\">{requirement}</code>")), "{html}");
    html
}

#[tokio::test]
async fn a_required_role_lets_its_holders_in_and_shows_the_others_a_403_page_with_a_way_out() {
    let app = spawn_app_with(with_settings(|settings| settings.allowed_roles = Some("Reader,Admin".into()))).await;
    app.sign_in_adele().await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert!(profile.text().await.unwrap().contains("<dd id=\"profile-roles\">Reader</dd>"));

    let mallory = app.with_new_browser();
    let signed_in = mallory.sign_in(MALLORY, MALLORY_PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "signing in works; access is decided per page");
    let html = assert_access_denied(mallory.get("/profile").await, "role").await;
    assert!(html.contains("one of these roles, and your account has none: Reader, Admin"), "{html}");
    assert_access_denied(mallory.get("/").await, "role").await;
    assert_access_denied(mallory.get("/profile/photo").await, "role").await;

    // "Use another account" asks Entra for the account picker and comes back here.
    let switch = hidden_href(&html, "switch-account");
    assert_eq!(switch, "/login?prompt=select_account&return_to=%2Fprofile");
    let authorize = mallory.start_sign_in(&switch).await;
    assert_eq!(query_param(&authorize, "prompt").as_deref(), Some("select_account"));

    // The page's sign-out button works (no loop, no dead end).
    let csrf = hidden_input(&html, "csrf_token").unwrap();
    let signed_out = mallory.browser.post(mallory.url("/logout")).form(&[("csrf_token", csrf)]).send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(!mallory.is_signed_in().await);
}

/// The `href` of the element with this id (escaped `&` restored).
fn hidden_href(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" href=\"");
    let start = html.find(&marker).expect("the link") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&#38;", "&").replace("&amp;", "&").replace("&#x2f;", "/")
}

#[tokio::test]
async fn a_required_group_is_met_through_the_groups_claim() {
    let app =
        spawn_app_with(with_settings(|settings| settings.allowed_groups = Some(SALES_GROUP_ID.to_string()))).await;
    app.sign_in_adele().await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    let html = profile.text().await.unwrap();
    assert!(html.contains("<dd id=\"profile-groups\">1</dd>"), "from the token, no overage: {html}");

    let mallory = app.with_new_browser();
    mallory.sign_in(MALLORY, MALLORY_PASSWORD).await;
    let denied = assert_access_denied(mallory.get("/profile").await, "group").await;
    assert!(!denied.contains(&SALES_GROUP_ID.to_string()), "group ids are not shown to users");
}

/// Overage above one group, one group per Graph page, every group in claims.
fn overage(options: Options) -> Options {
    Options {
        emulator_setup: Some(Box::new(|config, client| {
            config.group_overage_limit = 1;
            config.graph_page_size = 1;
            client.group_membership_claims = GroupMembershipClaims::All;
        })),
        ..options
    }
}

#[tokio::test]
async fn a_groups_overage_is_resolved_through_graph_across_pages() {
    // All Company is only in Adele's memberships through Graph: the token carries no groups.
    let group = ALL_COMPANY_GROUP_ID.to_string();
    let app = spawn_app_with(overage(with_settings(move |settings| settings.allowed_groups = Some(group)))).await;
    app.sign_in_adele().await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    let html = profile.text().await.unwrap();
    assert!(
        html.contains("<dd id=\"profile-groups\">2 (more than a token can carry: read from Microsoft Graph)</dd>"),
        "{html}"
    );
}

#[tokio::test]
async fn group_changes_reach_access_at_the_next_refresh_without_signing_in_again() {
    let group = SALES_GROUP_ID.to_string();
    let app = spawn_app_with(overage(Options {
        access_token_lifetime: Some(SHORT_LIFETIME),
        ..with_settings(move |settings| settings.allowed_groups = Some(group))
    }))
    .await;
    app.sign_in_adele().await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);

    admin_put(&app, &format!("/users/{ADELE}/groups"), json!({ "groups": [ALL_COMPANY_GROUP_ID] })).await;
    tokio::time::sleep(SHORT_LIFETIME + Duration::from_millis(1200)).await;
    // The home page decides on memberships as fresh as the protected pages do.
    assert_access_denied(app.get("/").await, "group").await;
    assert_access_denied(app.get("/profile").await, "group").await;

    admin_put(&app, &format!("/users/{ADELE}/groups"), json!({ "groups": [SALES_GROUP_ID] })).await;
    tokio::time::sleep(SHORT_LIFETIME + Duration::from_millis(1200)).await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK, "and back, still without a new sign-in");
}

fn organizations_with_megan(
    allowed_tenants: impl FnOnce(&entra_emulator::Emulator) -> String + Send + 'static,
) -> Options {
    Options {
        emulator_setup: Some(Box::new(|config, _| {
            config
                .users
                .push(User { tenant_id: Some(OTHER_TENANT), ..User::new(MEGAN, "megan-password", "Megan Bowen") });
        })),
        settings_change: Some(Box::new(move |settings, emulator| {
            settings.tenant_id = Some("organizations".into());
            settings.allowed_tenants = Some(allowed_tenants(emulator));
        })),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_user_of_a_tenant_not_allowed_gets_a_403_page_and_no_session() {
    let app = spawn_app_with(organizations_with_megan(|emulator| emulator.tenant_id().to_string())).await;
    let megan = app.sign_in(MEGAN, "megan-password").await;
    assert_eq!(megan.status(), StatusCode::FORBIDDEN);
    let html = megan.text().await.unwrap();
    assert!(html.contains("This account cannot use this app"), "{html}");
    assert!(html.contains("href=\"/login?prompt=select_account\""), "{html}");
    assert!(!app.is_signed_in().await, "no session for her");

    // The home tenant's users still sign in through the same multi-tenant authority.
    let adele = app.with_new_browser();
    let response = adele.sign_in(ADELE, ADELE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(adele.is_signed_in().await);
}

#[tokio::test]
async fn with_star_every_tenant_may_sign_in_and_the_user_keeps_her_own_tenant() {
    let app = spawn_app_with(organizations_with_megan(|_| "*".to_owned())).await;
    let megan = app.sign_in(MEGAN, "megan-password").await;
    assert_eq!(megan.status(), StatusCode::SEE_OTHER);
    assert!(app.page("/").await.contains("Welcome Megan Bowen"));
}

#[tokio::test]
async fn sign_in_hints_reach_the_authorize_request_and_bad_ones_are_refused() {
    let app = spawn_app().await;
    let authorize = app
        .start_sign_in(
            "/login?login_hint=adele%40emulator.test&domain_hint=Emulator.test&prompt=login&return_to=%2Fprofile",
        )
        .await;
    assert_eq!(query_param(&authorize, "login_hint").as_deref(), Some(ADELE));
    assert_eq!(query_param(&authorize, "domain_hint").as_deref(), Some("emulator.test"));
    assert_eq!(query_param(&authorize, "prompt").as_deref(), Some("login"));
    // The emulator pre-fills the hinted account.
    let page = app.browser.get(&authorize).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("value=\"{ADELE}\"")), "{page}");

    for bad in [
        "login_hint=a%20b%40x.test",
        "login_hint=%22%3E%3Cscript%3E",
        &format!("login_hint={}", "a".repeat(255)),
        "domain_hint=evil.test%2Fx",
        "domain_hint=common",
        "prompt=none",
        "prompt=LOGIN",
    ] {
        let response = app.get(&format!("/login?{bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let html = response.text().await.unwrap();
        assert!(html.contains("This sign-in link is not valid"), "{bad}: {html}");
        assert!(html.contains("(400)"), "{bad}");
    }
}

#[tokio::test]
async fn with_continuous_access_evaluation_a_revoked_user_loses_graph_access_at_the_next_request() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);

    // The access token is valid for an hour more; revocation must not wait for it.
    let revoked =
        browser().post(format!("{}/_emulator/users/{ADELE}/revoke", app.emulator.base_url())).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let response = app.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "no profile data after the revocation");
    let login = location(&response);
    assert!(login.starts_with("/login?return_to=%2Fprofile&claims="), "{login}");

    // The challenge goes to Entra with cp1, and Entra wants the password again (no SSO left).
    let authorize = app.start_sign_in(&login).await;
    let claims: serde_json::Value = serde_json::from_str(&query_param(&authorize, "claims").unwrap()).unwrap();
    assert_eq!(claims["access_token"]["nbf"]["essential"], true);
    assert_eq!(claims["access_token"]["xms_cc"]["values"], json!(["cp1"]));
    let page = app.browser.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the sign-in page, not a code");
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let back = app.browser.get(callback).send().await.unwrap();
    assert_eq!(location(&back), "/profile");
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK, "access again after signing in again");
}

#[tokio::test]
async fn in_a_multi_tenant_app_front_channel_logout_ends_a_session_only_for_its_own_tenants_issuer() {
    let app = spawn_app_with(organizations_with_megan(|_| "*".to_owned())).await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, MEGAN, "megan-password", true).await;
    let sid = query_param(&callback, "session_state").expect("Entra's session id");
    let response = app.browser.get(&callback).send().await.unwrap();
    let cookie = cookie_pair(&set_cookie(&response, "session=").expect("a session"));
    let front_channel = |iss: &str| {
        let mut url = url::Url::parse(&app.url("/logout")).unwrap();
        url.query_pairs_mut().append_pair("sid", &sid).append_pair("iss", iss);
        url.to_string()
    };

    // Another tenant's issuer (an accepted one: the home tenant's) does not speak for her sid.
    let response = browser().get(front_channel(&app.emulator.issuer())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a front-channel logout, for nobody here");
    assert!(app.is_signed_in_with(&cookie).await, "another tenant's issuer ends nothing");
    // Her own tenant's issuer, the multi-tenant template filled in, does.
    let her_issuer = format!("{}/{OTHER_TENANT}/v2.0", app.emulator.base_url());
    let response = browser().get(front_channel(&her_issuer)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!app.is_signed_in_with(&cookie).await, "signed out");
}
