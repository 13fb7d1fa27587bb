//! What the S3 "Object Created" event needs before the story step can use it.
//!
//! S3 URL-encodes object keys in its event notifications, form style: a space becomes `+`, a
//! literal `+` becomes `%2B`, other reserved bytes `%XX` (Amazon S3 User Guide, "Event message
//! structure": "The s3 key provides information about the bucket and object involved in the
//! event. The object key name value is URL encoded. For example, "red flower.jpg" becomes
//! "red+flower.jpg"). The EventBridge form of the event (`detail.object.key`) carries the key
//! the same way: AWS's own Lambda Powertools decode it with `unquote_plus` in
//! `S3EventBridgeNotificationObject.key`. Keys without reserved characters (`drop/story.txt`)
//! are unchanged by decoding, which is why the bug only shows with names like
//! `drop/My Story (1).txt`.
//!
//! [`decode_event_key`] turns the event's key into the object's key; [`encode_event_key`] is
//! its inverse, for events made locally (`storyreel watch`, tests) to look like S3's.

/// The event's key is not valid form-URL encoding of a UTF-8 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 event key {key:?} is not URL-encoded UTF-8 ({reason})")]
pub struct BadEventKey {
    pub key: String,
    pub reason: &'static str,
}

/// Decodes an S3 event's object key: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
pub fn decode_event_key(raw: &str) -> Result<String, BadEventKey> {
    let bad = |reason| BadEventKey {
        key: raw.to_string(),
        reason,
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .ok_or_else(|| bad("'%' without two hex digits"))?;
                let hi = (hex[0] as char).to_digit(16);
                let lo = (hex[1] as char).to_digit(16);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(bad("'%' without two hex digits")),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad("decodes to bytes that are not UTF-8"))
}

/// Encodes a key the way S3 events carry it: unreserved characters and `/` as they are,
/// spaces as `+`, everything else as `%XX`.
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_like_unquote_plus() {
        assert_eq!(
            decode_event_key("drop/story.txt").unwrap(),
            "drop/story.txt"
        );
        assert_eq!(
            decode_event_key("drop/My+Story+%281%29.txt").unwrap(),
            "drop/My Story (1).txt"
        );
        assert_eq!(
            decode_event_key("drop/c%2B%2B.txt").unwrap(),
            "drop/c++.txt"
        );
        assert_eq!(decode_event_key("drop%2Fa.txt").unwrap(), "drop/a.txt");
        assert_eq!(
            decode_event_key("drop/caf%C3%A9.txt").unwrap(),
            "drop/café.txt"
        );
        assert!(decode_event_key("drop/%2").is_err());
        assert!(decode_event_key("drop/%zz").is_err());
        assert!(decode_event_key("drop/%FF.txt").is_err());
    }

    #[test]
    fn encoding_round_trips() {
        for key in ["drop/My Story (1).txt", "drop/c++ & ü.md", "drop/plain.txt"] {
            let e = encode_event_key(key);
            assert!(!e.contains(' '), "{e}");
            assert_eq!(decode_event_key(&e).unwrap(), key);
        }
        assert_eq!(encode_event_key("drop/a b+c.txt"), "drop/a+b%2Bc.txt");
    }
}
