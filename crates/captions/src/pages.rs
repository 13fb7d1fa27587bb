//! Caption timing: turns speech marks into timed words and groups words into caption pages.
//!
//! Pure functions, no I/O. Invariants of the output (relied on by the renderer and the SRT/VTT
//! writers): words and pages are in time order, every page holds 1..=`max_words` words, each
//! page's `[start_ms, end_ms)` lies inside `[first word start, next page start]`, and pages never
//! overlap.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::marks::{Mark, MarkKind};

/// Gap (beyond a word's expected length) that [`words_from_marks`] treats as a pause, and the
/// default [`PageConfig::pause_ms`].
pub const DEFAULT_PAUSE_MS: u64 = 350;
/// Expected speaking time per character, used to tell a long word from a word followed by a
/// pause. Polly's voices speak ~12-15 characters per second; 90 ms is on the slow side, so only
/// real pauses are detected.
pub const MS_PER_CHAR: u64 = 90;
/// Words shorter than this count as this many characters: even "a" takes a moment to say.
const MIN_CHARS: u64 = 2;

/// One spoken word with its time span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Word {
    /// The word as written in the story (trimmed; never empty), with its punctuation.
    pub text: String,
    /// When the word starts, in ms from the start of the audio.
    pub start_ms: u64,
    /// When the word ends: the next word's start, or earlier if a pause follows. `>= start_ms`.
    pub end_ms: u64,
    /// Whether a sentence ends with this word (the last word always ends one).
    pub sentence_end: bool,
}

/// A group of words shown on screen together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// 1 or more words, in spoken order.
    pub words: Vec<Word>,
    /// When the page appears: its first word's start.
    pub start_ms: u64,
    /// When the page disappears (exclusive): the next page's start, or earlier after a pause.
    pub end_ms: u64,
}

impl Page {
    /// The page's words joined by single spaces, as written in the story.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (i, w) in self.words.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&w.text);
        }
        s
    }
}

/// How words are grouped into pages.
#[derive(Debug, Clone, PartialEq)]
pub struct PageConfig {
    /// Most words on a page (values below 1 count as 1). Default 3.
    pub max_words: usize,
    /// Widest a page's text may be, as measured by the `measure` function given to
    /// [`plan_pages`]. Default: unlimited; use `CaptionRenderer::page_config` for the real width.
    pub max_width_px: f32,
    /// A silence between two words at least this long ends a page. Default 350 ms.
    pub pause_ms: u64,
    /// How long a page stays up after its last word when a pause follows. Default 300 ms.
    pub hold_ms: u64,
}

impl Default for PageConfig {
    fn default() -> Self {
        Self {
            max_words: 3,
            max_width_px: f32::INFINITY,
            pause_ms: DEFAULT_PAUSE_MS,
            hold_ms: 300,
        }
    }
}

/// Builds timed words from speech marks (as returned by `parse_marks`).
///
/// Polly word marks only carry start times: a word ends where the next one starts (the last at
/// `audio_end_ms`), unless the gap is longer than [`MS_PER_CHAR`] per character plus
/// [`DEFAULT_PAUSE_MS`], in which case the word ends after its expected length and a pause
/// follows. Sentence ends come from `sentence` marks (by byte offset: a sentence mark starts the
/// next sentence) and from trailing `.`, `!`, `?` or `…` (before closing quotes or brackets).
/// Word marks with blank text are dropped, but still end the word before them. Marks are expected
/// in the order `parse_marks` guarantees; out-of-order times are clamped, never a panic.
pub fn words_from_marks(marks: &[Mark], audio_end_ms: u64) -> Vec<Word> {
    let word_marks: Vec<&Mark> = marks.iter().filter(|m| m.kind == MarkKind::Word).collect();
    let mut sentence_starts: Vec<usize> = marks
        .iter()
        .filter(|m| m.kind == MarkKind::Sentence)
        .map(|m| m.start)
        .collect();
    sentence_starts.sort_unstable();

    let mut words = Vec::with_capacity(word_marks.len());
    let mut last_start = 0u64;
    for (i, mark) in word_marks.iter().enumerate() {
        let text = mark.value.trim();
        // Clamped so that even unordered input yields ordered words.
        let start_ms = mark.time_ms.max(last_start);
        last_start = start_ms;
        if text.is_empty() {
            continue;
        }
        let next = word_marks.get(i + 1);
        let next_start_ms = next.map_or(audio_end_ms, |n| n.time_ms).max(start_ms);
        let expected_ms = spoken_ms(text);
        let end_ms = if next_start_ms - start_ms > expected_ms + DEFAULT_PAUSE_MS {
            start_ms + expected_ms
        } else {
            next_start_ms
        };
        let sentence_mark_between = next.is_some_and(|n| {
            // Is there a sentence start s with mark.start < s <= next.start?
            let from = sentence_starts.partition_point(|&s| s <= mark.start);
            sentence_starts.get(from).is_some_and(|&s| s <= n.start)
        });
        let sentence_end = next.is_none() || sentence_mark_between || ends_sentence(text);
        words.push(Word {
            text: text.to_owned(),
            start_ms,
            end_ms,
            sentence_end,
        });
    }
    if let Some(last) = words.last_mut() {
        last.sentence_end = true;
    }
    words
}

/// Expected speaking time of a word.
fn spoken_ms(text: &str) -> u64 {
    let chars = text
        .graphemes(true)
        .filter(|g| g.chars().any(char::is_alphanumeric))
        .count() as u64;
    chars.max(MIN_CHARS) * MS_PER_CHAR
}

/// Whether the word's trailing punctuation ends a sentence.
fn ends_sentence(text: &str) -> bool {
    let core = text.trim_end_matches(['"', '\'', ')', ']', '}', '”', '’', '»', '*', '_']);
    core.ends_with(['.', '!', '?', '…', '。', '！', '？'])
}

/// Groups words into pages.
///
/// Rules: a page holds 1..=`max_words` words and never splits a word; a page ends after a
/// sentence end and before a pause of at least `pause_ms`; the page's text (words joined by
/// single spaces, passed to `measure`) never exceeds `max_width_px`, except a single word that
/// is wider on its own, which gets a page to itself (the renderer shrinks it). Within a stretch
/// between two such breaks, a trailing one-word page takes a word from the page before it when
/// that fits ("3 + 1" becomes "2 + 2"), since a lone word flashing by reads badly.
///
/// Timing: a page starts at its first word's start and ends at the next page's start, or at its
/// last word's end plus `hold_ms` if that comes first (the last page ends at its last word's end
/// plus `hold_ms`). Words are expected in time order, as [`words_from_marks`] returns them.
pub fn plan_pages(words: &[Word], cfg: &PageConfig, measure: &dyn Fn(&str) -> f32) -> Vec<Page> {
    let max_words = cfg.max_words.max(1);
    let fits = |ws: &[Word]| -> bool {
        let width = measure(&join(ws));
        // A NaN width counts as fitting, so a broken measure cannot explode the page count.
        width <= cfg.max_width_px || width.is_nan()
    };

    let mut groups: Vec<Vec<Word>> = Vec::new();
    let mut run_start = 0; // index in `groups` of the first page of the current run
    for (i, word) in words.iter().enumerate() {
        let hard_break = i == 0 || {
            let prev = &words[i - 1];
            prev.sentence_end || word.start_ms.saturating_sub(prev.end_ms) >= cfg.pause_ms
        };
        if hard_break {
            rebalance(&mut groups[run_start..], &fits);
            run_start = groups.len();
            groups.push(vec![word.clone()]);
            continue;
        }
        let Some(current) = groups.last_mut() else {
            groups.push(vec![word.clone()]);
            continue;
        };
        let lone_too_wide = current.len() == 1 && !fits(current);
        let mut candidate = current.clone();
        candidate.push(word.clone());
        if current.len() >= max_words || lone_too_wide || !fits(&candidate) {
            groups.push(vec![word.clone()]);
        } else {
            *current = candidate;
        }
    }
    rebalance(&mut groups[run_start..], &fits);

    let mut pages: Vec<Page> = groups
        .into_iter()
        .map(|words| {
            let start_ms = words.first().map_or(0, |w| w.start_ms);
            Page {
                words,
                start_ms,
                end_ms: start_ms,
            }
        })
        .collect();
    for i in 0..pages.len() {
        let last_end = pages[i]
            .words
            .last()
            .map_or(pages[i].start_ms, |w| w.end_ms);
        let held = last_end.saturating_add(cfg.hold_ms);
        let end = match pages.get(i + 1) {
            Some(next) => held.min(next.start_ms),
            None => held,
        };
        pages[i].end_ms = end.max(pages[i].start_ms);
    }
    pages
}

/// Turns a trailing "n + 1" split of a run into "(n - 1) + 2" when the new pages still fit.
fn rebalance(run: &mut [Vec<Word>], fits: &dyn Fn(&[Word]) -> bool) {
    let n = run.len();
    if n < 2 || run[n - 1].len() != 1 || run[n - 2].len() < 3 {
        return;
    }
    let (head, tail) = run.split_at_mut(n - 1);
    let prev = &mut head[n - 2];
    let last = &mut tail[0];
    let Some(moved) = prev.last().cloned() else {
        return;
    };
    let mut new_last = vec![moved];
    new_last.extend(last.iter().cloned());
    if fits(&new_last) {
        prev.pop();
        *last = new_last;
    }
}

fn join(words: &[Word]) -> String {
    let mut s = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&w.text);
    }
    s
}

/// The page on screen at `t_ms` and the index (within that page) of the word to highlight: the
/// word being spoken, or during a silence inside the page the word last spoken. `None` when no
/// page is shown. Pages are half-open intervals `[start_ms, end_ms)`, so at a boundary the later
/// page wins. Expects pages from [`plan_pages`] (sorted, non-overlapping); O(log n).
pub fn active(pages: &[Page], t_ms: u64) -> Option<(usize, usize)> {
    let idx = pages
        .partition_point(|p| p.start_ms <= t_ms)
        .checked_sub(1)?;
    let page = &pages[idx];
    if t_ms >= page.end_ms {
        return None;
    }
    let word = page
        .words
        .partition_point(|w| w.start_ms <= t_ms)
        .saturating_sub(1);
    Some((idx, word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marks::parse_marks;

    /// A measure that behaves like a bold font: 0.6 em per character at 100 px.
    fn mono(text: &str) -> f32 {
        text.chars().count() as f32 * 60.0
    }

    fn w(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            sentence_end: ends_sentence(text),
        }
    }

    fn cfg(max_width_px: f32) -> PageConfig {
        PageConfig {
            max_width_px,
            ..PageConfig::default()
        }
    }

    fn table(pages: &[Page]) -> String {
        use std::fmt::Write;
        let ms = |t: u64| format!("{:02}:{:02}.{:03}", t / 60_000, t / 1000 % 60, t % 1000);
        let mut s = String::new();
        for (i, p) in pages.iter().enumerate() {
            let _ = write!(s, "{i:>3} {} -> {} |", ms(p.start_ms), ms(p.end_ms));
            for w in &p.words {
                let _ = write!(
                    s,
                    " {}[{}-{}]{}",
                    w.text,
                    w.start_ms,
                    w.end_ms,
                    if w.sentence_end { "." } else { "" }
                );
            }
            s.push('\n');
        }
        s
    }

    fn check_invariants(pages: &[Page], max_words: usize) {
        let mut last_end = 0;
        for p in pages {
            assert!(!p.words.is_empty() && p.words.len() <= max_words, "{p:?}");
            assert!(p.start_ms >= last_end, "overlap at {p:?}");
            assert!(p.end_ms >= p.start_ms);
            assert_eq!(p.start_ms, p.words[0].start_ms);
            for pair in p.words.windows(2) {
                assert!(pair[0].start_ms <= pair[1].start_ms);
            }
            last_end = p.end_ms;
        }
    }

    /// A Reddit-story narration as Polly (neural, Matthew) returns it, with sentence and
    /// viseme marks mixed in.
    const STORY: &str = r#"{"time":0,"type":"sentence","start":0,"end":52,"value":"So my roommate has been stealing my food for months."}
{"time":0,"type":"word","start":0,"end":2,"value":"So"}
{"time":0,"type":"viseme","value":"s"}
{"time":187,"type":"word","start":3,"end":5,"value":"my"}
{"time":312,"type":"word","start":6,"end":14,"value":"roommate"}
{"time":775,"type":"word","start":15,"end":18,"value":"has"}
{"time":912,"type":"word","start":19,"end":23,"value":"been"}
{"time":1050,"type":"word","start":24,"end":32,"value":"stealing"}
{"time":1500,"type":"word","start":33,"end":35,"value":"my"}
{"time":1612,"type":"word","start":36,"end":40,"value":"food"}
{"time":1900,"type":"word","start":41,"end":44,"value":"for"}
{"time":2037,"type":"word","start":45,"end":52,"value":"months."}
{"time":3100,"type":"sentence","start":53,"end":80,"value":"Last night, I finally snapped"}
{"time":3100,"type":"word","start":53,"end":57,"value":"Last"}
{"time":3337,"type":"word","start":58,"end":64,"value":"night,"}
{"time":4100,"type":"word","start":65,"end":66,"value":"I"}
{"time":4212,"type":"word","start":67,"end":74,"value":"finally"}
{"time":4650,"type":"word","start":75,"end":82,"value":"snapped"}
{"time":5150,"type":"sentence","start":83,"end":120,"value":"AITA for labeling everything"}
{"time":5150,"type":"word","start":83,"end":87,"value":"AITA"}
{"time":5900,"type":"word","start":88,"end":91,"value":"for"}
{"time":6012,"type":"word","start":92,"end":100,"value":"labeling"}
{"time":6500,"type":"word","start":101,"end":120,"value":"everything?"}
"#;

    #[test]
    fn story_page_plan() {
        let marks = parse_marks(STORY).unwrap();
        let words = words_from_marks(&marks, 7400);
        let pages = plan_pages(&words, &cfg(860.0), &mono);
        check_invariants(&pages, 3);
        insta::assert_snapshot!(table(&pages));
    }

    /// Sentence marks without punctuation, a long word, equal times (Polly emits those for
    /// "e.g."-style tokens) and a final word that runs into trailing silence.
    const TERSE: &str = r#"{"time":50,"type":"sentence","start":0,"end":30,"value":"we never talked about it again"}
{"time":50,"type":"word","start":0,"end":2,"value":"we"}
{"time":160,"type":"word","start":3,"end":8,"value":"never"}
{"time":400,"type":"word","start":9,"end":15,"value":"talked"}
{"time":700,"type":"word","start":16,"end":21,"value":"about"}
{"time":900,"type":"word","start":22,"end":24,"value":"it"}
{"time":1000,"type":"word","start":25,"end":30,"value":"again"}
{"time":1500,"type":"sentence","start":31,"end":80,"value":"honestly incomprehensibilities"}
{"time":1500,"type":"word","start":31,"end":39,"value":"honestly"}
{"time":1900,"type":"word","start":40,"end":58,"value":"incomprehensibilities"}
{"time":2900,"type":"word","start":59,"end":62,"value":"e.g"}
{"time":2900,"type":"word","start":63,"end":66,"value":"ok"}
{"time":3100,"type":"word","start":67,"end":71,"value":"bye"}
"#;

    #[test]
    fn terse_page_plan() {
        let marks = parse_marks(TERSE).unwrap();
        let words = words_from_marks(&marks, 6000);
        let pages = plan_pages(&words, &cfg(860.0), &mono);
        check_invariants(&pages, 3);
        insta::assert_snapshot!(table(&pages));
    }

    #[test]
    fn word_ends_early_before_a_pause() {
        let marks = parse_marks(STORY).unwrap();
        let words = words_from_marks(&marks, 7400);
        // "months." at 2037 with the next word at 3100: 6 chars * 90 = 540 ms, then a pause.
        let months = words.iter().find(|w| w.text == "months.").unwrap();
        assert_eq!((months.start_ms, months.end_ms), (2037, 2577));
        // "So" runs into "my": no pause.
        assert_eq!(words[0].end_ms, 187);
        // Sentence marks end sentences even without punctuation.
        assert!(
            words
                .iter()
                .find(|w| w.text == "snapped")
                .unwrap()
                .sentence_end
        );
        assert!(
            !words
                .iter()
                .find(|w| w.text == "night,")
                .unwrap()
                .sentence_end
        );
        // The last word ends with the audio unless the audio trails off.
        assert!(words.last().unwrap().sentence_end);
    }

    #[test]
    fn never_more_than_max_words() {
        let words: Vec<Word> = (0..20).map(|i| w("ab", i * 100, i * 100 + 100)).collect();
        for max_words in 1..5 {
            let pages = plan_pages(
                &words,
                &PageConfig {
                    max_words,
                    ..cfg(10_000.0)
                },
                &mono,
            );
            check_invariants(&pages, max_words);
            assert_eq!(pages.iter().map(|p| p.words.len()).sum::<usize>(), 20);
        }
        // max_words 0 behaves as 1
        let pages = plan_pages(
            &words,
            &PageConfig {
                max_words: 0,
                ..cfg(10_000.0)
            },
            &mono,
        );
        assert_eq!(pages.len(), 20);
    }

    #[test]
    fn breaks_at_sentence_end_and_pause() {
        let words = vec![
            w("one.", 0, 300),
            w("two", 300, 600),
            w("three", 600, 800),
            // 400 ms of silence after "three"
            w("four", 1200, 1500),
        ];
        let pages = plan_pages(&words, &cfg(10_000.0), &mono);
        let texts: Vec<String> = pages.iter().map(Page::text).collect();
        assert_eq!(texts, ["one.", "two three", "four"]);
        // The page before the pause is held for 300 ms, then nothing until "four".
        assert_eq!(pages[1].end_ms, 1100);
        assert_eq!(active(&pages, 1099), Some((1, 1)));
        assert_eq!(active(&pages, 1100), None);
        assert_eq!(active(&pages, 1199), None);
        assert_eq!(active(&pages, 1200), Some((2, 0)));
        // A short hold never overlaps the next page.
        assert_eq!(pages[0].end_ms, 300);
    }

    #[test]
    fn long_word_gets_its_own_page() {
        let words = vec![
            w("a", 0, 100),
            w("supercalifragilistic", 100, 900),
            w("b", 900, 1000),
            w("c", 1000, 1100),
        ];
        let pages = plan_pages(&words, &cfg(600.0), &mono);
        let texts: Vec<String> = pages.iter().map(Page::text).collect();
        assert_eq!(texts, ["a", "supercalifragilistic", "b c"]);
        for p in &pages {
            assert!(p.words.len() == 1 || mono(&p.text()) <= 600.0);
        }
    }

    #[test]
    fn width_limits_pages() {
        let words: Vec<Word> = ["alpha", "beta", "gamma", "delta"]
            .iter()
            .enumerate()
            .map(|(i, t)| w(t, i as u64 * 300, i as u64 * 300 + 300))
            .collect();
        let pages = plan_pages(&words, &cfg(11.0 * 60.0), &mono);
        for p in &pages {
            assert!(mono(&p.text()) <= 660.0, "{}", p.text());
        }
        assert_eq!(pages.len(), 2);
    }

    #[test]
    fn three_plus_one_becomes_two_plus_two() {
        let words: Vec<Word> = ["a", "b", "c", "d."]
            .iter()
            .enumerate()
            .map(|(i, t)| w(t, i as u64 * 200, i as u64 * 200 + 200))
            .collect();
        let pages = plan_pages(&words, &cfg(10_000.0), &mono);
        let texts: Vec<String> = pages.iter().map(Page::text).collect();
        assert_eq!(texts, ["a b", "c d."]);
    }

    #[test]
    fn active_at_boundaries() {
        let words: Vec<Word> = (0..6)
            .map(|i| w("x", 1000 + i * 250, 1250 + i * 250))
            .collect();
        let pages = plan_pages(&words, &cfg(10_000.0), &mono);
        assert_eq!(pages.len(), 2);
        assert_eq!(active(&pages, 0), None);
        assert_eq!(active(&pages, 999), None);
        assert_eq!(active(&pages, 1000), Some((0, 0)));
        assert_eq!(active(&pages, 1249), Some((0, 0)));
        assert_eq!(active(&pages, 1250), Some((0, 1)));
        assert_eq!(active(&pages, 1749), Some((0, 2)));
        assert_eq!(active(&pages, 1750), Some((1, 0)));
        let last_end = pages[1].end_ms;
        assert_eq!(last_end, 2500 + 300);
        assert_eq!(active(&pages, last_end - 1), Some((1, 2)));
        assert_eq!(active(&pages, last_end), None);
        assert_eq!(active(&[], 5), None);
    }

    #[test]
    fn sweeping_time_is_monotonic() {
        let marks = parse_marks(STORY).unwrap();
        let pages = plan_pages(&words_from_marks(&marks, 7400), &cfg(860.0), &mono);
        let mut last = (0, 0);
        for t in 0..8000 {
            if let Some(now) = active(&pages, t) {
                assert!(now >= last, "went back at {t} ms: {now:?} after {last:?}");
                last = now;
            }
        }
        assert_eq!(last.0, pages.len() - 1);
    }

    #[test]
    fn odd_input_never_panics() {
        let marks = vec![
            Mark {
                time_ms: 500,
                kind: MarkKind::Word,
                start: 0,
                end: 1,
                value: "b".into(),
            },
            Mark {
                time_ms: 100,
                kind: MarkKind::Word,
                start: 0,
                end: 1,
                value: "  ".into(),
            },
            Mark {
                time_ms: 50,
                kind: MarkKind::Word,
                start: 0,
                end: 1,
                value: "a".into(),
            },
        ];
        let words = words_from_marks(&marks, 0);
        assert_eq!(words.len(), 2);
        assert!(words.windows(2).all(|p| p[0].start_ms <= p[1].start_ms));
        assert!(words.iter().all(|w| w.end_ms >= w.start_ms));
        let pages = plan_pages(&words, &cfg(f32::NAN), &|_| f32::NAN);
        check_invariants(&pages, 3);
        assert!(plan_pages(&[], &cfg(1.0), &mono).is_empty());
    }
}
