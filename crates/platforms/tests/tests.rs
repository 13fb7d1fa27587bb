//! The servers against the documented protocols, driven by a plain HTTP/1.1 client on loopback.

mod client;
mod google;
mod tiktok;
mod youtube;
