//! Subtitle sidecars (SRT, WebVTT with karaoke word timestamps) and detection of the spoken title.
//!
//! One cue per caption page, so the sidecar shows exactly what the burnt-in captions show.

use std::fmt::Write;

use unicode_normalization::UnicodeNormalization;

use crate::pages::{Page, Word};

/// Formats `ms` as `HH:MM:SS<sep>mmm` (hours are not capped at 99).
fn timestamp(ms: u64, sep: char) -> String {
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A word's text on one line: whitespace (including newlines, which would end a cue) collapsed.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SubRip subtitles: one numbered cue per page, `HH:MM:SS,mmm`, words joined by spaces.
///
/// Pages that last no time are skipped (numbering stays contiguous). SRT has no escaping, so an
/// arrow `-->` in the text, which some parsers take for a timing line, becomes `->`.
pub fn to_srt(pages: &[Page]) -> String {
    let mut out = String::new();
    let mut n = 0;
    for page in pages.iter().filter(|p| p.end_ms > p.start_ms) {
        n += 1;
        let text = page
            .words
            .iter()
            .map(|w| one_line(&w.text))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            out,
            "{n}\n{} --> {}\n{}\n\n",
            timestamp(page.start_ms, ','),
            timestamp(page.end_ms, ','),
            text.replace("-->", "->")
        );
    }
    out
}

/// WebVTT subtitles: a `WEBVTT` header, then one cue per page (`HH:MM:SS.mmm`), with a
/// timestamp tag `<HH:MM:SS.mmm>` before each word after the first, which players use to
/// highlight the word being spoken.
///
/// Text is escaped (`&`, `<`, `>` as entities, so `-->` cannot end up in cue text). A word
/// timestamp is written only if it is strictly inside the cue and after the previous one, as
/// the format requires; a word starting at the same time as the one before shares its
/// timestamp. Pages that last no time are skipped.
pub fn to_vtt(pages: &[Page]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for page in pages.iter().filter(|p| p.end_ms > p.start_ms) {
        let _ = writeln!(
            out,
            "{} --> {}",
            timestamp(page.start_ms, '.'),
            timestamp(page.end_ms, '.')
        );
        let mut last = page.start_ms;
        for (i, word) in page.words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
                if word.start_ms > last && word.start_ms < page.end_ms {
                    let _ = write!(out, "<{}>", timestamp(word.start_ms, '.'));
                    last = word.start_ms;
                }
            }
            out.push_str(&escape_vtt(&one_line(&word.text)));
        }
        out.push_str("\n\n");
    }
    out
}

fn escape_vtt(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            _ => s.push(c),
        }
    }
    s
}

/// How many leading `words` of the narration read the `title` aloud: 0 if the narration does
/// not start with the title (or the title has no letters or digits).
///
/// Comparison ignores case, punctuation and spacing (so "AITA: my roommate's cat" matches the
/// words `AITA`, `my`, `roommate's`, `cat`, and "e-mail" matches "email"). The title must end on
/// a word boundary: "the cat" does not match "the cats". The renderer shows the title card during
/// these words and captions after them.
pub fn title_split(words: &[Word], title: &str) -> usize {
    let target = letters(title);
    if target.is_empty() {
        return 0;
    }
    let mut matched = String::new();
    for (i, word) in words.iter().enumerate() {
        matched.push_str(&letters(&word.text));
        if matched.len() > target.len() || !target.starts_with(&matched) {
            return 0;
        }
        if matched.len() == target.len() {
            return i + 1;
        }
    }
    0
}

/// Lowercased letters and digits of `text`, NFC-normalised, in order.
fn letters(text: &str) -> String {
    text.nfc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marks::parse_marks;
    use crate::pages::{PageConfig, plan_pages, words_from_marks};

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            sentence_end: false,
        }
    }

    fn page(words: Vec<Word>, end_ms: u64) -> Page {
        Page {
            start_ms: words[0].start_ms,
            end_ms,
            words,
        }
    }

    const MARKS: &str = r#"{"time":0,"type":"sentence","start":0,"end":40,"value":"AITA for telling my sister the truth?"}
{"time":0,"type":"word","start":0,"end":4,"value":"AITA"}
{"time":520,"type":"word","start":5,"end":8,"value":"for"}
{"time":640,"type":"word","start":9,"end":16,"value":"telling"}
{"time":950,"type":"word","start":17,"end":19,"value":"my"}
{"time":1080,"type":"word","start":20,"end":26,"value":"sister"}
{"time":1400,"type":"word","start":27,"end":30,"value":"the"}
{"time":1500,"type":"word","start":31,"end":37,"value":"truth?"}
{"time":2600,"type":"word","start":38,"end":42,"value":"Okay"}
{"time":3050,"type":"word","start":43,"end":47,"value":"<so>"}
{"time":3300,"type":"word","start":48,"end":55,"value":"B&B"}
{"time":3600,"type":"word","start":56,"end":59,"value":"-->"}
{"time":3600,"type":"word","start":60,"end":64,"value":"here"}
{"time":3900,"type":"word","start":65,"end":70,"value":"goes."}
"#;

    fn story_pages() -> Vec<Page> {
        let marks = parse_marks(MARKS).unwrap();
        let words = words_from_marks(&marks, 4400);
        plan_pages(&words, &PageConfig::default(), &|t| t.len() as f32 * 50.0)
    }

    #[test]
    fn srt_snapshot() {
        insta::assert_snapshot!(to_srt(&story_pages()));
    }

    #[test]
    fn vtt_snapshot() {
        insta::assert_snapshot!(to_vtt(&story_pages()));
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0, ','), "00:00:00,000");
        assert_eq!(timestamp(3_723_045, '.'), "01:02:03.045");
        assert_eq!(timestamp(100 * 3_600_000, '.'), "100:00:00.000");
    }

    #[test]
    fn vtt_word_timestamps_stay_inside_the_cue() {
        let p = page(
            vec![
                word("a", 1000, 1000),
                word("b", 1000, 1500),
                word("c", 1500, 2000),
                word("d", 2000, 2000),
            ],
            2000,
        );
        let vtt = to_vtt(&[p]);
        assert_eq!(
            vtt,
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na b <00:00:01.500>c d\n\n"
        );
    }

    #[test]
    fn empty_and_zero_length_pages() {
        assert_eq!(to_srt(&[]), "");
        assert_eq!(to_vtt(&[]), "WEBVTT\n\n");
        let p = page(vec![word("x", 5, 5)], 5);
        assert_eq!(to_srt(std::slice::from_ref(&p)), "");
        assert_eq!(to_vtt(&[p]), "WEBVTT\n\n");
    }

    #[test]
    fn newlines_never_end_a_cue() {
        let p = page(vec![word("a\n\nb", 0, 100)], 100);
        assert_eq!(
            to_srt(std::slice::from_ref(&p)),
            "1\n00:00:00,000 --> 00:00:00,100\na b\n\n"
        );
        assert!(!to_vtt(&[p]).contains("a\n"));
    }

    #[test]
    fn title_split_matches_spoken_title() {
        let marks = parse_marks(MARKS).unwrap();
        let words = words_from_marks(&marks, 4400);
        assert_eq!(
            title_split(&words, "AITA for telling my sister the truth?"),
            7
        );
        assert_eq!(
            title_split(&words, "aita  FOR telling my sister, the TRUTH"),
            7
        );
        assert_eq!(title_split(&words, "AITA for telling"), 3);
        assert_eq!(title_split(&words, "AITA for tell"), 0);
        assert_eq!(title_split(&words, "Something else entirely"), 0);
        assert_eq!(title_split(&words, ""), 0);
        assert_eq!(title_split(&words, "?!"), 0);
        assert_eq!(title_split(&[], "AITA"), 0);
        let split = [word("e-", 0, 1), word("mail", 1, 2), word("me", 2, 3)];
        assert_eq!(title_split(&split, "Email"), 2);
        let cafe = [word("Cafe\u{301}", 0, 1), word("time", 1, 2)];
        assert_eq!(title_split(&cafe, "CAFÉ"), 1);
    }
}
