//! YouTube: the resumable upload protocol, its faults and error bodies, thumbnails.

use std::time::Duration;

use serde_json::json;
use storyreel_platforms::{Fault, Platform, Platforms};

use crate::client::{JSON, Response, access_token, bytes, connect, send};

const KIB256: usize = 256 * 1024;

fn metadata() -> Vec<u8> {
    json!({
        "snippet": {"title": "A story", "description": "Told in a minute.", "tags": ["story"], "categoryId": "24"},
        "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": false, "containsSyntheticMedia": true},
    })
    .to_string()
    .into_bytes()
}

fn insert_with(p: &Platforms, token: &str, total: usize, body: &[u8]) -> Response {
    let auth = format!("Bearer {token}");
    let total = total.to_string();
    send(
        p,
        "POST",
        "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status&notifySubscribers=false",
        &[
            ("Authorization", &auth),
            JSON,
            ("X-Upload-Content-Length", &total),
            ("X-Upload-Content-Type", "video/mp4"),
        ],
        body,
    )
    .unwrap()
}

/// Opens a session; returns its URI.
fn insert(p: &Platforms, token: &str, total: usize) -> String {
    let reply = insert_with(p, token, total, &metadata());
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let location = reply.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!(
        "{}upload/youtube/v3/videos?uploadType=resumable&upload_id=",
        p.base_url()
    )));
    location
}

fn put(
    p: &Platforms,
    session: &str,
    first: usize,
    video: &[u8],
    end: usize,
) -> std::io::Result<Response> {
    let range = format!("bytes {first}-{}/{}", end - 1, video.len());
    send(
        p,
        "PUT",
        session,
        &[("Content-Range", &range), ("Content-Type", "video/mp4")],
        &video[first..end],
    )
}

fn query(p: &Platforms, session: &str, total: usize) -> Response {
    let range = format!("bytes */{total}");
    send(p, "PUT", session, &[("Content-Range", &range)], b"").unwrap()
}

#[test]
fn resumable_upload_in_chunks_with_a_status_query() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(3 * KIB256 + 1000);
    let session = insert(&p, &token, video.len());

    // Nothing held yet: 308 without Range.
    let empty = query(&p, &session, video.len());
    assert_eq!(empty.status, 308);
    assert_eq!(empty.header("range"), None);

    let first = put(&p, &session, 0, &video, 2 * KIB256).unwrap();
    assert_eq!(first.status, 308);
    assert_eq!(first.header("range"), Some("bytes=0-524287"));

    // A chunk that is not a multiple of 256 KiB is persisted rounded down.
    let odd = put(&p, &session, 2 * KIB256, &video, 2 * KIB256 + 1000).unwrap();
    assert_eq!(odd.status, 308);
    assert_eq!(odd.header("range"), Some("bytes=0-524287"));

    let status = query(&p, &session, video.len());
    assert_eq!(status.status, 308);
    assert_eq!(status.header("range"), Some("bytes=0-524287"));

    let last = put(&p, &session, 2 * KIB256, &video, video.len()).unwrap();
    assert_eq!(last.status, 201);
    let resource = last.json();
    assert_eq!(resource["kind"], "youtube#video");
    assert_eq!(resource["snippet"]["title"], "A story");
    assert_eq!(resource["status"]["uploadStatus"], "uploaded");
    assert_eq!(resource["status"]["privacyStatus"], "private");
    assert_eq!(resource["status"]["containsSyntheticMedia"], true);

    // Asking a complete session answers the video again, and makes no second one.
    let done = query(&p, &session, video.len());
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["id"], resource["id"]);

    let videos = p.youtube_videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].id, resource["id"].as_str().unwrap());
    assert!(videos[0].bytes == video);
    assert_eq!(videos[0].upload_requests, 3);
    assert_eq!(
        videos[0].query,
        "uploadType=resumable&part=snippet,status&notifySubscribers=false"
    );
    assert_eq!(
        videos[0].resource["status"]["selfDeclaredMadeForKids"],
        false
    );

    let recorded = p.requests();
    let puts: Vec<_> = recorded.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 6);
    assert!(puts.iter().all(|r| r.body.len() <= 1024));
}

#[test]
fn a_single_put_without_content_range_uploads_the_whole_file() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(10_000);
    let session = insert(&p, &token, video.len());
    let reply = send(
        &p,
        "PUT",
        &session,
        &[("Content-Type", "video/mp4")],
        &video,
    )
    .unwrap();
    assert_eq!(reply.status, 201);
    assert!(p.youtube_videos()[0].bytes == video);
}

#[test]
fn a_dropped_connection_persists_a_multiple_of_256_kib() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(1_000_000);
    let session = insert(&p, &token, video.len());

    p.inject(Fault::DropUploadAt { fraction: 0.6 });
    assert!(put(&p, &session, 0, &video, video.len()).is_err());

    // 600000 bytes arrived; 524288 (two granules) were kept.
    let status = query(&p, &session, video.len());
    assert_eq!(status.status, 308);
    assert_eq!(status.header("range"), Some("bytes=0-524287"));

    // Resuming where the client stopped sending leaves a gap: refused.
    let gap = put(&p, &session, 600_000, &video, video.len()).unwrap();
    assert_eq!(gap.status, 400);
    assert!(p.youtube_videos().is_empty());

    let resumed = put(&p, &session, 524_288, &video, video.len()).unwrap();
    assert_eq!(resumed.status, 201);
    let videos = p.youtube_videos();
    assert_eq!(videos.len(), 1);
    assert!(videos[0].bytes == video);
}

#[test]
fn an_expired_session_answers_404() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(KIB256 * 2);
    let session = insert(&p, &token, video.len());
    assert_eq!(put(&p, &session, 0, &video, KIB256).unwrap().status, 308);

    p.inject(Fault::ExpireSessions);
    let expired = put(&p, &session, KIB256, &video, video.len()).unwrap();
    assert_eq!(expired.status, 404);
    assert_eq!(query(&p, &session, video.len()).status, 404);

    // A new session works.
    let session = insert(&p, &token, video.len());
    assert_eq!(
        put(&p, &session, 0, &video, video.len()).unwrap().status,
        201
    );
    assert_eq!(p.youtube_videos().len(), 1);
}

#[test]
fn refused_inserts_carry_googles_error_body() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);

    p.inject(Fault::YouTubeInsert {
        reason: "quotaExceeded",
    });
    let quota = insert_with(&p, &token, 100, &metadata());
    assert_eq!(quota.status, 403);
    let error = &quota.json()["error"];
    assert_eq!(error["code"], 403);
    assert!(error["message"].as_str().unwrap().contains("quota"));
    assert_eq!(error["errors"][0]["domain"], "youtube.quota");
    assert_eq!(error["errors"][0]["reason"], "quotaExceeded");

    p.inject(Fault::YouTubeInsert {
        reason: "uploadLimitExceeded",
    });
    let limit = insert_with(&p, &token, 100, &metadata());
    assert_eq!(limit.status, 400);
    assert_eq!(
        limit.json()["error"]["errors"][0]["reason"],
        "uploadLimitExceeded"
    );

    // Faults are used up.
    assert_eq!(insert_with(&p, &token, 100, &metadata()).status, 200);

    let anonymous = insert_with(&p, "ya29.not-a-token", 100, &metadata());
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json()["error"]["errors"][0]["reason"],
        "authError"
    );
}

#[test]
fn metadata_is_validated_as_youtube_does() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let reason = |resource: serde_json::Value| {
        let reply = insert_with(&p, &token, 100, resource.to_string().as_bytes());
        assert_eq!(reply.status, 400);
        reply.json()["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        reason(json!({"snippet": {"title": "a <b> title"}})),
        "invalidTitle"
    );
    assert_eq!(
        reason(json!({"snippet": {"title": "x".repeat(101)}})),
        "invalidTitle"
    );
    assert_eq!(
        reason(json!({"snippet": {"title": "ok", "description": "é".repeat(2501)}})),
        "invalidDescription"
    );
    assert_eq!(
        reason(json!({"snippet": {"title": "ok"}, "status": {"privacyStatus": "secret"}})),
        "invalidVideoMetadata"
    );
    assert_eq!(
        reason(
            json!({"snippet": {"title": "ok"}, "status": {"privacyStatus": "public", "publishAt": "2099-01-01T00:00:00Z"}})
        ),
        "invalidPublishAt"
    );
    let scheduled = json!({"snippet": {"title": "ok"}, "status": {"privacyStatus": "private", "publishAt": "2099-01-01T00:00:00Z"}});
    assert_eq!(
        insert_with(&p, &token, 100, scheduled.to_string().as_bytes()).status,
        200
    );
}

#[test]
fn refused_puts_persist_nothing() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(KIB256 + 10);
    let session = insert(&p, &token, video.len());

    p.inject(Fault::UploadStatus {
        status: 503,
        times: 2,
    });
    for _ in 0..2 {
        let refused = put(&p, &session, 0, &video, video.len()).unwrap();
        assert_eq!(refused.status, 503);
        assert_eq!(refused.json()["error"]["code"], 503);
    }
    assert_eq!(query(&p, &session, video.len()).header("range"), None);
    assert_eq!(
        put(&p, &session, 0, &video, video.len()).unwrap().status,
        201
    );
    assert_eq!(p.youtube_videos()[0].upload_requests, 3);
}

#[test]
fn a_held_completion_counts_the_video_without_answering() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(5000);
    let session = insert(&p, &token, video.len());

    p.inject(Fault::HoldCompletion);
    let range = format!("bytes 0-{}/{}", video.len() - 1, video.len());
    let connection = connect(&p, "PUT", &session, &[("Content-Range", &range)], &video).unwrap();
    assert!(p.wait_held(Duration::from_secs(5)));
    assert_eq!(p.youtube_videos().len(), 1);
    drop(connection); // The client dies.

    // The session still knows the video.
    let again = query(&p, &session, video.len());
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], p.youtube_videos()[0].id.as_str());
    assert!(!p.wait_held(Duration::from_millis(10)));
}

#[test]
fn thumbnails_set() {
    let p = Platforms::start();
    let token = access_token(&p, Platform::YouTube);
    let video = bytes(100);
    let session = insert(&p, &token, video.len());
    let id = put(&p, &session, 0, &video, video.len()).unwrap().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Bearer {token}");
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &bytes(2000)].concat();
    let set = |video_id: &str| {
        send(
            &p,
            "POST",
            &format!("/upload/youtube/v3/thumbnails/set?videoId={video_id}&uploadType=media"),
            &[("Authorization", &auth), ("Content-Type", "image/jpeg")],
            &jpeg,
        )
        .unwrap()
    };

    let ok = set(&id);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["kind"], "youtube#thumbnailSetResponse");
    assert!(ok.json()["items"][0]["default"]["url"].is_string());
    assert!(p.youtube_videos()[0].thumbnail.as_deref() == Some(&jpeg[..]));

    let unknown = set("nosuchvideo");
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()["error"]["errors"][0]["reason"],
        "videoNotFound"
    );

    p.inject(Fault::ThumbnailForbidden);
    let forbidden = set(&id);
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.json()["error"]["errors"][0]["reason"],
        "forbidden"
    );
}
