//! Integration tests of storyreel-speech against the real libespeak-ng.

mod espeak;
