//! storyreel-captions
