//! Google OAuth 2.0 for installed apps: the consent page and the token endpoint.
//!
//! As documented (developers.google.com/identity/protocols/oauth2/native-app): the consent
//! page redirects to a loopback `redirect_uri` with `code`, `state` and `scope`; the token
//! endpoint takes `application/x-www-form-urlencoded` bodies, checks the PKCE verifier
//! (`S256`: base64url without padding of SHA-256, or `plain`), and answers errors as
//! `{"error": .., "error_description": ..}`: `invalid_grant` (400) for a used, unknown or
//! mismatched code or a revoked refresh token, `invalid_client` (401) for an unknown client.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::StatusCode;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::server::{Reply, Req, form_value, html, json, redirect};
use crate::state::{AuthCode, Shared, random_token};
use crate::{GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, Platform};

/// Access tokens live an hour; Google reports 3599 seconds left.
const EXPIRES_IN: u64 = 3599;

/// `GET o/oauth2/v2/auth`: the user consents at once; redirects with a code.
pub(crate) fn auth(shared: &Shared, req: &Req) -> Reply {
    let q = |name| req.query_param(name);
    if q("client_id").as_deref() != Some(GOOGLE_CLIENT_ID) {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let Some(redirect_uri) = q("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    let mut location = match loopback_redirect(&redirect_uri, false) {
        Ok(location) => location,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", why),
    };
    match q("response_type").as_deref() {
        Some("code") => {}
        Some(other) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "unsupported_response_type",
                &format!("Invalid response_type: {other}"),
            );
        }
        None => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required parameter is missing: response_type",
            );
        }
    }
    let scope = q("scope").unwrap_or_default();
    if scope.split_whitespace().next().is_none() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: scope",
        );
    }
    let challenge = match (q("code_challenge"), q("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing code_challenge",
            );
        }
        (Some(challenge), method) => {
            // Without a method, RFC 7636 (and Google) default to `plain`.
            let method = method.unwrap_or_else(|| "plain".to_owned());
            if method != "S256" && method != "plain" {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Invalid code_challenge_method: {method}"),
                );
            }
            if !valid_pkce_string(&challenge) {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid code_challenge",
                );
            }
            Some((challenge, method))
        }
    };
    let scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
    let code = format!("4/0Astoryreel{}", random_token(32));
    shared.lock().codes.insert(
        code.clone(),
        AuthCode {
            platform: Platform::YouTube,
            redirect_uri: redirect_uri.clone(),
            scope: scope.clone(),
            challenge,
        },
    );
    {
        let mut pairs = location.query_pairs_mut();
        if let Some(state) = q("state") {
            pairs.append_pair("state", &state);
        }
        pairs.append_pair("code", &code);
        pairs.append_pair("scope", &scope);
    }
    redirect(location.as_str())
}

/// `POST token`: the `authorization_code` and `refresh_token` grants.
pub(crate) fn token(shared: &Shared, req: &Req) -> Reply {
    if !is_form(req) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid Content-Type, expected application/x-www-form-urlencoded",
        );
    }
    let form = req.form();
    let value = |name| form_value(&form, name);
    // Client authentication: in the body, or HTTP Basic (RFC 6749 section 2.3.1).
    let (client_id, client_secret) = match (value("client_id"), basic_auth(req)) {
        (Some(id), _) => (
            Some(id.to_owned()),
            value("client_secret").map(str::to_owned),
        ),
        (None, Some((id, secret))) => (Some(id), Some(secret)),
        (None, None) => (None, None),
    };
    let Some(client_id) = client_id else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Could not determine client ID from request.",
        );
    };
    if client_id != GOOGLE_CLIENT_ID {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    if client_secret.as_deref() != Some(GOOGLE_CLIENT_SECRET) {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    match value("grant_type") {
        Some("authorization_code") => exchange_code(shared, &form),
        Some("refresh_token") => refresh(shared, &form),
        Some(other) => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
        None => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        ),
    }
}

fn exchange_code(shared: &Shared, form: &[(String, String)]) -> Reply {
    let value = |name| form_value(form, name);
    let Some(code) = value("code") else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: code",
        );
    };
    let Some(redirect_uri) = value("redirect_uri") else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    let mut state = shared.lock();
    // A code is single-use: any exchange, successful or not, uses it up.
    let auth = match state.codes.remove(code) {
        Some(auth) if auth.platform == Platform::YouTube => auth,
        _ => return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request"),
    };
    if auth.redirect_uri != redirect_uri {
        return token_error(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        );
    }
    match (&auth.challenge, value("code_verifier")) {
        (None, None) => {}
        (None, Some(_)) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code_verifier or verifier is not needed.",
            );
        }
        (Some(_), None) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Missing code verifier.",
            );
        }
        (Some((challenge, method)), Some(verifier)) => {
            let derived = match method.as_str() {
                "S256" => s256(verifier),
                _ => verifier.to_owned(),
            };
            if !valid_pkce_string(verifier) || derived != *challenge {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid code verifier.",
                );
            }
        }
    }
    let refresh_token = state.new_grant(Platform::YouTube, &auth.scope, String::new());
    let Some(access_token) = state.new_access_token(&refresh_token) else {
        return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "");
    };
    json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "expires_in": EXPIRES_IN,
            "refresh_token": refresh_token,
            "scope": auth.scope,
            "token_type": "Bearer",
        }),
    )
}

fn refresh(shared: &Shared, form: &[(String, String)]) -> Reply {
    let Some(refresh_token) = form_value(form, "refresh_token") else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let mut state = shared.lock();
    let scope = match state.grants.get(refresh_token) {
        Some(grant) if grant.platform == Platform::YouTube && !grant.revoked => grant.scope.clone(),
        _ => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Token has been expired or revoked.",
            );
        }
    };
    let Some(access_token) = state.new_access_token(refresh_token) else {
        return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "");
    };
    // Google keeps the refresh token: the response carries none.
    json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "expires_in": EXPIRES_IN,
            "scope": scope,
            "token_type": "Bearer",
        }),
    )
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Reply {
    json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// Google shows errors of the consent page to the user rather than redirecting.
fn error_page(status: StatusCode, error: &str, description: &str) -> Reply {
    html(
        status,
        &format!(
            "<!doctype html><title>Error {code}: {error}</title>\
             <h1>Access blocked: authorization error</h1>\
             <p>Error {code}: {error}</p><p>{description}</p>",
            code = status.as_u16(),
            description = description.replace('<', "&lt;"),
        ),
    )
}

pub(crate) fn is_form(req: &Req) -> bool {
    req.header("content-type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

fn basic_auth(req: &Req) -> Option<(String, String)> {
    use base64::engine::general_purpose::STANDARD;
    let value = req.header("authorization")?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636 `S256`).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub(crate) fn valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Checks a loopback redirect URI: `http` (or, for TikTok, `https`) on `127.0.0.1`,
/// `[::1]` or `localhost`, with an explicit port; any path; no fragment.
pub(crate) fn loopback_redirect(uri: &str, allow_https: bool) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(uri).map_err(|_| "The redirect_uri is not a valid URL.")?;
    let scheme_ok = url.scheme() == "http" || (allow_https && url.scheme() == "https");
    if !scheme_ok {
        return Err("The redirect_uri must use the http scheme and a loopback address.");
    }
    let host_ok = matches!(
        url.host_str(),
        Some("127.0.0.1") | Some("[::1]") | Some("localhost")
    );
    if !host_ok {
        return Err("The redirect_uri must be a loopback address (127.0.0.1, [::1] or localhost).");
    }
    if url.port().is_none() {
        return Err("The redirect_uri must name the port the app listens on.");
    }
    if url.fragment().is_some() {
        return Err("The redirect_uri must not contain a fragment.");
    }
    Ok(url)
}
