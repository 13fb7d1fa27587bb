//! The TikTok client against the loopback TikTok: an inbox upload in chunks polled to
//! completion, a direct post with the creator's privacy levels, and the refusals sorted as
//! the caller needs them.

use storyreel_platforms::{Fault, Platforms, TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET};
use storyreel_publish::http::now_unix;
use storyreel_publish::tiktok::{
    ChunkPlan, MIN_CHUNK, PostInfo, PostStatus, TikTok, tiktok_privacy,
};
use storyreel_publish::youtube::Privacy;
use storyreel_publish::{ErrorKind, PublishError, Secret};

use crate::youtube::{assert_no_token, endpoints, synthetic, token_from};

fn client(p: &Platforms) -> TikTok {
    TikTok::new(storyreel_publish::http::client().unwrap(), &endpoints(p))
}

/// An access token from TikTok's token endpoint (refresh-token grant).
async fn tiktok_access(p: &Platforms) -> Secret {
    let refresh = p.grant_refresh_token(storyreel_platforms::Platform::TikTok);
    token_from(
        &format!("{}v2/oauth/token/", endpoints(p).tiktok),
        &[
            ("client_key", TIKTOK_CLIENT_KEY),
            ("client_secret", TIKTOK_CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ],
    )
    .await
}

/// Sends every chunk of the plan in order.
async fn send_all(tt: &TikTok, upload_url: &str, plan: &ChunkPlan, data: &[u8]) {
    for i in 0..plan.total_chunk_count {
        let (first, end) = plan.range(i);
        tt.put_chunk(
            upload_url,
            first,
            data[first as usize..end as usize].to_vec(),
            plan.video_size,
        )
        .await
        .unwrap();
    }
}

/// Polls `status/fetch` until the post is complete or failed.
async fn poll(tt: &TikTok, access: &Secret, publish_id: &str) -> PostStatus {
    for _ in 0..20 {
        match tt.status(access, publish_id).await.unwrap() {
            PostStatus::Uploading { .. } | PostStatus::Processing => {}
            done => return done,
        }
    }
    panic!("the post never completed");
}

#[tokio::test]
async fn an_inbox_upload_in_two_chunks_is_polled_to_completion() {
    let p = Platforms::start();
    let tt = client(&p);
    let access = tiktok_access(&p).await;
    let data = synthetic(11_000_000, 11);
    // The default plan sends 11 MB whole (floor(11 MB / 10 MiB) = 1 chunk); 5 MiB chunks
    // make two, the second taking the remainder.
    assert_eq!(ChunkPlan::new(11_000_000).unwrap().total_chunk_count, 1);
    let plan = ChunkPlan::with_chunk_size(11_000_000, MIN_CHUNK).unwrap();
    assert_eq!(plan.total_chunk_count, 2);

    let init = tt.init_inbox(&access, &plan).await.unwrap();
    assert!(!init.publish_id.is_empty());
    // Before any byte: uploading, nothing yet.
    assert!(matches!(
        tt.status(&access, &init.publish_id).await.unwrap(),
        PostStatus::Uploading {
            uploaded_bytes: Some(0) | None
        }
    ));
    let (first, end) = plan.range(0);
    tt.put_chunk(
        &init.upload_url,
        first,
        data[first as usize..end as usize].to_vec(),
        plan.video_size,
    )
    .await
    .unwrap();
    assert_eq!(
        tt.status(&access, &init.publish_id).await.unwrap(),
        PostStatus::Uploading {
            uploaded_bytes: Some(MIN_CHUNK)
        }
    );
    let (first, end) = plan.range(1);
    tt.put_chunk(
        &init.upload_url,
        first,
        data[first as usize..end as usize].to_vec(),
        plan.video_size,
    )
    .await
    .unwrap();
    // An inbox upload ends in the creator's inbox: no post id.
    assert_eq!(
        poll(&tt, &access, &init.publish_id).await,
        PostStatus::Complete { post_ids: vec![] }
    );

    let posts = p.tiktok_posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.publish_id, init.publish_id);
    assert!(!post.direct);
    assert_eq!((post.chunk_size, post.total_chunk_count), (MIN_CHUNK, 2));
    assert!(
        post.bytes == data,
        "the stored bytes differ from the sent ones"
    );

    let reqs = p.requests();
    let puts: Vec<_> = reqs.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2);
    let range = |r: &storyreel_platforms::Recorded| {
        r.headers
            .iter()
            .find(|(k, _)| k == "content-range")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(range(puts[0]).as_deref(), Some("bytes 0-5242879/11000000"));
    assert_eq!(
        range(puts[1]).as_deref(),
        Some("bytes 5242880-10999999/11000000")
    );
    // The upload URL is the capability: no token goes with the bytes.
    assert!(
        puts.iter()
            .all(|r| r.headers.iter().all(|(k, _)| k != "authorization"))
    );
}

#[tokio::test]
async fn a_direct_post_uses_the_creators_privacy_levels() {
    let p = Platforms::start();
    let tt = client(&p);
    let access = tiktok_access(&p).await;
    let info = tt.creator_info(&access).await.unwrap();
    assert!(!info.username.is_empty());
    assert!(info.max_video_post_duration_sec > 0);
    assert!(
        info.privacy_level_options
            .contains(&"PUBLIC_TO_EVERYONE".to_string())
    );
    // The loopback creator offers no FOLLOWER_OF_CREATOR: unlisted is friends only.
    assert_eq!(
        tiktok_privacy(Privacy::Unlisted, &info.privacy_level_options).unwrap(),
        "MUTUAL_FOLLOW_FRIENDS"
    );
    let post = PostInfo {
        title: "The lighthouse keeper's last night #story".into(),
        privacy_level: tiktok_privacy(Privacy::Public, &info.privacy_level_options).unwrap(),
        disable_comment: info.comment_disabled,
        disable_duet: info.duet_disabled,
        disable_stitch: info.stitch_disabled,
        is_aigc: true,
    };
    let data = synthetic(3_000_000, 12);
    let plan = ChunkPlan::new(data.len() as u64).unwrap();
    assert_eq!(plan.total_chunk_count, 1);
    let init = tt.init_direct(&access, &post, &plan).await.unwrap();
    send_all(&tt, &init.upload_url, &plan, &data).await;
    let PostStatus::Complete { post_ids } = poll(&tt, &access, &init.publish_id).await else {
        panic!("the post failed");
    };
    assert_eq!(post_ids.len(), 1, "a public post gets its id");

    let posts = p.tiktok_posts();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].direct);
    assert!(posts[0].bytes == data);
    let sent = posts[0].post_info.as_ref().unwrap();
    assert_eq!(sent["privacy_level"], "PUBLIC_TO_EVERYONE");
    assert_eq!(sent["is_aigc"], true);
    assert_eq!(sent["title"], post.title);

    // A level the creator does not offer is refused by TikTok too.
    let bad = PostInfo {
        privacy_level: "FOLLOWER_OF_CREATOR".into(),
        ..post
    };
    let e = tt.init_direct(&access, &bad, &plan).await.unwrap_err();
    assert!(
        matches!(&e, PublishError::Rejected { reason, .. } if reason == "privacy_level_option_mismatch"),
        "{e:?}"
    );
    assert_no_token(&p, &e);
}

#[tokio::test]
async fn spam_risk_and_rate_limits_are_deferred() {
    let p = Platforms::start();
    let tt = client(&p);
    let access = tiktok_access(&p).await;
    let plan = ChunkPlan::new(1000).unwrap();
    let before = now_unix();

    p.inject(Fault::TikTok {
        endpoint: "inbox_init",
        status: 403,
        code: "spam_risk_too_many_posts",
    });
    let e = tt.init_inbox(&access, &plan).await.unwrap_err();
    assert_no_token(&p, &e);
    assert!(
        matches!(&e, PublishError::Deferred { reason, until, .. }
            if reason == "spam_risk_too_many_posts" && *until >= before + 86_400 && *until <= now_unix() + 86_400),
        "{e:?}"
    );

    p.inject(Fault::TikTok {
        endpoint: "creator_info",
        status: 429,
        code: "rate_limit_exceeded",
    });
    let e = tt.creator_info(&access).await.unwrap_err();
    assert!(
        matches!(&e, PublishError::Deferred { reason, until, .. }
            if reason == "rate_limit_exceeded" && *until > before && *until <= now_unix() + 60),
        "{e:?}"
    );

    p.inject(Fault::TikTok {
        endpoint: "direct_init",
        status: 403,
        code: "spam_risk_user_banned_from_posting",
    });
    let post = PostInfo {
        title: "t".into(),
        privacy_level: "SELF_ONLY".into(),
        disable_comment: false,
        disable_duet: false,
        disable_stitch: false,
        is_aigc: true,
    };
    let e = tt.init_direct(&access, &post, &plan).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Rejected,
        "waiting does not lift a ban: {e}"
    );

    p.inject(Fault::TikTok {
        endpoint: "status",
        status: 500,
        code: "internal_error",
    });
    let e = tt.status(&access, "v_inbox_file~v2.1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}

#[tokio::test]
async fn a_failed_post_reports_its_reason() {
    let p = Platforms::start();
    let tt = client(&p);
    let access = tiktok_access(&p).await;
    let data = synthetic(2000, 13);
    let plan = ChunkPlan::new(2000).unwrap();
    let init = tt.init_inbox(&access, &plan).await.unwrap();
    send_all(&tt, &init.upload_url, &plan, &data).await;
    p.inject(Fault::TikTok {
        endpoint: "status",
        status: 200,
        code: "file_format_check_failed",
    });
    assert_eq!(
        tt.status(&access, &init.publish_id).await.unwrap(),
        PostStatus::Failed {
            reason: "file_format_check_failed".into()
        }
    );
}

#[tokio::test]
async fn bad_tokens_and_bad_upload_urls() {
    let p = Platforms::start();
    let tt = client(&p);
    let e = tt
        .creator_info(&Secret::new("act.not-a-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PublishError::Rejected { reason, status: 401, .. } if reason == "access_token_invalid"),
        "{e:?}"
    );
    let e = tt
        .put_chunk(
            &format!("{}tiktok-upload/nothing", endpoints(&p).tiktok),
            0,
            vec![0; 10],
            10,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SessionExpired, "{e}");
    // Nothing is sent for a chunk outside the video.
    let before = p.requests().len();
    let e = tt
        .put_chunk("http://127.0.0.1:9/", 5, vec![0; 10], 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(p.requests().len(), before);
}

#[tokio::test]
async fn an_interrupted_chunk_is_sent_again() {
    let p = Platforms::start();
    let tt = client(&p);
    let access = tiktok_access(&p).await;
    let data = synthetic(11_000_000, 14);
    let plan = ChunkPlan::with_chunk_size(11_000_000, MIN_CHUNK).unwrap();
    let init = tt.init_inbox(&access, &plan).await.unwrap();
    p.inject(Fault::DropUploadAt { fraction: 0.3 });
    let (first, end) = plan.range(0);
    let chunk0 = data[first as usize..end as usize].to_vec();
    let e = tt
        .put_chunk(&init.upload_url, first, chunk0.clone(), plan.video_size)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    // TikTok keeps nothing of an interrupted chunk: the status says so, and it goes again.
    assert_eq!(
        tt.status(&access, &init.publish_id).await.unwrap(),
        PostStatus::Uploading {
            uploaded_bytes: Some(0)
        }
    );
    tt.put_chunk(&init.upload_url, first, chunk0, plan.video_size)
        .await
        .unwrap();
    let (first, end) = plan.range(1);
    tt.put_chunk(
        &init.upload_url,
        first,
        data[first as usize..end as usize].to_vec(),
        plan.video_size,
    )
    .await
    .unwrap();
    assert!(matches!(
        poll(&tt, &access, &init.publish_id).await,
        PostStatus::Complete { .. }
    ));
    let posts = p.tiktok_posts();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].bytes == data);
}
