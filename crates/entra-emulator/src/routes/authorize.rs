//! `/{tenant}/oauth2/v2.0/authorize`: validate the request, then sign the user in (or reuse the
//! SSO session), ask for consent when needed, and send a code back to the redirect URI.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::claims_request;
use crate::config::{Platform, SignInAudience};
use crate::error::OAuthError;
use crate::pages::{ConsentPage, ErrorPage, FormPostPage, SignInPage};
use crate::routes::sso;
use crate::scopes;
use crate::state::{AuthorizeRequest, CodeGrant, EmulatorState, ResponseMode, SignIn};

/// Where a validated request's answers go: only ever a registered redirect URI.
pub(crate) struct ReplyTo {
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) response_mode: ResponseMode,
}

impl ReplyTo {
    pub(crate) fn of(request: &AuthorizeRequest) -> Self {
        Self {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            response_mode: request.response_mode,
        }
    }

    /// Sends `params` (plus `state`) to the redirect URI in the requested response mode.
    pub(crate) fn send(&self, mut params: Vec<(String, String)>) -> Response {
        if let Some(state) = &self.state {
            params.push(("state".to_owned(), state.clone()));
        }
        match self.response_mode {
            ResponseMode::FormPost => {
                FormPostPage { action: self.redirect_uri.clone(), fields: params }.into_response()
            }
            ResponseMode::Query => match Url::parse(&self.redirect_uri) {
                Ok(mut url) => {
                    url.query_pairs_mut().extend_pairs(params);
                    crate::pages::found(url.as_str())
                }
                Err(_) => ErrorPage::response(50011, "The redirect URI is not a valid URL."),
            },
            ResponseMode::Fragment => match Url::parse(&self.redirect_uri) {
                Ok(mut url) => {
                    let fragment = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
                    url.set_fragment(Some(&fragment));
                    crate::pages::found(url.as_str())
                }
                Err(_) => ErrorPage::response(50011, "The redirect URI is not a valid URL."),
            },
        }
    }

    pub(crate) fn error(&self, error: &OAuthError) -> Response {
        self.send(error.redirect_params())
    }
}

pub(crate) async fn authorize(
    State(state): State<Arc<EmulatorState>>,
    Path(tenant): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let consumers = crate::state::is_consumers(&tenant);
    if !state.accepts_tenant(&tenant) && !consumers {
        let error = super::discovery::unknown_tenant(&tenant);
        return ErrorPage::response(error.code, error.message);
    }
    let Some(client_id) = params.get("client_id") else {
        return ErrorPage::response(900144, "The request body must contain the following parameter: 'client_id'.");
    };
    let Some(client) = state.client(client_id) else {
        return ErrorPage::response(
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant."
            ),
        );
    };
    let redirect_uri = params.get("redirect_uri").cloned().unwrap_or_default();
    let Some(platform) = client.platform_of(&redirect_uri) else {
        // Never send the browser to an unregistered URI: say so on our own page.
        return ErrorPage::response(
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."
            ),
        );
    };
    // No app registration here takes personal accounts: the consumer service says so.
    if consumers {
        let reply = ReplyTo { redirect_uri, state: params.get("state").cloned(), response_mode: ResponseMode::Query };
        return reply.error(&OAuthError::not_enabled_for_consumers());
    }
    let response_mode = match params.get("response_mode").map(String::as_str) {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            let reply =
                ReplyTo { redirect_uri, state: params.get("state").cloned(), response_mode: ResponseMode::Query };
            return reply.error(&OAuthError::invalid_request(
                900144,
                format!("The response_mode '{other}' is not supported; use query, fragment or form_post."),
            ));
        }
    };
    let reply = ReplyTo { redirect_uri: redirect_uri.clone(), state: params.get("state").cloned(), response_mode };
    let mut request = match validate(&state, &params, client_id, redirect_uri, response_mode) {
        Ok(request) => request,
        Err(error) => return reply.error(&error),
    };
    request.authority = state.authority_of(&tenant);
    request.platform = platform;
    // A single-tenant registration (Entra's default) cannot use common or organizations.
    if client.sign_in_audience == SignInAudience::AzureADMyOrg && crate::state::is_multi_tenant(&tenant) {
        return ErrorPage::response(
            50194,
            format!(
                "Application '{client_id}' is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant."
            ),
        );
    }

    let prompt = params.get("prompt").map(String::as_str);
    // The SSO session is reused only for a user of this authority's tenant, and not when a
    // claims challenge asks for a sign-in newer than it (continuous access evaluation).
    let required_nbf = claims_request::required_nbf(request.claims.as_deref());
    // An authentication context is a step-up: the user proves themselves again.
    let step_up = !claims_request::required_auth_contexts(request.claims.as_deref()).is_empty();
    // Nor for another account than `login_hint` names, nor when it is older than `max_age`
    // seconds: Entra asks for the sign-in again (or, with prompt=none, answers login_required).
    let max_age = params.get("max_age").and_then(|age| age.parse::<i64>().ok());
    let sso_session = sso::current(&state, &headers).filter(|sign_in| {
        let hinted = request.login_hint.as_deref().is_none_or(|hint| {
            state
                .user_by_oid(sign_in.user_oid)
                .is_some_and(|user| user.user.user_principal_name.eq_ignore_ascii_case(hint))
        });
        state.may_sign_in_at(&tenant, sign_in.user_oid)
            && required_nbf.is_none_or(|nbf| sign_in.auth_time >= nbf)
            && !step_up
            && hinted
            && max_age.is_none_or(|age| state.clock.now() - sign_in.auth_time <= age)
    });
    match sso_session {
        Some(sign_in) if !request.force_login => {
            continue_signed_in(&state, &tenant, request, sign_in, prompt == Some("none"))
        }
        _ if prompt == Some("none") => reply.error(&OAuthError::new(
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in (or not the one login_hint names, or not recently enough for max_age).",
        )),
        _ => {
            let ctx = store_pending(&state, request.clone());
            sign_in_page(&state, &tenant, &ctx, &request, None, None).into_response()
        }
    }
}

fn validate(
    state: &EmulatorState,
    params: &HashMap<String, String>,
    client_id: &str,
    redirect_uri: String,
    response_mode: ResponseMode,
) -> Result<AuthorizeRequest, OAuthError> {
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::new(
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application; only 'code' is supported."),
            ));
        }
        None => {
            return Err(OAuthError::invalid_request(
                900144,
                "The request body must contain the following parameter: 'response_type'.",
            ));
        }
    }
    let scopes = scopes::parse(params.get("scope").map(String::as_str).unwrap_or_default())?;
    state.check_permissions_exist(client_id, &scopes)?;
    if let scopes::Resource::Api(uri) = scopes::resource_of(&scopes)?
        && state.client(uri.trim_start_matches("api://")).is_none()
    {
        return Err(OAuthError::new(
            "invalid_resource",
            500011,
            format!("The resource principal named {uri} was not found in the tenant."),
        ));
    }
    let code_challenge = params.get("code_challenge").cloned();
    let mut code_challenge_plain = false;
    if let Some(challenge) = &code_challenge {
        // Entra takes S256 and plain (the default when no method is given).
        match params.get("code_challenge_method").map(String::as_str) {
            Some("S256") => {}
            Some("plain") | None if !state.strict_pkce => code_challenge_plain = true,
            Some("plain") | None => {
                return Err(OAuthError::invalid_request(
                    501491,
                    "The code_challenge_method 'plain' is refused by this emulator's strict PKCE switch; use S256.",
                ));
            }
            Some(other) => {
                return Err(OAuthError::invalid_request(501491, format!("Invalid code_challenge_method '{other}'.")));
            }
        }
        let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        let well_formed = match code_challenge_plain {
            false => {
                challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
            true => (43..=128).contains(&challenge.len()) && challenge.bytes().all(unreserved),
        };
        if !well_formed {
            return Err(OAuthError::invalid_request(501491, "Invalid size of Code_Challenge parameter."));
        }
    }
    let prompt = params.get("prompt").map(String::as_str);
    if let Some(value) = prompt
        && !matches!(value, "login" | "none" | "select_account" | "consent")
    {
        return Err(OAuthError::invalid_request(90023, format!("Invalid prompt value '{value}'.")));
    }
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        redirect_uri,
        scopes,
        state: params.get("state").cloned(),
        nonce: params.get("nonce").cloned(),
        code_challenge,
        code_challenge_plain,
        response_mode,
        login_hint: params.get("login_hint").cloned(),
        claims: params.get("claims").cloned(),
        force_login: matches!(prompt, Some("login" | "select_account")),
        force_consent: prompt == Some("consent"),
        created_at: state.clock.now(),
        authority: String::new(),
        platform: Platform::Web,
    })
}

pub(crate) fn store_pending(state: &EmulatorState, request: AuthorizeRequest) -> String {
    let ctx = state.new_secret_value("ctx.");
    state.grants().pending.insert(ctx.clone(), request);
    ctx
}

pub(crate) fn sign_in_page(
    state: &EmulatorState,
    tenant: &str,
    ctx: &str,
    request: &AuthorizeRequest,
    password_step_for: Option<String>,
    error: Option<String>,
) -> SignInPage {
    SignInPage {
        action: format!("{}/{tenant}/login", state.base()),
        ctx: ctx.to_owned(),
        login_hint: request.login_hint.clone().unwrap_or_default(),
        password_step_for,
        error,
        users: state.users.iter().map(|u| u.user.user_principal_name.clone()).collect(),
    }
}

/// The user is known (SSO session or fresh password): ask for consent if needed, else answer.
pub(crate) fn continue_signed_in(
    state: &EmulatorState,
    tenant: &str,
    request: AuthorizeRequest,
    sign_in: SignIn,
    silent: bool,
) -> Response {
    let reply = ReplyTo::of(&request);
    let needs_consent =
        request.force_consent || !state.has_consent(sign_in.user_oid, &request.client_id, &request.scopes);
    if !needs_consent {
        return issue_code(state, request, sign_in);
    }
    if silent {
        return reply.error(&OAuthError::new(
            "consent_required",
            65001,
            "The user or administrator has not consented to use the application.",
        ));
    }
    let app_name = state.client(&request.client_id).map(|c| c.display_name).unwrap_or_default();
    let username = state.user_by_oid(sign_in.user_oid).map(|u| u.user.user_principal_name.clone()).unwrap_or_default();
    let consent_scopes = request.scopes.clone();
    let ctx = store_pending(state, request);
    ConsentPage {
        action: format!("{}/{tenant}/consent", state.base()),
        ctx,
        app_name,
        username,
        scopes: consent_scopes,
    }
    .into_response()
}

/// Issues a single-use code and sends it to the redirect URI.
pub(crate) fn issue_code(state: &EmulatorState, request: AuthorizeRequest, sign_in: SignIn) -> Response {
    let reply = ReplyTo::of(&request);
    let code = state.new_secret_value("1.emu-code.");
    let sid = sign_in.sid.clone();
    {
        let mut grants = state.grants();
        if let Some(session) = grants.sso_sessions.values_mut().find(|s| s.sign_in.sid == sid) {
            session.clients.insert(request.client_id.clone());
        }
        grants
            .codes
            .insert(code.clone(), CodeGrant { request, sign_in, issued_at: state.clock.now(), redeemed: false });
    }
    reply.send(vec![("code".to_owned(), code), ("session_state".to_owned(), sid)])
}
