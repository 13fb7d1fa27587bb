//! Where the audio and marks branches meet: placing each part's marks on the joined audio's
//! timeline and normalising them. Pure, no I/O.

use serde::Deserialize;

use crate::error::PartRef;
use crate::marks::{self, ByteEvent, MAX_TEXT_CHARS};
use crate::{AudioPart, SpeechError, SpokenMarks};

/// Joins per-part speech marks into the marks of the whole `text`, on the timeline of the audio
/// whose parts are `audio`.
///
/// Part *k*'s marks are moved later by the decoded duration of audio parts `0..k` and their byte
/// offsets by the part's start in the text; then the marks are normalised (see the crate docs'
/// contract): one mark per whitespace-delimited word (marks inside one word merge into the
/// first, a word without a mark gets the previous word's time + 1 ms), punctuation kept with its
/// word, times strictly increasing.
///
/// The drift check fails loudly ([`SpeechError::Drift`]) when marks and audio do not describe
/// the same narration: different part counts or text ranges, parts that do not cover the text,
/// or a mark at or after the end of its own part's audio. Also errors on marks that do not
/// parse ([`SpeechError::BadMarks`]), on text that fails the usual checks, and when the engine
/// marked no word at all ([`SpeechError::NoSpokenWords`]).
pub fn join_marks(
    text: &str,
    marks: &SpokenMarks,
    audio: &[AudioPart],
) -> Result<String, SpeechError> {
    let words = marks::check_text(text, MAX_TEXT_CHARS)?;
    check_parts(text, marks, audio)?;

    let count = audio.len();
    let mut events: Vec<ByteEvent> = Vec::new();
    let mut offset_ms = 0.0f64;
    let mut word_marks = 0usize;
    for (index, (m, a)) in marks.parts.iter().zip(audio).enumerate() {
        let part = PartRef {
            index,
            count,
            start: a.text_start,
            end: a.text_end,
        };
        let part_len = a.text_end - a.text_start;
        let duration_ms = a.duration_ms();
        for mark in parse_part(&m.marks_jsonl, part_len, part)? {
            if mark.time as f64 >= duration_ms {
                return Err(SpeechError::Drift {
                    reason: format!(
                        "{part}: {} mark at {} ms is not before the end of the part's audio at {duration_ms:.0} ms",
                        if mark.sentence { "sentence" } else { "word" },
                        mark.time
                    ),
                });
            }
            word_marks += usize::from(!mark.sentence);
            events.push(ByteEvent {
                sentence: mark.sentence,
                byte: a.text_start + mark.start,
                time_ms: (offset_ms + mark.time as f64).round() as u64,
            });
        }
        offset_ms += duration_ms;
    }
    if word_marks == 0 {
        return Err(SpeechError::NoSpokenWords { words });
    }
    marks::build_marks(text, &events, offset_ms)
}

/// The parts of marks and audio must be the same, in order, and cover the text.
fn check_parts(text: &str, marks: &SpokenMarks, audio: &[AudioPart]) -> Result<(), SpeechError> {
    let drift = |reason: String| Err(SpeechError::Drift { reason });
    if marks.parts.len() != audio.len() {
        return drift(format!(
            "{} marks parts vs {} audio parts (expected the same split)",
            marks.parts.len(),
            audio.len()
        ));
    }
    let mut expected_start = 0;
    for (i, (m, a)) in marks.parts.iter().zip(audio).enumerate() {
        if (m.text_start, m.text_end) != (a.text_start, a.text_end) {
            return drift(format!(
                "part {} of {}: marks cover bytes {}..{} but audio covers {}..{} (expected the same split)",
                i + 1,
                audio.len(),
                m.text_start,
                m.text_end,
                a.text_start,
                a.text_end
            ));
        }
        if a.text_start != expected_start
            || a.text_end <= a.text_start
            || text.get(a.text_start..a.text_end).is_none()
        {
            return drift(format!(
                "part {} of {} covers bytes {}..{} (expected a non-empty range starting at {expected_start}, on character boundaries of the {}-byte text)",
                i + 1,
                audio.len(),
                a.text_start,
                a.text_end,
                text.len()
            ));
        }
        if a.sample_rate == 0 || a.samples == 0 {
            return drift(format!(
                "part {} of {} has {} samples at {} Hz (expected audio)",
                i + 1,
                audio.len(),
                a.samples,
                a.sample_rate
            ));
        }
        expected_start = a.text_end;
    }
    if expected_start != text.len() {
        return drift(format!(
            "parts end at byte {expected_start} (expected the text's end at {})",
            text.len()
        ));
    }
    Ok(())
}

/// A word or sentence mark of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartMark {
    pub sentence: bool,
    pub time: u64,
    pub start: usize,
    pub end: usize,
}

#[derive(Deserialize)]
struct RawMark {
    time: u64,
    #[serde(rename = "type")]
    kind: String,
    start: Option<usize>,
    end: Option<usize>,
}

/// Parses one part's Polly speech marks (JSON lines): `word` and `sentence` marks with byte
/// ranges inside `0..part_len`; other types (`viseme`, `ssml`) are skipped. Bounded: at most
/// `4 × part_len + 64` lines.
pub(crate) fn parse_part(
    jsonl: &str,
    part_len: usize,
    part: PartRef,
) -> Result<Vec<PartMark>, SpeechError> {
    let max_lines = part_len.saturating_mul(4).saturating_add(64);
    let bad = |line: usize, reason: String, source: Option<serde_json::Error>| {
        Err(SpeechError::BadMarks {
            part,
            line,
            reason,
            source,
        })
    };
    let mut out = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        let line_no = i + 1;
        if line_no > max_lines {
            return bad(
                line_no,
                format!("too many lines (expected <= {max_lines} for {part_len} bytes of text)"),
                None,
            );
        }
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawMark = match serde_json::from_str(line) {
            Ok(raw) => raw,
            Err(e) => return bad(line_no, "not a speech mark object".to_owned(), Some(e)),
        };
        let sentence = match raw.kind.as_str() {
            "word" => false,
            "sentence" => true,
            _ => continue,
        };
        let (Some(start), Some(end)) = (raw.start, raw.end) else {
            return bad(
                line_no,
                format!("{} mark without start and end", raw.kind),
                None,
            );
        };
        if start > end || end > part_len {
            return bad(
                line_no,
                format!("byte range {start}..{end} (expected start <= end <= {part_len})"),
                None,
            );
        }
        out.push(PartMark {
            sentence,
            time: raw.time,
            start,
            end,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MarksPart;

    fn audio(start: usize, end: usize, ms: u64) -> AudioPart {
        AudioPart {
            text_start: start,
            text_end: end,
            samples: ms * 24,
            sample_rate: 24_000,
        }
    }

    fn marks(parts: &[(usize, usize, &str)]) -> SpokenMarks {
        SpokenMarks {
            parts: parts
                .iter()
                .map(|&(s, e, m)| MarksPart {
                    text_start: s,
                    text_end: e,
                    marks_jsonl: m.to_owned(),
                })
                .collect(),
        }
    }

    fn words(jsonl: &str) -> Vec<(u64, String)> {
        jsonl
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["type"] == "word")
            .map(|v| {
                (
                    v["time"].as_u64().unwrap(),
                    v["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn parts_are_offset_by_audio_and_text_before_them() {
        let text = "Hi there. $5, ok?";
        // Polly-style: punctuation outside the word ranges, "$5" spoken as two words.
        let m = marks(&[
            (
                0,
                10,
                "{\"time\":0,\"type\":\"sentence\",\"start\":0,\"end\":9,\"value\":\"Hi there.\"}\n\
                 {\"time\":5,\"type\":\"word\",\"start\":0,\"end\":2,\"value\":\"Hi\"}\n\
                 {\"time\":300,\"type\":\"word\",\"start\":3,\"end\":8,\"value\":\"there\"}\n\
                 {\"time\":310,\"type\":\"viseme\",\"value\":\"p\"}\n",
            ),
            (
                10,
                17,
                "{\"time\":0,\"type\":\"sentence\",\"start\":0,\"end\":7,\"value\":\"$5, ok?\"}\n\
                 {\"time\":20,\"type\":\"word\",\"start\":1,\"end\":2,\"value\":\"5\"}\n\
                 {\"time\":250,\"type\":\"word\",\"start\":0,\"end\":1,\"value\":\"$\"}\n\
                 {\"time\":600,\"type\":\"word\",\"start\":4,\"end\":6,\"value\":\"ok\"}\n",
            ),
        ]);
        let a = [audio(0, 10, 1000), audio(10, 17, 900)];
        let out = join_marks(text, &m, &a).unwrap();
        assert_eq!(
            words(&out),
            [
                (5, "Hi".to_owned()),
                (300, "there.".to_owned()),
                (1020, "$5,".to_owned()),
                (1600, "ok?".to_owned())
            ]
        );
        assert!(
            out.contains("\"type\":\"sentence\",\"start\":10,\"end\":17,\"value\":\"$5, ok?\"")
        );
    }

    #[test]
    fn drift_is_an_error_with_the_values() {
        let text = "One two";
        let m = marks(&[(
            0,
            7,
            "{\"time\":0,\"type\":\"word\",\"start\":0,\"end\":3,\"value\":\"One\"}\n\
             {\"time\":950,\"type\":\"word\",\"start\":4,\"end\":7,\"value\":\"two\"}\n",
        )]);
        let err = join_marks(text, &m, &[audio(0, 7, 900)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "speech marks and audio disagree: part 1 of 1 (bytes 0..7): word mark at 950 ms is not before the end of the part's audio at 900 ms"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Fatal);
        assert!(join_marks(text, &m, &[audio(0, 7, 1000)]).is_ok());
        // Different splits.
        let err = join_marks(text, &m, &[audio(0, 4, 500), audio(4, 7, 500)]).unwrap_err();
        assert!(
            err.to_string().contains("1 marks parts vs 2 audio parts"),
            "{err}"
        );
        let m2 = marks(&[(0, 4, ""), (4, 7, "")]);
        let err = join_marks(text, &m2, &[audio(0, 3, 500), audio(3, 7, 500)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("marks cover bytes 0..4 but audio covers 0..3"),
            "{err}"
        );
        let err = join_marks(text, &marks(&[(0, 5, "")]), &[audio(0, 5, 500)]).unwrap_err();
        assert!(err.to_string().contains("parts end at byte 5"), "{err}");
    }

    #[test]
    fn bad_marks_name_the_part_and_line() {
        let text = "One two";
        let m = marks(&[(
            0,
            7,
            "{\"time\":0,\"type\":\"word\",\"start\":0,\"end\":3}\nnot json\n",
        )]);
        let err = join_marks(text, &m, &[audio(0, 7, 900)]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad speech marks for part 1 of 1 (bytes 0..7), line 2"),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
        let m = marks(&[(
            0,
            7,
            "{\"time\":0,\"type\":\"word\",\"start\":0,\"end\":30}\n",
        )]);
        let err = join_marks(text, &m, &[audio(0, 7, 900)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("byte range 0..30 (expected start <= end <= 7)"),
            "{err}"
        );
        let err = join_marks(text, &marks(&[(0, 7, "")]), &[audio(0, 7, 900)]).unwrap_err();
        assert!(
            matches!(err, SpeechError::NoSpokenWords { words: 2 }),
            "{err}"
        );
        let huge = "{\"time\":0,\"type\":\"viseme\",\"value\":\"p\"}\n".repeat(100);
        let err = join_marks(text, &marks(&[(0, 7, &huge)]), &[audio(0, 7, 900)]).unwrap_err();
        assert!(err.to_string().contains("too many lines"), "{err}");
    }
}
