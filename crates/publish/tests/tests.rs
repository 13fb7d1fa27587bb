//! storyreel-publish against the loopback platforms (`storyreel-platforms`).

mod tiktok;
mod youtube;
