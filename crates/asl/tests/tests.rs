//! Integration tests of storyreel-asl, one binary with modules (faster to build than many).

mod conformance;
mod constructs;
mod support;
