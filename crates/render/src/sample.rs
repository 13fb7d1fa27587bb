//! Stand-in word timings for the quickstart sample and the benchmark: marks spread over the
//! audio in proportion to each word's length. Real timings come from the TTS engine.

/// Polly-format word marks (JSON lines) for `text`, spread over `audio_ms` by character
/// count, with sentence marks at sentence starts. Byte offsets index `text` as UTF-8.
pub fn even_marks(text: &str, audio_ms: u64) -> String {
    let words: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .collect();
    let weight = |w: &str| w.chars().count() as u64 + 2;
    let total: u64 = words.iter().map(|(_, w)| weight(w)).sum::<u64>().max(1);
    // Leave a short silence at the end, as TTS engines do.
    let span = audio_ms.saturating_sub(audio_ms / 50 + 100);
    let mut out = String::new();
    let mut acc = 0u64;
    let mut sentence_start = true;
    for (start, w) in words {
        let time = acc * span / total;
        let end = start + w.len();
        if sentence_start {
            out.push_str(&format!(
                "{{\"time\":{time},\"type\":\"sentence\",\"start\":{start},\"end\":{end},\"value\":{}}}\n",
                serde_json::Value::from(w)
            ));
        }
        out.push_str(&format!(
            "{{\"time\":{time},\"type\":\"word\",\"start\":{start},\"end\":{end},\"value\":{}}}\n",
            serde_json::Value::from(w)
        ));
        sentence_start = w.ends_with(['.', '!', '?']);
        acc += weight(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_cover_every_word_in_order_within_the_audio() {
        let text = "Héllo there. It's “quoted” ß!";
        let m = even_marks(text, 5000);
        let marks = storyreel_captions::marks::parse_marks(&m).expect("valid marks");
        let words: Vec<_> = marks
            .iter()
            .filter(|m| m.kind == storyreel_captions::marks::MarkKind::Word)
            .collect();
        assert_eq!(words.len(), 5);
        for w in &words {
            assert_eq!(&text[w.start..w.end], w.value);
            assert!(w.time_ms < 5000);
        }
        assert!(words.windows(2).all(|p| p[0].time_ms < p[1].time_ms));
    }
}
