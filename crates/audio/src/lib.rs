//! storyreel-audio
