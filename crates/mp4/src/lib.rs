//! storyreel-mp4
