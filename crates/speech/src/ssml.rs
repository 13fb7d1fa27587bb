//! Wrapping user text in SSML for Polly, and mapping Polly's SSML byte offsets back to the text:
//! pure, no I/O.
//!
//! Polly's speech marks for SSML input give byte offsets into the SSML document, tags and
//! character references included (`&amp;` is five bytes for one `&`). [`Ssml`] remembers where
//! each character of the text went, so a mark maps back to the characters it covers.

use std::fmt::Write as _;

/// An SSML document built from plain text, with the map back to the text.
#[derive(Debug, Clone)]
pub(crate) struct Ssml {
    /// The document sent to Polly.
    pub doc: String,
    /// For each character of the text, in order: its byte offset in the text and in `doc`.
    map: Vec<(usize, usize)>,
    /// Byte range of the escaped text inside `doc`.
    body: (usize, usize),
    /// Length of the text in bytes.
    text_len: usize,
}

/// Bytes the SSML wrapper adds around the text (`<speak><prosody rate="200%">` and the closing
/// tags), an upper bound used to keep a request under Polly's length limit.
pub(crate) const SSML_OVERHEAD: usize = 64;

/// Length of `ch` once escaped for SSML, in characters: what it costs toward Polly's limit.
pub(crate) fn escaped_len(ch: char) -> usize {
    match ch {
        '&' => 5,
        '<' | '>' => 4,
        '"' | '\'' => 6,
        _ => 1,
    }
}

/// True for characters XML 1.0 does not allow in a document; they become spaces.
fn invalid_in_xml(ch: char) -> bool {
    matches!(ch, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

impl Ssml {
    /// Wraps `text` as `<speak><prosody rate="N%">…</prosody></speak>`, escaping the five XML
    /// special characters and replacing characters XML forbids with spaces.
    pub fn with_rate(text: &str, rate_percent: u32) -> Self {
        let mut doc = String::with_capacity(text.len() + SSML_OVERHEAD);
        // Writing to a String cannot fail.
        let _ = write!(doc, "<speak><prosody rate=\"{rate_percent}%\">");
        let body_start = doc.len();
        let mut map = Vec::with_capacity(text.len());
        for (byte, ch) in text.char_indices() {
            map.push((byte, doc.len()));
            match ch {
                '&' => doc.push_str("&amp;"),
                '<' => doc.push_str("&lt;"),
                '>' => doc.push_str("&gt;"),
                '"' => doc.push_str("&quot;"),
                '\'' => doc.push_str("&apos;"),
                c if invalid_in_xml(c) => doc.push(' '),
                c => doc.push(c),
            }
        }
        let body_end = doc.len();
        doc.push_str("</prosody></speak>");
        Self {
            doc,
            map,
            body: (body_start, body_end),
            text_len: text.len(),
        }
    }

    /// Maps a byte range of the document (from a Polly mark) to the byte range of the text's
    /// characters it touches; `None` when it covers only markup.
    pub fn to_text_range(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let (body_start, body_end) = self.body;
        let start = start.max(body_start);
        let end = end.min(body_end);
        if start >= end {
            return None;
        }
        // The character whose escaped form holds `start`, and the first one starting at or
        // after `end`.
        let first = self
            .map
            .partition_point(|&(_, s)| s <= start)
            .checked_sub(1)?;
        let after = self.map.partition_point(|&(_, s)| s < end);
        let text_start = self.map[first].0;
        let text_end = self.map.get(after).map_or(self.text_len, |&(b, _)| b);
        (text_start < text_end).then_some((text_start, text_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_maps_back() {
        let text = "Tom & “Jerry” <3 it's";
        let ssml = Ssml::with_rate(text, 120);
        assert_eq!(
            ssml.doc,
            "<speak><prosody rate=\"120%\">Tom &amp; “Jerry” &lt;3 it&apos;s</prosody></speak>"
        );
        // Every word of the text, found in the document by its escaped form, maps back to itself.
        for (word, escaped) in [
            ("Tom", "Tom"),
            ("&", "&amp;"),
            ("“Jerry”", "“Jerry”"),
            ("<3", "&lt;3"),
            ("it's", "it&apos;s"),
        ] {
            let s = ssml.doc.find(escaped).unwrap();
            let (a, b) = ssml.to_text_range(s, s + escaped.len()).unwrap();
            assert_eq!(&text[a..b], word);
        }
        // A range inside an entity still maps to its whole character.
        let amp = ssml.doc.find("&amp;").unwrap();
        assert_eq!(ssml.to_text_range(amp + 1, amp + 3), Some((4, 5)));
        // Markup only: nothing.
        assert_eq!(ssml.to_text_range(0, 10), None);
        let close = ssml.doc.find("</prosody>").unwrap();
        assert_eq!(ssml.to_text_range(close, ssml.doc.len()), None);
        // A range spanning the wrapper is clipped to the text.
        assert_eq!(ssml.to_text_range(0, ssml.doc.len()), Some((0, text.len())));
    }

    #[test]
    fn forbidden_characters_become_spaces() {
        let ssml = Ssml::with_rate("a\u{1}b\u{ffff}c", 100);
        assert!(ssml.doc.contains(">a b c<"), "{}", ssml.doc);
        let s = ssml.doc.find('c').unwrap();
        assert_eq!(ssml.to_text_range(s, s + 1), Some((6, 7)));
    }

    #[test]
    fn overhead_bounds_the_wrapper() {
        let ssml = Ssml::with_rate("", 200);
        assert!(ssml.doc.len() <= SSML_OVERHEAD, "{}", ssml.doc.len());
        assert_eq!(escaped_len('"'), "&quot;".len());
    }
}
