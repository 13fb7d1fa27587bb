//! OAuth 2.0 for the platforms, as their documentation describes it for an app on the user's
//! own machine: Google's flow for installed apps (loopback redirect, PKCE S256,
//! `access_type=offline` and `prompt=consent`, so the answer always carries a refresh token) and
//! TikTok's Login Kit v2 for desktop (`client_key`, PKCE with the challenge **hex**-encoded, as
//! Login Kit for Desktop requires, where the web flow and RFC 7636 use base64url).
//!
//! Each function is one documented request. Errors are sorted by what the caller does next
//! (`invalid_grant` means a person must connect the account again) and never contain a token,
//! a code, a verifier or a client secret: the server's description is scrubbed of every secret
//! the request carried before it becomes part of a message.
//!
//! TikTok rotates refresh tokens: a refresh may answer a new one, and from then on only the new
//! one works. [`refresh_account`] puts it into the [`Account`] and says so, so the caller can
//! store it before anything else.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::accounts::Account;
use crate::error::PublishError;
use crate::platform::{Endpoints, Platform};
use crate::secret::Secret;

/// The one scope storyreel asks Google for: upload videos (and set their thumbnails).
pub const YOUTUBE_SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload";
/// TikTok's scopes, comma-separated as Login Kit wants them.
pub const TIKTOK_SCOPES: &str = "user.info.basic,video.upload,video.publish";

/// Longest answer body read from a token endpoint (the documented ones are under 2 KiB).
const MAX_BODY: usize = 64 * 1024;
/// Longest server description kept in an error message.
const MAX_DESCRIPTION: usize = 300;

/// An app registered with the platform (Google: a "Desktop app" OAuth client; TikTok: an app
/// with Login Kit for Desktop, whose client key goes in `client_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub platform: Platform,
    pub client_id: String,
    pub client_secret: Secret,
}

impl OAuthClient {
    /// The client an account was connected with.
    pub fn of(account: &Account) -> OAuthClient {
        OAuthClient {
            platform: account.platform,
            client_id: account.client_id.clone(),
            client_secret: account.client_secret.clone(),
        }
    }
}

/// A PKCE pair (RFC 7636): the verifier stays here until the code exchange; the challenge goes
/// into the authorize URL.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier: 64 characters of base64url (a subset of RFC 7636's unreserved set)
    /// over 48 bytes from the operating system's generator, and its challenge for `platform`.
    pub fn new(platform: Platform) -> Pkce {
        let mut bytes = [0u8; 48];
        fill_random(&mut bytes);
        let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Pkce::from_verifier(platform, Secret::new(verifier))
    }

    /// The pair for a given verifier. The challenge is SHA-256 of the verifier, encoded as
    /// `platform` documents: base64url without padding for Google (RFC 7636 S256), lowercase
    /// hex for TikTok (Login Kit for Desktop: "You must use hex encoding of SHA256 to generate
    /// the code challenge from the code verifier").
    pub fn from_verifier(platform: Platform, verifier: Secret) -> Pkce {
        let digest = Sha256::digest(verifier.expose().as_bytes());
        let challenge = match platform {
            Platform::YouTube => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
            Platform::TikTok => hex(&digest),
        };
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// A fresh anti-forgery `state`: 32 hex digits from the operating system's generator.
pub fn random_state() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    hex(&bytes)
}

fn fill_random(bytes: &mut [u8]) {
    // Without randomness there is no safe PKCE verifier or state at all; getrandom fails only
    // where the OS has no generator, which no supported system lacks.
    getrandom::fill(bytes).expect("the operating system's random number generator failed");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The consent page to send the user to. `redirect_uri` is the loopback listener
/// (`http://127.0.0.1:<port>/`), `state` a value from [`random_state`] to check on the way back.
pub fn authorize_url(
    endpoints: &Endpoints,
    client: &OAuthClient,
    redirect_uri: &str,
    state: &str,
    pkce: &Pkce,
) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let base = match client.platform {
        Platform::YouTube => {
            q.append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", YOUTUBE_SCOPE)
                .append_pair("access_type", "offline")
                .append_pair("prompt", "consent");
            &endpoints.google_auth
        }
        Platform::TikTok => {
            q.append_pair("client_key", &client.client_id)
                .append_pair("response_type", "code")
                .append_pair("scope", TIKTOK_SCOPES)
                .append_pair("redirect_uri", redirect_uri);
            &endpoints.tiktok_auth
        }
    };
    q.append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", q.finish())
}

/// What arrived at the loopback listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The user consented: the authorization code, with the expected `state`.
    Code(Secret),
    /// The platform sent an error instead (`access_denied` when the user declined), with the
    /// expected `state`.
    Error {
        error: String,
        description: Option<String>,
    },
    /// A redirect whose `state` is missing or not ours: forged or stale, ignored.
    WrongState,
    /// Not the redirect at all (`/favicon.ico`, a browser's probe).
    Other,
}

/// Reads the redirect from the request target of the listener's GET (`/?code=..&state=..`).
/// `path` is the redirect URI's path (`/`).
pub fn parse_redirect(target: &str, path: &str, expected_state: &str) -> Redirect {
    let (p, query) = target.split_once('?').unwrap_or((target, ""));
    if p != path {
        return Redirect::Other;
    }
    let mut code = None;
    let mut error = None;
    let mut description = None;
    let mut state = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = Some(scrub(&v, &[])),
            "state" => state = Some(v.into_owned()),
            _ => {}
        }
    }
    if code.is_none() && error.is_none() {
        return Redirect::Other;
    }
    if state.as_deref() != Some(expected_state) {
        return Redirect::WrongState;
    }
    match (error, code) {
        (Some(error), _) => Redirect::Error {
            error: scrub(&error, &[]),
            description,
        },
        (None, Some(code)) if !code.is_empty() => Redirect::Code(Secret::new(code)),
        _ => Redirect::Other,
    }
}

/// What a token endpoint granted.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: Secret,
    /// Google: present after a code exchange, absent after a refresh. TikTok: present in
    /// both, and after a refresh possibly a **new** one that replaces the stored token.
    pub refresh_token: Option<Secret>,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The scopes granted (Google separates them with spaces, TikTok with commas).
    pub scope: String,
    /// TikTok's id of the user for this app.
    pub open_id: Option<String>,
}

/// Trades the authorization code from the redirect for tokens, proving possession of the PKCE
/// verifier. `redirect_uri` must be the one the authorize URL named.
pub async fn exchange_code(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> Result<Tokens, PublishError> {
    // Built in a block: the serializer is not Send, and the future must be.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair(id_field(client.platform), &client.client_id)
            .append_pair("client_secret", client.client_secret.expose())
            .append_pair("code", code)
            .append_pair("grant_type", "authorization_code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", pkce.verifier.expose());
        form.finish()
    };
    let secrets = [client.client_secret.expose(), code, pkce.verifier.expose()];
    token_request(
        http,
        endpoints,
        client.platform,
        "the authorization code exchange",
        body,
        &secrets,
    )
    .await
}

/// A new access token from a refresh token. TikTok may answer a new refresh token
/// (`Tokens::refresh_token`), which from then on is the only one that works: store it.
/// `invalid_grant` (revoked, expired) is [`PublishError::Reconnect`].
pub async fn refresh(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client: &OAuthClient,
    refresh_token: &Secret,
) -> Result<Tokens, PublishError> {
    // Built in a block: the serializer is not Send, and the future must be.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair(id_field(client.platform), &client.client_id)
            .append_pair("client_secret", client.client_secret.expose())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token.expose());
        form.finish()
    };
    let secrets = [client.client_secret.expose(), refresh_token.expose()];
    token_request(
        http,
        endpoints,
        client.platform,
        "a token refresh",
        body,
        &secrets,
    )
    .await
}

/// An access token for a stored account.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access_token: Secret,
    pub expires_in: u64,
    /// The platform rotated the refresh token: `account` now holds the new one and must be
    /// stored (the old one may already be dead).
    pub rotated: bool,
}

/// [`refresh`] for a stored account, folding a rotated refresh token (and TikTok's `open_id`,
/// and the granted scopes) back into `account`.
pub async fn refresh_account(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    account: &mut Account,
) -> Result<Refreshed, PublishError> {
    let tokens = refresh(
        http,
        endpoints,
        &OAuthClient::of(account),
        &account.refresh_token,
    )
    .await?;
    let rotated = match tokens.refresh_token {
        Some(new) if !new.is_empty() && new != account.refresh_token => {
            account.refresh_token = new;
            true
        }
        _ => false,
    };
    if !tokens.scope.is_empty() {
        account.scope = tokens.scope;
    }
    if tokens.open_id.is_some() {
        account.open_id = tokens.open_id;
    }
    Ok(Refreshed {
        access_token: tokens.access_token,
        expires_in: tokens.expires_in,
        rotated,
    })
}

/// Google calls the client `client_id`, TikTok `client_key`.
fn id_field(platform: Platform) -> &'static str {
    match platform {
        Platform::YouTube => "client_id",
        Platform::TikTok => "client_key",
    }
}

fn token_url(endpoints: &Endpoints, platform: Platform) -> String {
    match platform {
        Platform::YouTube => endpoints.google_token.clone(),
        Platform::TikTok => format!("{}v2/oauth/token/", endpoints.tiktok),
    }
}

/// A token endpoint's answer: the tokens, or an error (both platforms: `error`,
/// `error_description`; TikTok adds `log_id` and may answer an error with HTTP 200).
#[derive(Deserialize, Default)]
struct TokenBody {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    scope: Option<String>,
    open_id: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    log_id: Option<String>,
}

async fn token_request(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    platform: Platform,
    what: &str,
    form: String,
    secrets: &[&str],
) -> Result<Tokens, PublishError> {
    let transient = |message: String, source: Option<reqwest::Error>| PublishError::Transient {
        platform,
        what: what.to_string(),
        message,
        source: source.map(|e| Box::new(e) as _),
    };
    let response = http
        .post(token_url(endpoints, platform))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(form)
        .send()
        .await
        .map_err(|e| transient("the request failed".into(), Some(e.without_url())))?;
    let status = response.status().as_u16();
    let bytes = read_limited(response)
        .await
        .map_err(|e| transient("reading the answer failed".into(), Some(e.without_url())))?;
    let body: Option<TokenBody> = serde_json::from_slice(&bytes).ok();
    classify(platform, what, status, body, secrets)
}

/// Sorts an answer into tokens or an error (no I/O; unit-tested).
fn classify(
    platform: Platform,
    what: &str,
    status: u16,
    body: Option<TokenBody>,
    secrets: &[&str],
) -> Result<Tokens, PublishError> {
    let body_error = body.as_ref().and_then(|b| b.error.clone());
    if let Some(error) = body_error.filter(|e| !e.is_empty()) {
        let b = body.unwrap_or_default();
        let mut message = scrub(b.error_description.as_deref().unwrap_or(&error), secrets);
        if let Some(log_id) = b.log_id.filter(|l| !l.is_empty()) {
            message = format!("{message} (log_id {})", scrub(&log_id, secrets));
        }
        let error = scrub(&error, secrets);
        return Err(match (error.as_str(), status) {
            ("invalid_grant", _) => PublishError::Reconnect { platform, message },
            (_, 500..=599 | 429) => PublishError::Transient {
                platform,
                what: what.to_string(),
                message: format!("HTTP {status} {error}: {message}"),
                source: None,
            },
            _ => PublishError::Rejected {
                platform,
                what: what.to_string(),
                status,
                reason: error,
                message,
            },
        });
    }
    match status {
        200..=299 => {}
        500..=599 | 429 => {
            return Err(PublishError::Transient {
                platform,
                what: what.to_string(),
                message: format!("HTTP {status}"),
                source: None,
            });
        }
        _ => {
            return Err(PublishError::Rejected {
                platform,
                what: what.to_string(),
                status,
                reason: if status == 401 {
                    "invalid_client".into()
                } else {
                    String::new()
                },
                message: "the answer carried no OAuth error".into(),
            });
        }
    }
    let protocol = |message: &str| PublishError::Protocol {
        platform,
        what: what.to_string(),
        message: message.to_string(),
    };
    let b = body.ok_or_else(|| protocol("the answer is not a JSON token response"))?;
    let access_token = b
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| protocol("the answer has no access_token"))?;
    Ok(Tokens {
        access_token: Secret::new(access_token),
        refresh_token: b.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        expires_in: b.expires_in.unwrap_or(0),
        scope: b.scope.unwrap_or_default(),
        open_id: b.open_id.filter(|o| !o.is_empty()),
    })
}

/// The body, at most [`MAX_BODY`] bytes (the rest is not read).
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_BODY {
            break;
        }
    }
    Ok(out)
}

/// A server's text made safe for a message: every secret the request carried replaced, control
/// characters dropped, and cut to [`MAX_DESCRIPTION`] characters.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        s = s.replace(secret, "[redacted]");
    }
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION)
        .collect();
    if s.chars().count() > MAX_DESCRIPTION {
        out.push('…');
    }
    out
}

/// A client for the token endpoints: bounded connect and request times (a hung endpoint is a
/// transient failure, not a hung publish).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn client(platform: Platform) -> OAuthClient {
        OAuthClient {
            platform,
            client_id: "id 1&x".into(),
            client_secret: Secret::new("shh-secret"),
        }
    }

    fn params(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').expect("a query").1;
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn param<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
        let found: Vec<_> = p.iter().filter(|(key, _)| key == k).collect();
        assert_eq!(found.len(), 1, "{k} once in {p:?}");
        &found[0].1
    }

    #[test]
    fn verifiers_are_long_unreserved_and_fresh() {
        for platform in Platform::ALL {
            let a = Pkce::new(platform);
            let b = Pkce::new(platform);
            let v = a.verifier.expose();
            assert!((43..=128).contains(&v.len()), "{}", v.len());
            assert!(
                v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)),
                "{v}"
            );
            assert_ne!(v, b.verifier.expose());
            assert_eq!(format!("{a:?}").matches(v).count(), 0, "Debug hides it");
        }
    }

    #[test]
    fn challenges_follow_each_platforms_documentation() {
        // RFC 7636 appendix B's example verifier and S256 challenge.
        let rfc = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let google = Pkce::from_verifier(Platform::YouTube, Secret::new(rfc));
        assert_eq!(
            google.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // TikTok desktop: the same SHA-256 as 64 lowercase hex digits.
        let tiktok = Pkce::from_verifier(Platform::TikTok, Secret::new(rfc));
        assert_eq!(
            tiktok.challenge,
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
        let fresh = Pkce::new(Platform::TikTok);
        assert_eq!(fresh.challenge.len(), 64);
        assert!(fresh.challenge.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn google_authorize_url_asks_for_offline_upload_with_pkce() {
        let e = Endpoints::default();
        let pkce = Pkce::new(Platform::YouTube);
        let url = authorize_url(
            &e,
            &client(Platform::YouTube),
            "http://127.0.0.1:4242/",
            "st4te",
            &pkce,
        );
        assert!(url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
        let p = params(&url);
        assert_eq!(param(&p, "client_id"), "id 1&x");
        assert_eq!(param(&p, "redirect_uri"), "http://127.0.0.1:4242/");
        assert_eq!(param(&p, "response_type"), "code");
        assert_eq!(param(&p, "scope"), YOUTUBE_SCOPE);
        assert_eq!(param(&p, "access_type"), "offline");
        assert_eq!(param(&p, "prompt"), "consent");
        assert_eq!(param(&p, "state"), "st4te");
        assert_eq!(param(&p, "code_challenge"), pkce.challenge);
        assert_eq!(param(&p, "code_challenge_method"), "S256");
        assert!(!url.contains(pkce.verifier.expose()));
        assert!(!url.contains("shh-secret"));
    }

    #[test]
    fn tiktok_authorize_url_names_the_client_key_and_scopes() {
        let e = Endpoints::from_lookup(|k| {
            (k == crate::platform::TIKTOK_AUTH_URL_ENV).then(|| "http://h:1/auth?x=1".into())
        });
        let pkce = Pkce::new(Platform::TikTok);
        let url = authorize_url(
            &e,
            &client(Platform::TikTok),
            "http://127.0.0.1:9/",
            "s",
            &pkce,
        );
        assert!(url.starts_with("http://h:1/auth?x=1&"), "{url}");
        let p = params(&url);
        assert_eq!(param(&p, "client_key"), "id 1&x");
        assert_eq!(param(&p, "scope"), TIKTOK_SCOPES);
        assert_eq!(param(&p, "response_type"), "code");
        assert_eq!(param(&p, "redirect_uri"), "http://127.0.0.1:9/");
        assert_eq!(param(&p, "code_challenge"), pkce.challenge);
        assert_eq!(param(&p, "code_challenge_method"), "S256");
        assert!(
            p.iter()
                .all(|(k, _)| k != "client_id" && k != "access_type")
        );
    }

    #[test]
    fn redirects_are_read_and_their_state_checked() {
        let r = |t| parse_redirect(t, "/", "s1");
        assert_eq!(
            r("/?state=s1&code=4%2F0Ab&scope=x"),
            Redirect::Code(Secret::new("4/0Ab"))
        );
        assert!(matches!(r("/?code=c&state=s1"), Redirect::Code(c) if c.expose() == "c"));
        assert_eq!(
            r("/?error=access_denied&state=s1&error_description=The+user+said+no"),
            Redirect::Error {
                error: "access_denied".into(),
                description: Some("The user said no".into())
            }
        );
        assert_eq!(r("/?code=c&state=other"), Redirect::WrongState);
        assert_eq!(r("/?code=c"), Redirect::WrongState);
        assert_eq!(r("/?error=access_denied"), Redirect::WrongState);
        assert_eq!(r("/favicon.ico"), Redirect::Other);
        assert_eq!(r("/"), Redirect::Other);
        assert_eq!(r("/x?code=c&state=s1"), Redirect::Other);
        assert_eq!(
            parse_redirect("/callback/?code=c&state=s1", "/callback/", "s1"),
            Redirect::Code(Secret::new("c"))
        );
    }

    fn body(json: &str) -> Option<TokenBody> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn answers_are_sorted_by_what_to_do_next() {
        let secrets = ["1//the-refresh-token", "shh-secret"];
        let t = |status, json: &str| {
            classify(
                Platform::TikTok,
                "a token refresh",
                status,
                body(json),
                &secrets,
            )
        };
        let ok = t(
            200,
            r#"{"access_token":"act.1","refresh_token":"rft.2","expires_in":86400,"open_id":"u1","scope":"video.upload","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token.expose(), "act.1");
        assert_eq!(ok.refresh_token.unwrap().expose(), "rft.2");
        assert_eq!((ok.expires_in, ok.open_id.as_deref()), (86400, Some("u1")));

        // TikTok answers errors with HTTP 200 too; the description is scrubbed of secrets.
        let e = t(
            200,
            r#"{"error":"invalid_grant","error_description":"token 1//the-refresh-token is revoked","log_id":"L1"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Reconnect);
        let msg = e.to_string();
        assert!(msg.contains("[redacted] is revoked (log_id L1)"), "{msg}");
        assert!(!msg.contains("the-refresh-token"), "{msg}");

        let e = t(
            401,
            r#"{"error":"invalid_client","error_description":"bad"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(
            e.to_string().contains("HTTP 401 invalid_client: bad"),
            "{e}"
        );
        assert_eq!(t(401, "").unwrap_err().kind(), ErrorKind::Rejected);
        assert_eq!(t(503, "<html>").unwrap_err().kind(), ErrorKind::Transient);
        assert_eq!(
            t(500, r#"{"error":"internal_error"}"#).unwrap_err().kind(),
            ErrorKind::Transient
        );
        assert_eq!(t(200, "{}").unwrap_err().kind(), ErrorKind::Protocol);
        assert_eq!(t(200, "nope").unwrap_err().kind(), ErrorKind::Protocol);
    }

    #[test]
    fn scrub_bounds_and_cleans_text() {
        let long = "x".repeat(1000);
        assert_eq!(scrub(&long, &[]).chars().count(), MAX_DESCRIPTION + 1);
        assert_eq!(scrub("a\nb\u{1b}[31m", &[]), "ab[31m");
        assert_eq!(scrub("k=secretvalue", &["secretvalue"]), "k=[redacted]");
    }

    #[tokio::test]
    async fn a_dead_endpoint_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Endpoints::from_lookup(|k| {
            (k == crate::platform::GOOGLE_TOKEN_URL_ENV)
                .then(|| format!("http://127.0.0.1:{port}/token"))
        });
        let err = refresh(
            &http_client().unwrap(),
            &e,
            &client(Platform::YouTube),
            &Secret::new("1//r"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    }
}
