//! Authorization data: app roles, groups (and the overage claim), users of other tenants, and
//! continuous access evaluation.

use base64::Engine;
use entra_emulator::{ALL_COMPANY_GROUP_ID, EmulatorConfig, GroupMembershipClaims, SALES_GROUP_ID, User};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

const CP1: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;
const OTHER_TENANT: Uuid = Uuid::from_u128(0xfab0_0000_0000_4000_8000_0000_0000_0001);
const MEGAN: &str = "megan@fabrikam.test";

/// Signs `upn` in through `request` and redeems the code, with `claims` on the token request.
async fn tokens_for(
    emulator: &entra_emulator::Emulator,
    request: AuthorizeRequest,
    upn: &str,
    password: &str,
    claims: Option<&str>,
) -> Value {
    tokens_in(&browser(), emulator, request, upn, password, claims).await
}

/// Like [`tokens_for`], in `browser` (whose SSO cookie carries over).
async fn tokens_in(
    browser: &reqwest::Client,
    emulator: &entra_emulator::Emulator,
    request: AuthorizeRequest,
    upn: &str,
    password: &str,
    claims: Option<&str>,
) -> Value {
    let authority = request.authority(emulator);
    let response = sign_in_as(browser, emulator, &request, upn, password).await;
    let code = query_param(&location(&response), "code").expect("a code");
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", request.verifier.as_str()),
    ];
    if let Some(claims) = claims {
        form.push(("claims", claims));
    }
    let (status, body) = token_request_at(&authority, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn id_token_claims(tokens: &Value) -> Value {
    claims_of(tokens["id_token"].as_str().expect("an ID token"))
}

async fn graph(url: &str, token: &str) -> reqwest::Response {
    http().get(url).bearer_auth(token).send().await.unwrap()
}

async fn admin_put(emulator: &entra_emulator::Emulator, path: &str, body: Value) -> StatusCode {
    http().put(format!("{}/_emulator{path}", emulator.base_url())).json(&body).send().await.unwrap().status()
}

#[tokio::test]
async fn id_tokens_carry_assigned_roles_and_security_groups() {
    let emulator = emulator().await;
    let tokens = tokens_for(&emulator, AuthorizeRequest::new(), ADELE, ADELE_PASSWORD, None).await;
    let claims = id_token_claims(&tokens);
    assert_eq!(claims["roles"], json!(["Reader"]));
    // SecurityGroup claims: Sales is a security group, All Company is not.
    assert_eq!(claims["groups"], json!([SALES_GROUP_ID]));
    assert!(claims.get("_claim_names").is_none());
    let mallory = tokens_for(&emulator, AuthorizeRequest::new(), MALLORY, "mallory-password", None).await;
    let claims = id_token_claims(&mallory);
    assert!(claims.get("roles").is_none() && claims.get("groups").is_none(), "{claims}");
}

#[tokio::test]
async fn above_the_limit_the_token_has_the_overage_claim_and_graph_pages_the_groups() {
    let emulator = emulator_with(|config: &mut EmulatorConfig| {
        config.group_overage_limit = 1;
        config.graph_page_size = 1;
        config.clients[0].group_membership_claims = GroupMembershipClaims::All;
    })
    .await;
    let tokens = tokens_for(&emulator, AuthorizeRequest::new(), ADELE, ADELE_PASSWORD, None).await;
    let claims = id_token_claims(&tokens);
    assert!(claims.get("groups").is_none(), "{claims}");
    assert_eq!(claims["_claim_names"], json!({ "groups": "src1" }));
    let endpoint = claims["_claim_sources"]["src1"]["endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("https://graph.windows.net/") && endpoint.ends_with("/getMemberObjects"));

    let token = tokens["access_token"].as_str().unwrap();
    let mut url = format!("{}/v1.0/me/transitiveMemberOf", emulator.graph_endpoint());
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = graph(&url, token).await.json().await.unwrap();
        pages += 1;
        for object in page["value"].as_array().unwrap() {
            assert_eq!(object["@odata.type"], "#microsoft.graph.group");
            ids.push(object["id"].as_str().unwrap().to_owned());
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 2, "one group per page");
    assert_eq!(ids, vec![SALES_GROUP_ID.to_string(), ALL_COMPANY_GROUP_ID.to_string()]);
}

#[tokio::test]
async fn memberships_and_roles_change_over_the_admin_api() {
    let emulator = emulator().await;
    assert_eq!(admin_put(&emulator, &format!("/users/{ADELE}/groups"), json!({ "groups": [] })).await, 204);
    assert_eq!(admin_put(&emulator, &format!("/users/{ADELE}/app-roles"), json!({ "roles": ["Admin"] })).await, 204);
    let tokens = tokens_for(&emulator, AuthorizeRequest::new(), ADELE, ADELE_PASSWORD, None).await;
    let claims = id_token_claims(&tokens);
    assert!(claims.get("groups").is_none(), "{claims}");
    assert_eq!(claims["roles"], json!(["Admin"]));
    let url = format!("{}/v1.0/me/transitiveMemberOf", emulator.graph_endpoint());
    let page: Value = graph(&url, tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(page["value"], json!([]));

    let unknown = json!({ "groups": [Uuid::new_v4()] });
    assert_eq!(admin_put(&emulator, &format!("/users/{ADELE}/groups"), unknown).await, 400);
    assert_eq!(admin_put(&emulator, "/users/nobody@emulator.test/groups", json!({ "groups": [] })).await, 404);
}

fn with_megan(config: &mut EmulatorConfig) {
    config.users.push(User { tenant_id: Some(OTHER_TENANT), ..User::new(MEGAN, "megan-password", "Megan Bowen") });
}

#[tokio::test]
async fn a_user_of_another_tenant_signs_in_through_common_with_her_own_tid_and_issuer() {
    let emulator = emulator_with(with_megan).await;
    let browser = browser();
    // At the emulator's own tenant she does not exist (AADSTS50020), so no code is issued.
    let page = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap().text().await.unwrap();
    let ctx = hidden_input(&page, "ctx").unwrap();
    let login = format!("{}/login", emulator.authority());
    let refused =
        post_form(&browser, &login, &[("ctx", &ctx), ("loginfmt", MEGAN), ("passwd", "megan-password")]).await;
    assert_eq!(refused.status(), StatusCode::OK, "the sign-in page again, no redirect with a code");
    assert!(refused.text().await.unwrap().contains("AADSTS50020"));

    let tokens =
        tokens_for(&emulator, AuthorizeRequest::new().at_tenant("organizations"), MEGAN, "megan-password", None).await;
    let claims = id_token_claims(&tokens);
    assert_eq!(claims["tid"], OTHER_TENANT.to_string());
    assert_eq!(claims["iss"], format!("{}/{OTHER_TENANT}/v2.0", emulator.base_url()));
    let token = tokens["access_token"].as_str().unwrap();
    let me = graph(&format!("{}/v1.0/me", emulator.graph_endpoint()), token).await;
    assert_eq!(me.status(), StatusCode::OK, "Graph accepts her tenant's tokens");

    let discovery: Value = http()
        .get(format!("{}/v2.0/.well-known/openid-configuration", authority_at(&emulator, &OTHER_TENANT.to_string())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("{}/{OTHER_TENANT}/v2.0", emulator.base_url()));
}

#[tokio::test]
async fn revoking_a_user_challenges_cae_capable_tokens_at_once_and_ends_single_sign_on() {
    let emulator = emulator().await;
    let me_url = format!("{}/v1.0/me", emulator.graph_endpoint());
    let browser = browser();
    let capable = tokens_in(&browser, &emulator, AuthorizeRequest::new(), ADELE, ADELE_PASSWORD, Some(CP1)).await;
    let capable_token = capable["access_token"].as_str().unwrap();
    assert_eq!(claims_of(capable_token)["xms_cc"], json!(["cp1"]));
    let plain = tokens_for(&emulator, AuthorizeRequest::new(), ADELE, ADELE_PASSWORD, None).await;
    let plain_token = plain["access_token"].as_str().unwrap();
    assert!(claims_of(plain_token).get("xms_cc").is_none());
    assert_eq!(graph(&me_url, capable_token).await.status(), StatusCode::OK);
    let before = browser.get(AuthorizeRequest::new().url(&emulator)).send().await.unwrap();
    assert_eq!(before.status(), StatusCode::FOUND, "single sign-on: a code without a password");

    let revoked = http().post(format!("{}/_emulator/users/{ADELE}/revoke", emulator.base_url())).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);

    let challenged = graph(&me_url, capable_token).await;
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    let header = challenged.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(header.contains(r#"error="insufficient_claims""#), "{header}");
    let encoded = header.split("claims=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let challenge: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(challenge["access_token"]["nbf"]["essential"], true);
    // Without the capability, a token lives on until it expires, as on Entra.
    assert_eq!(graph(&me_url, plain_token).await.status(), StatusCode::OK);

    // The SSO session ended too: the same browser now gets the sign-in page, not a code.
    let request = AuthorizeRequest::new().set("claims", &challenge.to_string());
    let page = browser.get(request.url(&emulator)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "no code without signing in again");
    assert!(page.text().await.unwrap().contains("name=\"loginfmt\""));
    let fresh = tokens_in(&browser, &emulator, request, ADELE, ADELE_PASSWORD, Some(CP1)).await;
    let fresh_token = fresh["access_token"].as_str().unwrap();
    assert_eq!(graph(&me_url, fresh_token).await.status(), StatusCode::OK, "a token after the revocation works");
}

#[tokio::test]
async fn groups_roles_and_tenants_load_from_json_and_toml_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("directory.json");
    std::fs::write(
        &json,
        r#"{"groups":[{"id":"00000000-0000-4000-8000-0000000000aa","displayName":"Ops","securityEnabled":false}],
            "users":[{"userPrincipalName":"o@x.test","password":"p","displayName":"O",
                      "tenantId":"fab00000-0000-4000-8000-000000000001",
                      "groups":["00000000-0000-4000-8000-0000000000aa"],"appRoles":["Admin"]}]}"#,
    )
    .unwrap();
    let directory = entra_emulator::load_directory(&json).unwrap();
    let groups = directory.groups.unwrap();
    assert_eq!((groups[0].display_name.as_str(), groups[0].security_enabled), ("Ops", false));
    assert_eq!(directory.users[0].tenant_id, Some(OTHER_TENANT));
    assert_eq!(directory.users[0].app_roles, vec!["Admin"]);

    let toml = dir.path().join("directory.toml");
    std::fs::write(
        &toml,
        "[[groups]]\nid = \"00000000-0000-4000-8000-0000000000bb\"\ndisplayName = \"Dev\"\n\n[[users]]\nuserPrincipalName = \"d@x.test\"\npassword = \"p\"\ndisplayName = \"D\"\ngroups = [\"00000000-0000-4000-8000-0000000000bb\"]\n",
    )
    .unwrap();
    let directory = entra_emulator::load_directory(&toml).unwrap();
    assert!(directory.groups.unwrap()[0].security_enabled, "security-enabled unless said otherwise");
    assert_eq!(directory.users[0].groups.len(), 1);

    // A user in a group the directory does not have stops the emulator with the group named.
    let unknown = Uuid::new_v4();
    let mut config = EmulatorConfig::default();
    config.users[0].groups.push(unknown);
    let err = entra_emulator::Emulator::start(config).await.err().unwrap().to_string();
    assert!(err.contains(&unknown.to_string()), "{err}");
}
