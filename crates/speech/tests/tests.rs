//! Integration tests of storyreel-speech: libespeak-ng for real, and Amazon Polly through the
//! real aws-sdk-polly client against a loopback server that speaks Polly's protocol.

mod common;
mod espeak;
mod narrate;
mod polly;
mod polly_server;
