//! Integration tests for storyreel-story: one binary with modules.
//!
//! The writer tests talk to a loopback server (`server`); nothing reaches the internet.

mod clean;
mod server;
mod writer;
