//! storyreel-publish against the loopback platforms (`storyreel-platforms`).
