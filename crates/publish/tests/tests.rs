//! storyreel-publish against the loopback platforms (`storyreel-platforms`).

mod oauth;
mod tiktok;
mod youtube;
