//! Splitting a story into parts under an engine's per-request limit: pure and deterministic, so
//! the `speech` and `marks` steps, which run in parallel, cut the same text into the same parts.

use serde::{Deserialize, Serialize};

/// A contiguous byte range of the text, sent to the engine as one request.
///
/// Parts returned by [`split_text`] are in order, cover the whole text without gaps
/// (`parts[0].start == 0`, each `end` is the next `start`, the last `end` is the text's length),
/// and each holds at least one word; whitespace between parts ends the part before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextPart {
    /// Byte offset of the part's first byte.
    pub start: usize,
    /// Byte offset just past the part's last byte.
    pub end: usize,
}

/// Splits `text` into parts of at most `max_chars` characters each, at sentence boundaries
/// where it can (falling back to word boundaries for a sentence longer than `max_chars`, and to
/// character boundaries for a single word longer than that).
///
/// Greedy: each part takes as many whole sentences as fit. A sentence ends after a word whose
/// last letter-like character is `.`, `!`, `?`, `…` (closing quotes and brackets may follow),
/// and at every line break. `max_chars` below 1 counts as 1. Text without words gives one part
/// (or none when empty); see [`TextPart`] for the guarantees.
pub fn split_text(text: &str, max_chars: usize) -> Vec<TextPart> {
    split_by_cost(text, max_chars, |_| 1)
}

/// [`split_text`] with a cost per character instead of 1 (an SSML request counts the escaped
/// length of `&`, `<`, `>`, quotes).
pub(crate) fn split_by_cost(
    text: &str,
    max_cost: usize,
    cost: impl Fn(char) -> usize,
) -> Vec<TextPart> {
    let max_cost = max_cost.max(1);
    if text.is_empty() {
        return Vec::new();
    }
    // Char boundaries with the cumulative cost before each; the last entry is the text's end.
    let mut bounds: Vec<(usize, usize)> = Vec::with_capacity(text.len() + 1);
    let mut total = 0usize;
    for (byte, ch) in text.char_indices() {
        bounds.push((byte, total));
        total = total.saturating_add(cost(ch));
    }
    bounds.push((text.len(), total));
    // Candidate cuts: the start of each word after the first, as an index into `bounds`, and
    // whether a sentence ends before it.
    let cuts = cut_points(text, &bounds);

    let mut parts = Vec::new();
    let mut start = 0usize; // index into bounds
    let last = bounds.len() - 1;
    let mut cut_from = 0usize; // first candidate cut not yet behind `start`
    while start < last {
        let budget = bounds[start].1.saturating_add(max_cost);
        // Furthest boundary within budget (at least one character).
        let reach = bounds
            .partition_point(|&(_, c)| c <= budget)
            .saturating_sub(1);
        let reach = reach.max(start + 1).min(last);
        if reach == last {
            parts.push(TextPart {
                start: bounds[start].0,
                end: text.len(),
            });
            break;
        }
        while cut_from < cuts.len() && cuts[cut_from].0 <= start {
            cut_from += 1;
        }
        let within = &cuts[cut_from..cuts[cut_from..].partition_point(|c| c.0 <= reach) + cut_from];
        let end = within
            .iter()
            .rev()
            .find(|c| c.1)
            .or(within.last())
            .map_or(reach, |c| c.0);
        parts.push(TextPart {
            start: bounds[start].0,
            end: bounds[end].0,
        });
        start = end;
    }
    parts
}

/// Start of every word but the first (index into `bounds`), with whether a sentence ends
/// before it.
fn cut_points(text: &str, bounds: &[(usize, usize)]) -> Vec<(usize, bool)> {
    let mut cuts = Vec::new();
    let mut in_word = false;
    let mut seen_word = false;
    let mut sentence_end = false;
    let mut newline = false;
    let mut last_mark: Option<char> = None; // last non-closing character of the current word
    for (i, &(byte, _)) in bounds[..bounds.len() - 1].iter().enumerate() {
        let ch = text[byte..].chars().next().unwrap_or(' ');
        if ch.is_whitespace() {
            if in_word {
                sentence_end = matches!(last_mark, Some('.' | '!' | '?' | '…'));
                in_word = false;
            }
            newline |= ch == '\n';
        } else {
            if !in_word {
                if seen_word {
                    cuts.push((i, sentence_end || newline));
                }
                in_word = true;
                seen_word = true;
                newline = false;
                last_mark = None;
            }
            if !is_closing(ch) {
                last_mark = Some(ch);
            }
        }
    }
    cuts
}

/// Closing quotes and brackets, which may follow a sentence's final punctuation.
fn is_closing(ch: char) -> bool {
    matches!(
        ch,
        '"' | '\'' | '”' | '’' | '»' | '›' | ')' | ']' | '}' | '*' | '_'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(text: &'a str, parts: &[TextPart]) -> Vec<&'a str> {
        parts.iter().map(|p| &text[p.start..p.end]).collect()
    }

    fn check_cover(text: &str, parts: &[TextPart]) {
        assert_eq!(parts.first().map(|p| p.start), Some(0));
        assert_eq!(parts.last().map(|p| p.end), Some(text.len()));
        for w in parts.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for p in parts {
            assert!(p.start < p.end);
            assert!(
                text[p.start..p.end].split_whitespace().next().is_some(),
                "{:?}",
                &text[p.start..p.end]
            );
        }
    }

    #[test]
    fn short_text_is_one_part() {
        let text = "One. Two.";
        assert_eq!(split_text(text, 100), [TextPart { start: 0, end: 9 }]);
        assert!(split_text("", 10).is_empty());
        assert_eq!(split_text("   ", 10), [TextPart { start: 0, end: 3 }]);
    }

    #[test]
    fn splits_after_the_last_sentence_that_fits() {
        let text = "One two. Three four! Five six? Seven.";
        let parts = split_text(text, 22);
        check_cover(text, &parts);
        assert_eq!(
            pieces(text, &parts),
            ["One two. Three four! ", "Five six? Seven."]
        );
        // Closing quotes after the stop still end the sentence; a line break ends one too.
        let text = "“Go.” She went\nhome and slept. Then";
        assert_eq!(
            pieces(text, &split_text(text, 16)),
            ["“Go.” She went\n", "home and slept. ", "Then"]
        );
    }

    #[test]
    fn long_sentences_fall_back_to_words_then_characters() {
        let text = "aaaa bbbb cccc dddd. e";
        let parts = split_text(text, 12);
        check_cover(text, &parts);
        assert_eq!(pieces(text, &parts), ["aaaa bbbb ", "cccc dddd. e"]);
        let text = "ééééééé xy";
        let parts = split_text(text, 3);
        check_cover(text, &parts);
        assert_eq!(pieces(text, &parts), ["ééé", "ééé", "é ", "xy"]);
        for p in &parts {
            assert!(text[p.start..p.end].chars().count() <= 3);
        }
    }

    #[test]
    fn abbreviations_and_decimals_inside_words_are_not_boundaries() {
        let text = "It costs 3.5 dollars at example.com today. Yes";
        let parts = split_text(text, 30);
        check_cover(text, &parts);
        assert_eq!(
            pieces(text, &parts),
            ["It costs 3.5 dollars at ", "example.com today. Yes"]
        );
    }

    #[test]
    fn cost_function_counts_escapes() {
        let text = "a&b c&d e";
        let cost = |c: char| if c == '&' { 5 } else { 1 };
        let parts = split_by_cost(text, 8, cost);
        check_cover(text, &parts);
        assert_eq!(pieces(text, &parts), ["a&b ", "c&d ", "e"]);
    }

    #[test]
    fn every_part_is_within_the_limit_and_deterministic() {
        let sentence = "The quick brown fox, “naïve” and 🙂, jumps over 1,250 lazy dogs. ";
        let text = sentence.repeat(200);
        let parts = split_text(&text, 3000);
        check_cover(&text, &parts);
        assert!(parts.len() > 1);
        for p in &parts {
            let piece = &text[p.start..p.end];
            assert!(piece.chars().count() <= 3000);
            assert!(piece.ends_with(". "), "{:?}", &piece[piece.len() - 10..]);
        }
        assert_eq!(parts, split_text(&text, 3000));
    }
}
