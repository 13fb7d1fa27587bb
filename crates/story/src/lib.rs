//! Stories for storyreel (work in progress).
