//! The YouTube client against the loopback YouTube: chunked resumable uploads byte-exact,
//! resuming from what the session holds after a dropped connection, and each failure sorted
//! as the caller needs it.

use storyreel_platforms::{Fault, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, Platforms};
use storyreel_publish::http::now_unix;
use storyreel_publish::youtube::{
    CHUNK_GRANULE, Privacy, SessionState, VideoMetadata, YouTube, youtube_description,
    youtube_title,
};
use storyreel_publish::{Endpoints, ErrorKind, PublishError, Secret};

/// The loopback server's endpoints.
pub(crate) fn endpoints(p: &Platforms) -> Endpoints {
    let env = p.env();
    Endpoints::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
}

/// Percent-encodes a form value (everything but unreserved characters).
pub(crate) fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// POSTs a form and returns `access_token` from the JSON answer.
pub(crate) async fn token_from(url: &str, form: &[(&str, &str)]) -> Secret {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    Secret::new(v["access_token"].as_str().unwrap())
}

/// An access token from Google's token endpoint (refresh-token grant), as the OAuth module
/// would get one.
async fn google_access(p: &Platforms) -> Secret {
    let refresh = p.grant_refresh_token(storyreel_platforms::Platform::YouTube);
    token_from(
        &endpoints(p).google_token,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", GOOGLE_CLIENT_ID),
            ("client_secret", GOOGLE_CLIENT_SECRET),
        ],
    )
    .await
}

/// Deterministic bytes that are not a repeating pattern (a shifted chunk would show).
pub(crate) fn synthetic(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Panics if any token the server issued appears in the error's `Display` or `Debug`.
pub(crate) fn assert_no_token(p: &Platforms, e: &PublishError) {
    let shown = format!("{e} {e:?} {e:#}");
    for t in p.issued_tokens() {
        assert!(!shown.contains(&t), "a token leaked into {shown}");
    }
}

fn client(p: &Platforms) -> YouTube {
    YouTube::new(storyreel_publish::http::client().unwrap(), &endpoints(p))
}

fn meta() -> VideoMetadata {
    VideoMetadata {
        title: youtube_title(
            "  The <lighthouse>\nkeeper's   last night ",
            "Untitled story",
        ),
        description: youtube_description("A story.\n#shorts"),
        tags: vec!["story".into(), "shorts".into()],
        category_id: "24".into(),
        privacy: Privacy::Unlisted,
        publish_at: None,
        made_for_kids: false,
        synthetic_media: true,
        notify_subscribers: false,
    }
}

/// Sends `data` from `from` in chunks of `chunk` bytes, continuing from what YouTube confirms,
/// until the video is complete.
async fn send_from(
    yt: &YouTube,
    access: &Secret,
    session: &str,
    data: &[u8],
    mut from: u64,
    chunk: u64,
) -> String {
    let len = data.len() as u64;
    for _ in 0..100 {
        let end = (from + chunk).min(len);
        let part = data[from as usize..end as usize].to_vec();
        match yt
            .put_chunk(access, session, from, part, len)
            .await
            .unwrap()
        {
            SessionState::Incomplete { confirmed } => {
                assert!(confirmed <= end && confirmed > from, "{from} {confirmed}");
                from = confirmed;
            }
            SessionState::Complete { video_id } => {
                assert_eq!(end, len);
                return video_id;
            }
            SessionState::Expired => panic!("expired"),
        }
    }
    panic!("no end");
}

#[tokio::test]
async fn a_chunked_resumable_upload_arrives_byte_exact_with_its_metadata() {
    let p = Platforms::start();
    let yt = client(&p);
    let access = google_access(&p).await;
    let data = synthetic(3 * 1024 * 1024 + 12_345, 1);
    let len = data.len() as u64;
    let session = yt.start_session(&access, &meta(), len).await.unwrap();
    assert_eq!(
        yt.query(&access, &session, len).await.unwrap(),
        SessionState::Incomplete { confirmed: 0 }
    );
    let id = send_from(&yt, &access, &session, &data, 0, 4 * CHUNK_GRANULE).await;
    // Asking again after completion answers the same video.
    assert_eq!(
        yt.query(&access, &session, len).await.unwrap(),
        SessionState::Complete {
            video_id: id.clone()
        }
    );

    let videos = p.youtube_videos();
    assert_eq!(videos.len(), 1);
    let v = &videos[0];
    assert_eq!(v.id, id);
    assert!(
        v.bytes == data,
        "the stored bytes differ from the sent ones"
    );
    assert_eq!(v.upload_requests, 4);
    assert_eq!(
        v.resource["snippet"]["title"],
        "The lighthouse keeper's last night"
    );
    assert_eq!(v.resource["snippet"]["categoryId"], "24");
    assert_eq!(v.resource["status"]["privacyStatus"], "unlisted");
    assert_eq!(v.resource["status"]["selfDeclaredMadeForKids"], false);
    assert_eq!(v.resource["status"]["containsSyntheticMedia"], true);
    assert!(v.query.contains("uploadType=resumable"), "{}", v.query);
    assert!(v.query.contains("notifySubscribers=false"), "{}", v.query);

    let reqs = p.requests();
    let insert = reqs
        .iter()
        .find(|r| r.method == "POST" && r.path_and_query.starts_with("/upload/youtube/v3/videos"))
        .unwrap();
    let header = |name: &str| {
        insert
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("x-upload-content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(header("x-upload-content-type"), Some("video/mp4"));
    assert!(header("user-agent").unwrap().starts_with("storyreel/"));

    // A thumbnail for it.
    let jpeg = [
        &[0xFF, 0xD8, 0xFF, 0xE0][..],
        &synthetic(2000, 2),
        &[0xFF, 0xD9],
    ]
    .concat();
    yt.set_thumbnail(&access, &id, jpeg.clone()).await.unwrap();
    assert_eq!(p.youtube_videos()[0].thumbnail.as_deref(), Some(&jpeg[..]));
}

#[tokio::test]
async fn after_a_dropped_connection_the_session_says_where_to_continue() {
    let p = Platforms::start();
    let yt = client(&p);
    let access = google_access(&p).await;
    let data = synthetic(2 * 1024 * 1024 + 100, 3);
    let len = data.len() as u64;
    let session = yt.start_session(&access, &meta(), len).await.unwrap();
    p.inject(Fault::DropUploadAt { fraction: 0.4 });

    // 1 MiB chunks: the first carries byte 0.4 * len, so the connection drops mid-chunk.
    let chunk = 4 * CHUNK_GRANULE;
    let e = yt
        .put_chunk(&access, &session, 0, data[..chunk as usize].to_vec(), len)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert_no_token(&p, &e);

    let SessionState::Incomplete { confirmed } = yt.query(&access, &session, len).await.unwrap()
    else {
        panic!("the session should be incomplete");
    };
    // YouTube keeps whole 256 KiB units of what arrived: less than was sent.
    assert!(confirmed < chunk, "{confirmed}");
    assert_eq!(confirmed % CHUNK_GRANULE, 0);

    let id = send_from(&yt, &access, &session, &data, confirmed, chunk).await;
    let videos = p.youtube_videos();
    assert_eq!(videos.len(), 1, "exactly one video");
    assert_eq!(videos[0].id, id);
    assert!(
        videos[0].bytes == data,
        "the stored bytes differ from the sent ones"
    );
}

#[tokio::test]
async fn server_errors_are_transient_and_the_same_chunk_then_succeeds() {
    let p = Platforms::start();
    let yt = client(&p);
    let access = google_access(&p).await;
    let data = synthetic(300_000, 4);
    let len = data.len() as u64;
    let session = yt.start_session(&access, &meta(), len).await.unwrap();
    p.inject(Fault::UploadStatus {
        status: 503,
        times: 2,
    });
    for _ in 0..2 {
        let e = yt
            .put_chunk(&access, &session, 0, data.clone(), len)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
        assert_no_token(&p, &e);
    }
    let done = yt.put_chunk(&access, &session, 0, data.clone(), len).await;
    assert!(
        matches!(done, Ok(SessionState::Complete { .. })),
        "{done:?}"
    );
    assert!(p.youtube_videos()[0].bytes == data);
}

#[tokio::test]
async fn an_expired_session_is_reported_not_raised() {
    let p = Platforms::start();
    let yt = client(&p);
    let access = google_access(&p).await;
    let data = synthetic(CHUNK_GRANULE as usize * 2, 5);
    let len = data.len() as u64;
    let session = yt.start_session(&access, &meta(), len).await.unwrap();
    p.inject(Fault::ExpireSessions);
    assert_eq!(
        yt.query(&access, &session, len).await.unwrap(),
        SessionState::Expired
    );
    assert_eq!(
        yt.put_chunk(&access, &session, 0, data, len).await.unwrap(),
        SessionState::Expired
    );
}

#[tokio::test]
async fn quota_exceeded_waits_for_a_pacific_midnight() {
    let p = Platforms::start();
    let yt = client(&p);
    let access = google_access(&p).await;
    p.inject(Fault::YouTubeInsert {
        reason: "quotaExceeded",
    });
    let before = now_unix();
    let e = yt.start_session(&access, &meta(), 1000).await.unwrap_err();
    assert_no_token(&p, &e);
    let PublishError::Deferred { reason, until, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(reason, "quotaExceeded");
    assert!(*until > before && *until - before <= 25 * 3600, "{until}");
    // Midnight in Los Angeles is 07:00 or 08:00 UTC, on the hour.
    assert_eq!(until % 3600, 0);
    assert!(matches!((until / 3600) % 24, 7 | 8), "{until}");
    let next = storyreel_publish::time::next_pacific_midnight;
    assert!(
        *until == next(before) || *until == next(now_unix()),
        "{until}"
    );

    // The other daily and rate limits.
    p.inject(Fault::YouTubeInsert {
        reason: "uploadLimitExceeded",
    });
    let e = yt.start_session(&access, &meta(), 1000).await.unwrap_err();
    assert!(
        matches!(&e, PublishError::Deferred { reason, until, .. } if reason == "uploadLimitExceeded" && *until >= before + 86_400),
        "{e:?}"
    );
    p.inject(Fault::YouTubeInsert {
        reason: "rateLimitExceeded",
    });
    let e = yt.start_session(&access, &meta(), 1000).await.unwrap_err();
    assert!(
        matches!(&e, PublishError::Deferred { reason, until, .. } if reason == "rateLimitExceeded" && *until >= before + 60),
        "{e:?}"
    );
    p.inject(Fault::YouTubeInsert {
        reason: "invalidTitle",
    });
    let e = yt.start_session(&access, &meta(), 1000).await.unwrap_err();
    assert!(
        matches!(&e, PublishError::Rejected { reason, status: 400, .. } if reason == "invalidTitle"),
        "{e:?}"
    );
    assert_no_token(&p, &e);
}

#[tokio::test]
async fn a_forbidden_thumbnail_is_rejected_with_reason_forbidden() {
    let p = Platforms::start();
    let yt = client(&p);
    let access = google_access(&p).await;
    let data = synthetic(1000, 6);
    let session = yt.start_session(&access, &meta(), 1000).await.unwrap();
    let SessionState::Complete { video_id } = yt
        .put_chunk(&access, &session, 0, data, 1000)
        .await
        .unwrap()
    else {
        panic!("one chunk completes a 1000-byte video");
    };
    p.inject(Fault::ThumbnailForbidden);
    let jpeg = [
        &[0xFF, 0xD8, 0xFF, 0xE0][..],
        &synthetic(100, 7),
        &[0xFF, 0xD9],
    ]
    .concat();
    let e = yt
        .set_thumbnail(&access, &video_id, jpeg)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PublishError::Rejected { reason, status: 403, .. } if reason == "forbidden"),
        "{e:?}"
    );
    assert_no_token(&p, &e);
}

#[tokio::test]
async fn an_unknown_access_token_is_rejected_with_401() {
    let p = Platforms::start();
    let yt = client(&p);
    let e = yt
        .start_session(&Secret::new("ya29.not-a-token"), &meta(), 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PublishError::Rejected { status: 401, .. }),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("ya29.not-a-token"));
}

#[tokio::test]
async fn a_dead_server_is_transient() {
    let p = Platforms::start();
    let endpoints = endpoints(&p);
    drop(p);
    let yt = YouTube::new(storyreel_publish::http::client().unwrap(), &endpoints);
    let e = yt
        .start_session(&Secret::new("ya29.x"), &meta(), 1000)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}

#[tokio::test]
async fn a_completion_whose_answer_is_lost_is_found_by_asking_the_session() {
    let p = Platforms::start();
    let http = storyreel_publish::http::client_with_read_timeout(std::time::Duration::from_secs(1));
    let yt = YouTube::new(http.unwrap(), &endpoints(&p));
    let access = google_access(&p).await;
    let data = synthetic(CHUNK_GRANULE as usize + 10, 8);
    let len = data.len() as u64;
    let session = yt.start_session(&access, &meta(), len).await.unwrap();
    p.inject(Fault::HoldCompletion);
    // The server stores the video but never answers: the read times out.
    let e = yt
        .put_chunk(&access, &session, 0, data.clone(), len)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert_no_token(&p, &e);
    // Asking (rather than sending again) finds the video: one upload, one video.
    let SessionState::Complete { video_id } = yt.query(&access, &session, len).await.unwrap()
    else {
        panic!("the session should be complete");
    };
    let videos = p.youtube_videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].id, video_id);
    assert!(videos[0].bytes == data);
}
