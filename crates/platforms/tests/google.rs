//! Google OAuth 2.0 for installed apps: consent, code exchange with PKCE, refresh, revocation.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use storyreel_platforms::{GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, Platform, Platforms};

use crate::client::{FORM, form, send, url_param};

const REDIRECT: &str = "http://127.0.0.1:53682/oauth/callback";
const SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload";

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Opens the consent page; returns the code of the redirect.
fn consent(p: &Platforms, challenge: &str, state: &str) -> String {
    let query = form(&[
        ("client_id", GOOGLE_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ]);
    let path = format!("/o/oauth2/v2/auth?{}", String::from_utf8(query).unwrap());
    let reply = send(p, "GET", &path, &[], b"").unwrap();
    assert_eq!(reply.status, 302);
    let location = reply.header("location").unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(url_param(location, "state").as_deref(), Some(state));
    assert_eq!(url_param(location, "scope").as_deref(), Some(SCOPE));
    url_param(location, "code").unwrap()
}

fn exchange(p: &Platforms, code: &str, verifier: &str) -> crate::client::Response {
    send(
        p,
        "POST",
        "/token",
        &[FORM],
        &form(&[
            ("code", code),
            ("client_id", GOOGLE_CLIENT_ID),
            ("client_secret", GOOGLE_CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
            ("grant_type", "authorization_code"),
            ("code_verifier", verifier),
        ]),
    )
    .unwrap()
}

#[test]
fn code_exchange_checks_the_pkce_verifier_and_uses_the_code_up() {
    let p = Platforms::start();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-storyreel";

    let code = consent(&p, &s256(verifier), "xyz");
    let wrong = exchange(
        &p,
        &code,
        "a-wrong-verifier-that-is-long-enough-to-be-valid-pkce",
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["error"], "invalid_grant");
    assert_eq!(wrong.json()["error_description"], "Invalid code verifier.");

    let code = consent(&p, &s256(verifier), "abc");
    let ok = exchange(&p, &code, verifier);
    assert_eq!(ok.status, 200);
    let tokens = ok.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["scope"], SCOPE);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let issued = p.issued_tokens();
    assert!(issued.iter().any(|t| t == access) && issued.iter().any(|t| t == refresh));

    let again = exchange(&p, &code, verifier);
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");
}

#[test]
fn consent_page_refuses_a_redirect_off_loopback_and_an_unknown_client() {
    let p = Platforms::start();
    let bad_redirect = "/o/oauth2/v2/auth?client_id=".to_owned()
        + GOOGLE_CLIENT_ID
        + "&redirect_uri=https%3A%2F%2Fexample.com%2Fcb&response_type=code&scope=openid";
    assert_eq!(
        send(&p, "GET", &bad_redirect, &[], b"").unwrap().status,
        400
    );
    let bad_client = "/o/oauth2/v2/auth?client_id=someone-else&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2F&response_type=code&scope=openid";
    assert_eq!(send(&p, "GET", bad_client, &[], b"").unwrap().status, 401);
}

fn refresh(p: &Platforms, client_id: &str, token: &str) -> crate::client::Response {
    send(
        p,
        "POST",
        "/token",
        &[FORM],
        &form(&[
            ("client_id", client_id),
            ("client_secret", GOOGLE_CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
        ]),
    )
    .unwrap()
}

#[test]
fn refresh_keeps_the_refresh_token_until_it_is_revoked() {
    let p = Platforms::start();
    let token = p.grant_refresh_token(Platform::YouTube);

    let ok = refresh(&p, GOOGLE_CLIENT_ID, &token);
    assert_eq!(ok.status, 200);
    assert!(
        ok.json()["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29.")
    );
    assert!(ok.json().get("refresh_token").is_none());
    assert_eq!(refresh(&p, GOOGLE_CLIENT_ID, &token).status, 200);

    let stranger = refresh(&p, "someone-else.apps.googleusercontent.com", &token);
    assert_eq!(stranger.status, 401);
    assert_eq!(stranger.json()["error"], "invalid_client");

    p.revoke(&token);
    let revoked = refresh(&p, GOOGLE_CLIENT_ID, &token);
    assert_eq!(revoked.status, 400);
    assert_eq!(
        revoked.json(),
        serde_json::json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
}
