//! OAuth against the loopback Google and TikTok: the consent redirect, the code exchange with
//! PKCE (each platform's challenge encoding), refresh, revocation and TikTok's rotation.

use storyreel_platforms::{
    GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, Platforms, TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET,
};
use storyreel_publish::oauth::{
    self, OAuthClient, Pkce, Tokens, authorize_url, exchange_code, random_state, refresh,
    refresh_account,
};
use storyreel_publish::{Account, Endpoints, ErrorKind, Platform, Secret};

fn endpoints(p: &Platforms) -> Endpoints {
    let env = p.env();
    Endpoints::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
}

fn client(platform: Platform) -> OAuthClient {
    let (id, secret) = match platform {
        Platform::YouTube => (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
        Platform::TikTok => (TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET),
    };
    OAuthClient {
        platform,
        client_id: id.into(),
        client_secret: Secret::new(secret),
    }
}

fn theirs(platform: Platform) -> storyreel_platforms::Platform {
    match platform {
        Platform::YouTube => storyreel_platforms::Platform::YouTube,
        Platform::TikTok => storyreel_platforms::Platform::TikTok,
    }
}

const REDIRECT: &str = "http://127.0.0.1:9/";

/// Opens the consent page as a browser would and returns the redirect's `code`, checking
/// `state` came back.
async fn consent(url: &str, state: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302, "consent page for {url}");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query = location.split_once('?').unwrap().1;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some(state));
    get("code").expect("a code")
}

/// The whole connect flow up to tokens.
async fn connect(p: &Platforms, platform: Platform) -> Tokens {
    let e = endpoints(p);
    let c = client(platform);
    let pkce = Pkce::new(platform);
    let state = random_state();
    let code = consent(&authorize_url(&e, &c, REDIRECT, &state, &pkce), &state).await;
    exchange_code(
        &oauth::http_client().unwrap(),
        &e,
        &c,
        &code,
        REDIRECT,
        &pkce,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn google_code_exchange_with_pkce_then_refresh() {
    let p = Platforms::start();
    let e = endpoints(&p);
    let tokens = connect(&p, Platform::YouTube).await;
    let rt = tokens
        .refresh_token
        .expect("prompt=consent always returns a refresh token");
    assert!(
        tokens.scope.contains(oauth::YOUTUBE_SCOPE),
        "{}",
        tokens.scope
    );
    assert!(tokens.expires_in > 0);
    assert_eq!(tokens.open_id, None);
    let issued = p.issued_tokens();
    assert!(issued.iter().any(|t| t == rt.expose()));
    assert!(issued.iter().any(|t| t == tokens.access_token.expose()));

    let http = oauth::http_client().unwrap();
    let again = refresh(&http, &e, &client(Platform::YouTube), &rt)
        .await
        .unwrap();
    assert_ne!(again.access_token.expose(), tokens.access_token.expose());
    assert!(
        again.refresh_token.is_none(),
        "Google keeps the refresh token"
    );
}

#[tokio::test]
async fn tiktok_code_exchange_with_a_hex_challenge_then_rotation() {
    let p = Platforms::start();
    let e = endpoints(&p);
    let tokens = connect(&p, Platform::TikTok).await;
    let first = tokens.refresh_token.expect("a refresh token");
    let open_id = tokens.open_id.expect("an open_id");
    assert_eq!(tokens.scope, oauth::TIKTOK_SCOPES);

    let mut account = Account {
        platform: Platform::TikTok,
        name: "main".into(),
        client_id: TIKTOK_CLIENT_KEY.into(),
        client_secret: Secret::new(TIKTOK_CLIENT_SECRET),
        refresh_token: first.clone(),
        scope: String::new(),
        open_id: None,
        connected_at: 0,
    };
    let http = oauth::http_client().unwrap();
    let r = refresh_account(&http, &e, &mut account).await.unwrap();
    assert!(r.rotated, "TikTok answers a new refresh token");
    assert_ne!(account.refresh_token, first);
    assert_eq!(account.open_id.as_deref(), Some(open_id.as_str()));
    assert_eq!(account.scope, oauth::TIKTOK_SCOPES);
    assert!(
        p.issued_tokens()
            .iter()
            .any(|t| t == r.access_token.expose())
    );

    // The rotated-out token is dead; the new one works (and rotates again).
    let c = client(Platform::TikTok);
    let old = refresh(&http, &e, &c, &first).await.unwrap_err();
    assert_eq!(old.kind(), ErrorKind::Reconnect, "{old}");
    let next = refresh(&http, &e, &c, &account.refresh_token)
        .await
        .unwrap();
    assert!(
        next.refresh_token
            .is_some_and(|t| t != account.refresh_token)
    );
}

#[tokio::test]
async fn a_wrong_verifier_is_rejected_on_both_platforms() {
    let p = Platforms::start();
    let e = endpoints(&p);
    let http = oauth::http_client().unwrap();
    for platform in Platform::ALL {
        let c = client(platform);
        let pkce = Pkce::new(platform);
        let state = random_state();
        let code = consent(&authorize_url(&e, &c, REDIRECT, &state, &pkce), &state).await;
        let other = Pkce::new(platform);
        let err = exchange_code(&http, &e, &c, &code, REDIRECT, &other)
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Reconnect | ErrorKind::Rejected),
            "{platform}: {err}"
        );
        let msg = format!("{err} {err:?}");
        for secret in [
            code.as_str(),
            other.verifier.expose(),
            pkce.verifier.expose(),
        ] {
            assert!(!msg.contains(secret), "{msg}");
        }
    }
    // A base64url challenge where TikTok's desktop flow wants hex fails the exchange: the
    // encoding matters, and ours matches the platform.
    let c = client(Platform::TikTok);
    let youtube_style = Pkce::new(Platform::YouTube);
    let state = random_state();
    let code = consent(
        &authorize_url(&e, &c, REDIRECT, &state, &youtube_style),
        &state,
    )
    .await;
    let err = exchange_code(&http, &e, &c, &code, REDIRECT, &youtube_style)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
}

#[tokio::test]
async fn revoked_refresh_tokens_mean_reconnect_and_bad_clients_are_rejected() {
    let p = Platforms::start();
    let e = endpoints(&p);
    let http = oauth::http_client().unwrap();
    for platform in Platform::ALL {
        let rt = p.grant_refresh_token(theirs(platform));
        let c = client(platform);
        refresh(&http, &e, &c, &Secret::new(&rt)).await.unwrap();
        let rt = match platform {
            // TikTok rotated it: revoke the live one.
            Platform::TikTok => p.grant_refresh_token(theirs(platform)),
            Platform::YouTube => rt,
        };
        p.revoke(&rt);
        let err = refresh(&http, &e, &c, &Secret::new(&rt)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Reconnect, "{platform}: {err}");
        assert!(!err.to_string().contains(&rt), "{err}");

        let wrong = OAuthClient {
            client_secret: Secret::new("not-the-secret"),
            ..client(platform)
        };
        let err = refresh(&http, &e, &wrong, &Secret::new(&rt))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected, "{platform}: {err}");
        assert!(err.to_string().contains("invalid_client"), "{err}");
        assert!(!err.to_string().contains("not-the-secret"), "{err}");
    }
}
