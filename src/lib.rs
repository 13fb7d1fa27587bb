//! storyreel: turns a story into a finished short vertical video.
