//! An application's own tokens (the client credentials grant), as a daemon or a background job
//! gets them with MSAL's `acquire_token_for_client`: for one resource's `/.default`, with the
//! application permissions granted to it in `roles`, and the errors Entra gives otherwise.

use entra_emulator::{AccessTokenVersion, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use reqwest::StatusCode;

use crate::helpers::*;

fn api() -> String {
    format!("api://{DEFAULT_CLIENT_ID}")
}

async fn for_client(emulator: &entra_emulator::Emulator, scope: &str) -> (StatusCode, serde_json::Value) {
    token_request(emulator, &[("grant_type", "client_credentials"), ("scope", scope)]).await
}

/// The emulator's API asked who calls, with the access token of the token response `body`.
async fn api_me(emulator: &entra_emulator::Emulator, body: &serde_json::Value) -> reqwest::Response {
    let url = format!("{}/me", emulator.api_endpoint(&client_id()));
    http().get(url).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap()
}

#[tokio::test]
async fn an_application_gets_a_token_of_its_own_with_the_roles_granted_on_that_resource() {
    let emulator = emulator_with(|config| {
        config.clients[0].application_permissions =
            vec![format!("{}/Orders.Read.All", api()), "https://graph.microsoft.com/User.Read.All".into()];
    })
    .await;
    let (status, body) = for_client(&emulator, &format!("{}/.default", api())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none(), "no user, nothing to renew: {body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], api());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["appid"], client_id());
    assert_eq!(claims["appidacr"], "1", "a secret");
    let service_principal = emulator.service_principal_id(&client_id()).to_string();
    assert_eq!(
        (claims["oid"].as_str(), claims["sub"].as_str()),
        (Some(&*service_principal), Some(&*service_principal))
    );
    assert_eq!(claims["roles"], serde_json::json!(["Orders.Read.All"]), "this resource's permissions only");
    assert!(claims.get("scp").is_none() && claims.get("upn").is_none(), "no user: {claims}");
    assert_eq!(claims["tid"], emulator.tenant_id().to_string());
    assert_eq!(claims["iss"], format!("https://sts.windows.net/{}/", emulator.tenant_id()));

    // The emulator's API takes it: an application permission stands for the delegated one.
    let me = api_me(&emulator, &body).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(
        (&me["oid"], &me["roles"]),
        (&serde_json::json!(service_principal), &serde_json::json!(["Orders.Read.All"]))
    );

    let (status, body) = for_client(&emulator, "https://graph.microsoft.com/.default").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let graph = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(graph["aud"], "https://graph.microsoft.com");
    assert_eq!(graph["roles"], serde_json::json!(["User.Read.All"]));
}

#[tokio::test]
async fn an_api_asking_for_v2_tokens_gets_them_for_applications_too() {
    let emulator = emulator_with(|config| {
        config.clients[0].requested_access_token_version = AccessTokenVersion::V2;
    })
    .await;
    let (status, body) = for_client(&emulator, &format!("{}/.default", api())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["aud"], client_id());
    assert_eq!(claims["azp"], client_id());
    assert_eq!(claims["azpacr"], "1");
    assert_eq!(claims["iss"], format!("{}/v2.0", emulator.authority()));
    assert!(claims.get("roles").is_none(), "none granted: {claims}");
    // Without an application permission, the API refuses the application.
    assert_eq!(api_me(&emulator, &body).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn what_entra_refuses_the_emulator_refuses() {
    let emulator = emulator().await;
    for scope in
        ["User.Read", "openid", &format!("{}/access_as_user", api()), &format!("{0}/.default {0}/.default", api()), ""]
    {
        let (status, body) = for_client(&emulator, scope).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope}: {body}");
        assert_entra_error(&body, "invalid_scope", 1002012);
    }
    let unknown = format!("api://{}/.default", uuid::Uuid::new_v4());
    let (_, body) = for_client(&emulator, &unknown).await;
    assert_entra_error(&body, "invalid_resource", 500011);
    // Not at a multi-tenant authority: which tenant would the token be for?
    let organizations = authority_at(&emulator, "organizations");
    let scope = format!("{}/.default", api());
    let (_, body) = token_request_at(&organizations, &[("grant_type", "client_credentials"), ("scope", &scope)]).await;
    assert_entra_error(&body, "invalid_request", 50059);
    // Without its secret an application is nobody.
    let form = [("client_id", client_id()), ("grant_type", "client_credentials".into()), ("scope", scope.clone())];
    let response = http().post(token_url(&emulator)).form(&form).send().await.unwrap();
    assert_entra_error(&response.json().await.unwrap(), "invalid_client", 7000218);
    let wrong = [
        ("client_id", client_id()),
        ("client_secret", format!("{DEFAULT_CLIENT_SECRET}x")),
        ("grant_type", "client_credentials".into()),
        ("scope", scope),
    ];
    let response = http().post(token_url(&emulator)).form(&wrong).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_application_with_a_membership_permission_reads_any_users_groups_in_graph() {
    let emulator = emulator_with(|config| {
        config.clients[0].application_permissions = vec!["https://graph.microsoft.com/GroupMember.Read.All".into()];
    })
    .await;
    let (_, body) = for_client(&emulator, "https://graph.microsoft.com/.default").await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let adele = emulator.user_object_id(ADELE).unwrap();
    let graph = emulator.graph_endpoint();
    let get = |path: String, token: String| {
        let url = format!("{graph}{path}");
        async move { http().get(url).bearer_auth(token).send().await.unwrap() }
    };
    // Page by page (one object each), by object id or sign-in name.
    let mut groups = Vec::new();
    let mut next = Some(format!("{}/v1.0/users/{adele}/transitiveMemberOf?$top=1", emulator.graph_endpoint()));
    while let Some(url) = next {
        let page: serde_json::Value = http().get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        groups.extend(page["value"].as_array().unwrap().iter().map(|object| object["id"].as_str().unwrap().to_owned()));
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert!(groups.contains(&entra_emulator::SALES_GROUP_ID.to_string()), "{groups:?}");
    let by_name = get(format!("/v1.0/users/{ADELE}/transitiveMemberOf"), token.clone()).await;
    assert_eq!(by_name.status(), StatusCode::OK);
    let unknown = get(format!("/v1.0/users/{}/transitiveMemberOf", uuid::Uuid::new_v4()), token.clone()).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // An application's token has no `/me`.
    let me = get("/v1.0/me".into(), token).await;
    assert_eq!(me.status(), StatusCode::BAD_REQUEST);

    // Without the permission, Graph refuses; so it does a user's token without one.
    let plain = emulator_with(|_| {}).await;
    let (_, body) = for_client(&plain, "https://graph.microsoft.com/.default").await;
    let response = http()
        .get(format!("{}/v1.0/users/{adele}/transitiveMemberOf", plain.graph_endpoint()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
