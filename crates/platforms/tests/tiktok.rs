//! TikTok: Login Kit for Desktop (hex PKCE), rotating refresh tokens, the Content Posting API.

use sha2::{Digest as _, Sha256};
use storyreel_platforms::{Fault, Platform, Platforms, TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET};

use crate::client::{FORM, JSON, Response, access_token, bytes, form, send, url_param};

const REDIRECT: &str = "http://127.0.0.1:53682/callback/";
const MIB: usize = 1024 * 1024;

fn api(p: &Platforms, token: &str, endpoint: &str, body: serde_json::Value) -> Response {
    let auth = format!("Bearer {token}");
    let path = format!("/v2/post/publish/{endpoint}/");
    send(
        p,
        "POST",
        &path,
        &[("Authorization", &auth), JSON],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn token(p: &Platforms, pairs: &[(&str, &str)]) -> Response {
    let mut all = vec![
        ("client_key", TIKTOK_CLIENT_KEY),
        ("client_secret", TIKTOK_CLIENT_SECRET),
    ];
    all.extend_from_slice(pairs);
    send(p, "POST", "/v2/oauth/token/", &[FORM], &form(&all)).unwrap()
}

/// Opens the authorize page; returns the code of the redirect.
fn consent(p: &Platforms, challenge: &str) -> String {
    let query = form(&[
        ("client_key", TIKTOK_CLIENT_KEY),
        ("scope", "user.info.basic,video.upload,video.publish"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "s-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    let path = format!("/v2/auth/authorize/?{}", String::from_utf8(query).unwrap());
    let reply = send(p, "GET", &path, &[], b"").unwrap();
    assert_eq!(reply.status, 302);
    let location = reply.header("location").unwrap();
    assert_eq!(url_param(location, "state").as_deref(), Some("s-123"));
    assert_eq!(
        url_param(location, "scopes").as_deref(),
        Some("user.info.basic,video.upload,video.publish")
    );
    url_param(location, "code").unwrap()
}

#[test]
fn desktop_pkce_challenge_is_hex_sha256() {
    let p = Platforms::start();
    let verifier = "storyreel-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::digest(verifier.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let base64url = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    };
    let exchange = |code: &str| {
        token(
            &p,
            &[
                ("code", code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
    };

    let refused = exchange(&consent(&p, &base64url));
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"], "invalid_request");
    assert_eq!(
        refused.json()["error_description"],
        "Code verifier or code challenge is invalid."
    );
    assert!(refused.json()["log_id"].is_string());

    let ok = exchange(&consent(&p, &hex));
    assert_eq!(ok.status, 200);
    let tokens = ok.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["open_id"].is_string());
    assert!(tokens["expires_in"].is_u64() && tokens["refresh_expires_in"].is_u64());
    assert!(tokens["access_token"].as_str().unwrap().starts_with("act."));
}

#[test]
fn refresh_tokens_rotate() {
    let p = Platforms::start();
    let first = p.grant_refresh_token(Platform::TikTok);
    let refresh = |t: &str| token(&p, &[("grant_type", "refresh_token"), ("refresh_token", t)]);

    let ok = refresh(&first);
    assert_eq!(ok.status, 200);
    let second = ok.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let access = ok.json()["access_token"].as_str().unwrap().to_owned();

    let old = refresh(&first);
    assert_eq!(old.status, 400);
    assert_eq!(old.json()["error"], "invalid_grant");

    // The access token minted before rotation keeps working.
    assert_eq!(
        api(&p, &access, "creator_info/query", serde_json::json!({})).status,
        200
    );

    p.revoke(&second);
    assert_eq!(refresh(&second).json()["error"], "invalid_grant");
    let gone = api(&p, &access, "creator_info/query", serde_json::json!({}));
    assert_eq!(gone.status, 401);
    assert_eq!(gone.json()["error"]["code"], "access_token_invalid");

    let stranger = send(
        &p,
        "POST",
        "/v2/oauth/token/",
        &[FORM],
        &form(&[
            ("client_key", "other"),
            ("client_secret", "x"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &second),
        ]),
    )
    .unwrap();
    assert_eq!(stranger.status, 401);
    assert_eq!(stranger.json()["error"], "invalid_client");
}

fn put_chunk(
    p: &Platforms,
    url: &str,
    video: &[u8],
    first: usize,
    end: usize,
) -> std::io::Result<Response> {
    let range = format!("bytes {first}-{}/{}", end - 1, video.len());
    send(
        p,
        "PUT",
        url,
        &[("Content-Type", "video/mp4"), ("Content-Range", &range)],
        &video[first..end],
    )
}

fn status(p: &Platforms, token: &str, publish_id: &str) -> serde_json::Value {
    let reply = api(
        p,
        token,
        "status/fetch",
        serde_json::json!({"publish_id": publish_id}),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["error"]["code"], "ok");
    reply.json()["data"].clone()
}

#[test]
fn direct_post_in_two_chunks_with_status_polling() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::TikTok);
    let video = bytes(11 * MIB);

    let creator = api(&p, &token, "creator_info/query", serde_json::json!({}));
    assert_eq!(creator.status, 200);
    let options = creator.json()["data"]["privacy_level_options"].clone();
    assert!(options.as_array().unwrap().iter().any(|o| o == "SELF_ONLY"));

    let post_info = serde_json::json!({"title": "A story #storytime", "privacy_level": "SELF_ONLY", "disable_duet": true, "is_aigc": true});
    let init = api(
        &p,
        &token,
        "video/init",
        serde_json::json!({
            "post_info": post_info,
            "source_info": {"source": "FILE_UPLOAD", "video_size": video.len(), "chunk_size": 5 * MIB, "total_chunk_count": 2},
        }),
    );
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let data = init.json()["data"].clone();
    assert_eq!(init.json()["error"]["code"], "ok");
    let publish_id = data["publish_id"].as_str().unwrap().to_owned();
    let url = data["upload_url"].as_str().unwrap().to_owned();
    assert!(publish_id.starts_with("v_pub_file~"));

    assert_eq!(
        status(&p, &token, &publish_id)["status"],
        "PROCESSING_UPLOAD"
    );

    // Out of order: refused.
    assert_eq!(
        put_chunk(&p, &url, &video, 5 * MIB, video.len())
            .unwrap()
            .status,
        416
    );

    assert_eq!(put_chunk(&p, &url, &video, 0, 5 * MIB).unwrap().status, 206);
    let half = status(&p, &token, &publish_id);
    assert_eq!(half["status"], "PROCESSING_UPLOAD");
    assert_eq!(half["uploaded_bytes"], 5 * MIB);
    assert!(p.tiktok_posts().is_empty());

    // The final chunk carries the trailing 6 MiB.
    assert_eq!(
        put_chunk(&p, &url, &video, 5 * MIB, video.len())
            .unwrap()
            .status,
        201
    );
    assert_eq!(
        status(&p, &token, &publish_id)["status"],
        "PROCESSING_DOWNLOAD"
    );
    assert_eq!(
        status(&p, &token, &publish_id)["status"],
        "PUBLISH_COMPLETE"
    );

    let posts = p.tiktok_posts();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].direct && posts[0].bytes == video);
    assert_eq!(
        (posts[0].chunk_size, posts[0].total_chunk_count),
        (5 * MIB as u64, 2)
    );
    assert_eq!(posts[0].post_info.as_ref().unwrap()["is_aigc"], true);
}

#[test]
fn inbox_upload_survives_a_dropped_chunk() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::TikTok);
    let video = bytes(11 * MIB);
    let init = api(
        &p,
        &token,
        "inbox/video/init",
        serde_json::json!({"source_info": {"source": "FILE_UPLOAD", "video_size": video.len(), "chunk_size": 5 * MIB, "total_chunk_count": 2}}),
    );
    let data = init.json()["data"].clone();
    let (publish_id, url) = (
        data["publish_id"].as_str().unwrap(),
        data["upload_url"].as_str().unwrap(),
    );
    assert!(publish_id.starts_with("v_inbox_file~"));

    p.inject(Fault::DropUploadAt { fraction: 0.7 });
    assert_eq!(put_chunk(&p, url, &video, 0, 5 * MIB).unwrap().status, 206);
    assert!(put_chunk(&p, url, &video, 5 * MIB, video.len()).is_err());
    assert_eq!(status(&p, &token, publish_id)["uploaded_bytes"], 5 * MIB);

    assert_eq!(
        put_chunk(&p, url, &video, 5 * MIB, video.len())
            .unwrap()
            .status,
        201
    );
    assert_eq!(
        status(&p, &token, publish_id)["status"],
        "PROCESSING_DOWNLOAD"
    );
    assert_eq!(
        status(&p, &token, publish_id)["status"],
        "SEND_TO_USER_INBOX"
    );
    assert!(p.tiktok_posts()[0].bytes == video);
}

#[test]
fn init_is_validated_and_faults_carry_tiktoks_error_body() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::TikTok);
    let source = |size: usize, chunk: usize, count: usize| serde_json::json!({"source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}});
    let code = |reply: Response| {
        (
            reply.status,
            reply.json()["error"]["code"].as_str().unwrap().to_owned(),
        )
    };

    assert_eq!(
        code(api(
            &p,
            &token,
            "inbox/video/init",
            source(11 * MIB, 5 * MIB, 3)
        )),
        (400, "invalid_params".into())
    );
    assert_eq!(
        code(api(
            &p,
            &token,
            "inbox/video/init",
            source(4 * MIB, 2 * MIB, 2)
        )),
        (400, "invalid_params".into())
    );
    assert_eq!(
        code(api(
            &p,
            &token,
            "inbox/video/init",
            source(4 * MIB, 4 * MIB, 1)
        )),
        (200, "ok".into())
    );

    let mut direct = source(4 * MIB, 4 * MIB, 1);
    direct["post_info"] = serde_json::json!({"title": "t", "privacy_level": "FRIENDS_ONLY"});
    assert_eq!(
        code(api(&p, &token, "video/init", direct)),
        (400, "privacy_level_option_mismatch".into())
    );

    p.inject(Fault::TikTok {
        endpoint: "inbox_init",
        status: 429,
        code: "rate_limit_exceeded",
    });
    let limited = api(&p, &token, "inbox/video/init", source(4 * MIB, 4 * MIB, 1));
    assert_eq!(limited.status, 429);
    let body = limited.json();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].is_string() && body["error"]["log_id"].is_string());

    p.inject(Fault::TikTok {
        endpoint: "direct_init",
        status: 403,
        code: "spam_risk_too_many_posts",
    });
    let mut direct = source(4 * MIB, 4 * MIB, 1);
    direct["post_info"] = serde_json::json!({"title": "t", "privacy_level": "SELF_ONLY"});
    assert_eq!(
        code(api(&p, &token, "video/init", direct.clone())),
        (403, "spam_risk_too_many_posts".into())
    );
    assert_eq!(
        code(api(&p, &token, "video/init", direct)),
        (200, "ok".into())
    );

    assert_eq!(
        code(api(
            &p,
            "act.nope",
            "inbox/video/init",
            source(4 * MIB, 4 * MIB, 1)
        )),
        (401, "access_token_invalid".into())
    );
}

#[test]
fn a_status_fault_with_http_200_fails_the_post() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::TikTok);
    let video = bytes(1000);
    let init = api(
        &p,
        &token,
        "inbox/video/init",
        serde_json::json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}}),
    );
    let data = init.json()["data"].clone();
    let (publish_id, url) = (
        data["publish_id"].as_str().unwrap(),
        data["upload_url"].as_str().unwrap(),
    );
    assert_eq!(put_chunk(&p, url, &video, 0, 1000).unwrap().status, 201);

    p.inject(Fault::TikTok {
        endpoint: "status",
        status: 200,
        code: "file_format_check_failed",
    });
    let failed = status(&p, &token, publish_id);
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["fail_reason"], "file_format_check_failed");
    assert_eq!(status(&p, &token, publish_id)["status"], "FAILED");
}

#[test]
fn malformed_requests_get_400_not_a_dead_server() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::TikTok);
    let auth = format!("Bearer {token}");
    let garbage = send(
        &p,
        "POST",
        "/v2/post/publish/inbox/video/init/",
        &[("Authorization", &auth), JSON],
        b"{not json",
    )
    .unwrap();
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.json()["error"]["code"], "invalid_params");
    let init = api(
        &p,
        &token,
        "inbox/video/init",
        serde_json::json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10, "total_chunk_count": 1}}),
    );
    let url = init.json()["data"]["upload_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let bad_range = send(
        &p,
        "PUT",
        &url,
        &[
            ("Content-Type", "video/mp4"),
            ("Content-Range", "bytes 9-0/10"),
        ],
        b"0123456789",
    )
    .unwrap();
    assert_eq!(bad_range.status, 400);
    let no_type = send(
        &p,
        "PUT",
        &url,
        &[("Content-Range", "bytes 0-9/10")],
        b"0123456789",
    )
    .unwrap();
    assert_eq!(no_type.status, 400);
    let bad_form = send(&p, "POST", "/v2/oauth/token/", &[JSON], b"{}").unwrap();
    assert_eq!(bad_form.status, 400);
    // Still serving.
    assert_eq!(
        put_chunk(&p, &url, b"0123456789", 0, 10).unwrap().status,
        201
    );
}

#[test]
fn platforms_can_be_shared_with_async_tasks() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Platforms>();
}
