//! Building Polly-format speech marks from an engine's word events: pure, no I/O.
//!
//! Engines report a word by the position where they started speaking it; the marks need byte
//! ranges of whole words of the original text. Words are the text's whitespace-delimited tokens
//! (punctuation stays on its word: `"truth?"`), so each event is mapped to the token holding its
//! position, and every token gets exactly one mark. libespeak-ng reports character positions
//! ([`speech_marks`]); Polly reports byte ranges, and [`build_marks`] takes byte positions.

use std::fmt::Write as _;

use crate::SpeechError;

/// Longest accepted text, in characters (about 17,000 words, over an hour and a half of speech;
/// a short's story is a few thousand characters). Bounds the engine's work and every buffer here.
pub const MAX_TEXT_CHARS: usize = 100_000;

/// A word or sentence event as libespeak-ng reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineEvent {
    /// True for a sentence start, false for a word start.
    pub sentence: bool,
    /// 1-based character (not byte) position in the text given to the engine.
    pub char_position: i32,
    /// Milliseconds from the start of the audio.
    pub time_ms: i32,
}

/// A word or sentence event at a byte position of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteEvent {
    /// True for a sentence start, false for a word start.
    pub sentence: bool,
    /// Byte offset in the text where the engine started the word or sentence.
    pub byte: usize,
    /// Milliseconds from the start of the audio.
    pub time_ms: u64,
}

/// A whitespace-delimited word: its byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub start: usize,
    pub end: usize,
}

/// Validates text for synthesis; returns its number of words.
pub(crate) fn check_text(text: &str, max_chars: usize) -> Result<usize, SpeechError> {
    let chars = text.chars().take(max_chars.saturating_add(1)).count();
    if chars > max_chars {
        return Err(SpeechError::TextTooLong {
            chars,
            max: max_chars,
        });
    }
    if let Some(offset) = text.find('\0') {
        return Err(SpeechError::NulInText { offset });
    }
    match text.split_whitespace().count() {
        0 => Err(SpeechError::NoWords { bytes: text.len() }),
        n => Ok(n),
    }
}

/// The whitespace-delimited words of `text`, in order.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (byte, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(Token {
                    start: s,
                    end: byte,
                });
            }
        } else if start.is_none() {
            start = Some(byte);
        }
    }
    if let Some(s) = start {
        out.push(Token {
            start: s,
            end: text.len(),
        });
    }
    out
}

/// Where a byte position falls: `(token, inside)`, with `inside` false when the position is
/// whitespace (or past the end) and the token is the next one (the last one past the end).
/// `tokens` is non-empty and in text order.
fn token_at(tokens: &[Token], pos: usize) -> (usize, bool) {
    let after = tokens.partition_point(|t| t.start <= pos);
    match after.checked_sub(1) {
        None => (0, false),
        Some(i) if pos < tokens[i].end => (i, true),
        Some(i) => ((i + 1).min(tokens.len() - 1), false),
    }
}

/// Builds the speech marks of `text` from libespeak-ng's `events` (in the order the engine sent
/// them, at 1-based character positions) for audio lasting `duration_ms`; see [`build_marks`].
pub(crate) fn speech_marks(
    text: &str,
    events: &[EngineEvent],
    duration_ms: f64,
) -> Result<String, SpeechError> {
    // Byte offset of each character, plus the end of the text.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte_events: Vec<ByteEvent> = events
        .iter()
        .filter_map(|ev| {
            // Positions are 1-based; 0 marks an event that belongs to no text (the end pause).
            let pos = usize::try_from(ev.char_position)
                .ok()
                .and_then(|p| p.checked_sub(1))?;
            Some(ByteEvent {
                sentence: ev.sentence,
                byte: offsets.get(pos).copied().unwrap_or(text.len()),
                time_ms: u64::try_from(ev.time_ms).unwrap_or(0),
            })
        })
        .collect();
    build_marks(text, &byte_events, duration_ms)
}

/// Builds the speech marks of `text` from engine `events` (in the order the engine sent them)
/// for audio lasting `duration_ms`.
///
/// Each token takes the time of the first word event inside it, else of the first one in the
/// whitespace before it; so several events inside one token (a number or URL the engine
/// expands into several words) make one mark. A token the engine did not report (a lone dash or
/// emoji it skipped) takes the previous word's time + 1 ms. Times are then made strictly
/// increasing by nudging each to at least the previous + 1 ms. A sentence starts at the first
/// token and at each token holding a sentence event. Errors when the last word would start at or
/// after the end of the audio.
pub(crate) fn build_marks(
    text: &str,
    events: &[ByteEvent],
    duration_ms: f64,
) -> Result<String, SpeechError> {
    let toks = tokens(text);
    if toks.is_empty() {
        return Err(SpeechError::NoWords { bytes: text.len() });
    }
    // libespeak-ng reports some words at the whitespace before them (after a period, "one. two"
    // gives "two" at the space) and extra words spoken for one token at the whitespace after it
    // (an emoji's name: "🙂 I" gives "smiling" and "face" at the space before "I"). So an event
    // inside a token wins over one in the whitespace before it.
    let mut inside_time: Vec<Option<u64>> = vec![None; toks.len()];
    let mut before_time: Vec<Option<u64>> = vec![None; toks.len()];
    let mut sentence_start = vec![false; toks.len()];
    sentence_start[0] = true;
    let mut furthest = 0;
    for ev in events {
        let (tok, inside) = token_at(&toks, ev.byte);
        if ev.sentence {
            sentence_start[tok] = true;
            continue;
        }
        // Only forward: an event pointing back at an earlier word adds nothing.
        if tok < furthest {
            continue;
        }
        furthest = tok;
        let slot = if inside {
            &mut inside_time[tok]
        } else {
            &mut before_time[tok]
        };
        slot.get_or_insert(ev.time_ms);
    }
    let word_time: Vec<Option<u64>> = inside_time
        .iter()
        .zip(&before_time)
        .map(|(inside, before)| inside.or(*before))
        .collect();

    let mut times = Vec::with_capacity(toks.len());
    let mut previous: Option<u64> = None;
    for t in &word_time {
        let time = match (*t, previous) {
            (Some(t), Some(p)) => t.max(p + 1),
            (Some(t), None) => t,
            (None, Some(p)) => p + 1,
            (None, None) => 0,
        };
        times.push(time);
        previous = Some(time);
    }
    if let Some(&last) = times.last()
        && last as f64 >= duration_ms
    {
        return Err(SpeechError::Engine {
            reason: format!(
                "last word mark at {last} ms is not before the end of the audio at {duration_ms:.0} ms"
            ),
        });
    }

    let mut out = String::new();
    for (i, tok) in toks.iter().enumerate() {
        if sentence_start[i] {
            let last = (i + 1..toks.len())
                .find(|&j| sentence_start[j])
                .map_or(toks.len() - 1, |j| j - 1);
            push_mark(
                &mut out,
                times[i],
                "sentence",
                text,
                tok.start,
                toks[last].end,
            );
        }
        push_mark(&mut out, times[i], "word", text, tok.start, tok.end);
    }
    Ok(out)
}

pub(crate) fn push_mark(
    out: &mut String,
    time: u64,
    kind: &str,
    text: &str,
    start: usize,
    end: usize,
) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"time":{time},"type":"{kind}","start":{start},"end":{end},"value":""#
    );
    for ch in text.get(start..end).unwrap_or("").chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push_str("\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(char_position: i32, time_ms: i32) -> EngineEvent {
        EngineEvent {
            sentence: false,
            char_position,
            time_ms,
        }
    }

    fn sentence(char_position: i32, time_ms: i32) -> EngineEvent {
        EngineEvent {
            sentence: true,
            char_position,
            time_ms,
        }
    }

    /// (type, time, start, end, value) of every mark, parsed as JSON.
    fn parse(jsonl: &str) -> Vec<(String, u64, usize, usize, String)> {
        jsonl
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["type"].as_str().unwrap().to_owned(),
                    v["time"].as_u64().unwrap(),
                    v["start"].as_u64().unwrap() as usize,
                    v["end"].as_u64().unwrap() as usize,
                    v["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn tokens_carry_byte_ranges() {
        let t = tokens(" é\t🙂x  b ");
        let ranges: Vec<(usize, usize)> = t.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(ranges, [(1, 3), (4, 9), (11, 12)]);
        assert!(tokens(" \n\t").is_empty());
    }

    #[test]
    fn positions_map_to_the_holding_or_next_token() {
        let t = tokens("ab cd");
        assert_eq!(token_at(&t, 0), (0, true));
        assert_eq!(token_at(&t, 1), (0, true));
        assert_eq!(token_at(&t, 2), (1, false));
        assert_eq!(token_at(&t, 3), (1, true));
        assert_eq!(token_at(&t, 99), (1, false));
        assert_eq!(token_at(&tokens("  ab"), 0), (0, false));
    }

    #[test]
    fn events_become_one_mark_per_word() {
        // Character positions, not bytes: "é" and "🙂" are one character each.
        let text = "“Café”, 🙂 it wasn't me. Next one";
        let events = [
            sentence(1, 0),
            word(1, 0),
            word(9, 500),  // 🙂
            word(10, 800), // the emoji's second spoken word, at the space after it
            word(11, 900), // "it"
            word(10, 950), // back at the space: ignored
            word(14, 1000),
            word(0, 1050), // no text position: ignored
            word(21, 1100),
            sentence(25, 1500),
            word(24, 1500), // "Next", at the space before it
        ];
        let marks = parse(&speech_marks(text, &events, 2000.0).unwrap());
        let words: Vec<_> = marks.iter().filter(|m| m.0 == "word").collect();
        let values: Vec<&str> = words.iter().map(|m| m.4.as_str()).collect();
        assert_eq!(values, text.split_whitespace().collect::<Vec<_>>());
        for m in &marks {
            assert_eq!(&text[m.2..m.3], m.4);
        }
        let times: Vec<u64> = words.iter().map(|m| m.1).collect();
        // "one" has no event: previous + 1 ms.
        assert_eq!(times, [0, 500, 900, 1000, 1100, 1500, 1501]);
        let sentences: Vec<_> = marks.iter().filter(|m| m.0 == "sentence").collect();
        assert_eq!(sentences.len(), 2);
        assert_eq!(
            (sentences[0].1, sentences[0].4.as_str()),
            (0, "“Café”, 🙂 it wasn't me.")
        );
        assert_eq!(
            (sentences[1].1, sentences[1].4.as_str()),
            (1500, "Next one")
        );
    }

    #[test]
    fn equal_and_backward_times_are_nudged_forward() {
        let marks = parse(
            &speech_marks("a b c", &[word(1, 100), word(3, 100), word(5, 50)], 500.0).unwrap(),
        );
        let times: Vec<u64> = marks
            .iter()
            .filter(|m| m.0 == "word")
            .map(|m| m.1)
            .collect();
        assert_eq!(times, [100, 101, 102]);
    }

    #[test]
    fn marks_past_the_audio_are_an_error() {
        let err = speech_marks("a b", &[word(1, 0), word(3, 400)], 400.0).unwrap_err();
        assert!(err.to_string().contains("400 ms"), "{err}");
        assert!(speech_marks("a b", &[word(1, 0), word(3, 399)], 400.0).is_ok());
    }

    #[test]
    fn json_escapes_quotes_backslashes_and_controls() {
        let text = "\"q\"\u{1}\\ x";
        let marks = parse(&speech_marks(text, &[], 10.0).unwrap());
        assert_eq!(marks[1].4, "\"q\"\u{1}\\");
    }

    #[test]
    fn text_checks() {
        assert!(matches!(
            check_text("", 10),
            Err(SpeechError::NoWords { bytes: 0 })
        ));
        assert!(matches!(
            check_text(" \n\t", 10),
            Err(SpeechError::NoWords { bytes: 3 })
        ));
        assert!(matches!(
            check_text("a\0b", 10),
            Err(SpeechError::NulInText { offset: 1 })
        ));
        let err = check_text("ééééé", 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "text too long: 5 characters (expected <= 4)"
        );
        assert_eq!(check_text("éééé x", 6).unwrap(), 2);
    }
}
