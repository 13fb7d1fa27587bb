//! Word budgets from a target duration, word counting, and trimming at a sentence boundary.
//!
//! Pure: no I/O, and every function is total over any `&str`.

use serde::{Deserialize, Serialize};

use crate::StoryError;

/// Default target duration of a video, in seconds.
pub const DEFAULT_SECONDS: u32 = 60;
/// Longest target duration (YouTube Shorts allow up to three minutes).
pub const MAX_SECONDS: u32 = 180;
/// Default speaking rate: a typical neural TTS voice reads about 160 words a minute.
pub const DEFAULT_WORDS_PER_MINUTE: u32 = 160;
/// Allowed speaking rates.
pub const WORDS_PER_MINUTE_RANGE: std::ops::RangeInclusive<u32> = 60..=400;
/// Tolerance around the target word count, in percent either way.
pub const TOLERANCE_PERCENT: usize = 20;

/// How long the narration should be: a duration and the voice's speaking rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthTarget {
    /// Target duration in seconds, `1..=180`; default 60.
    pub seconds: u32,
    /// Speaking rate of the voice, `60..=400`; default 160.
    pub words_per_minute: u32,
}

impl Default for LengthTarget {
    fn default() -> Self {
        LengthTarget {
            seconds: DEFAULT_SECONDS,
            words_per_minute: DEFAULT_WORDS_PER_MINUTE,
        }
    }
}

impl LengthTarget {
    /// A target of `seconds` at the default speaking rate.
    pub fn new(seconds: u32) -> Self {
        LengthTarget {
            seconds,
            ..LengthTarget::default()
        }
    }

    /// The word budget: `seconds × words_per_minute / 60`, ±20%.
    ///
    /// Fails with [`StoryError::InvalidTarget`] when a field is out of range.
    pub fn budget(&self) -> Result<WordBudget, StoryError> {
        if !(1..=MAX_SECONDS).contains(&self.seconds) {
            return Err(StoryError::InvalidTarget {
                what: "target duration (s)",
                value: self.seconds,
                expected: "1..=180",
            });
        }
        if !WORDS_PER_MINUTE_RANGE.contains(&self.words_per_minute) {
            return Err(StoryError::InvalidTarget {
                what: "words per minute",
                value: self.words_per_minute,
                expected: "60..=400",
            });
        }
        // Both factors are small (≤ 180 × 400), so this cannot overflow.
        let target = ((self.seconds as usize * self.words_per_minute as usize) + 30) / 60;
        let target = target.max(1);
        let min = (target * (100 - TOLERANCE_PERCENT)).div_ceil(100);
        let max = target * (100 + TOLERANCE_PERCENT) / 100;
        Ok(WordBudget {
            target,
            min: min.max(1),
            max: max.max(target),
        })
    }
}

/// A word count to aim for and the accepted range around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordBudget {
    /// Words to aim for.
    pub target: usize,
    /// Fewest words accepted (target − 20%).
    pub min: usize,
    /// Most words accepted (target + 20%).
    pub max: usize,
}

impl WordBudget {
    /// Whether `words` is within `min..=max`.
    pub fn contains(&self, words: usize) -> bool {
        (self.min..=self.max).contains(&words)
    }
}

/// Counts narratable words: whitespace-separated tokens holding at least one letter or digit
/// (so a lone dash or an emoji is not a word).
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().filter(|w| is_word(w)).count()
}

fn is_word(token: &str) -> bool {
    token.chars().any(char::is_alphanumeric)
}

/// Cuts `text` after the last sentence that keeps it at or under `max_words`.
///
/// A sentence ends at `.`, `!`, `?` (optionally followed by closing quotes or brackets)
/// before whitespace, or at a paragraph break. Returns `None` when even the first sentence
/// is longer than `max_words`. Text already within the limit is returned unchanged.
pub fn trim_to_sentences(text: &str, max_words: usize) -> Option<&str> {
    if count_words(text) <= max_words {
        return Some(text);
    }
    let mut words = 0usize;
    let mut best: Option<usize> = None;
    let mut in_token = false;
    let mut token_has_alnum = false;
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c.is_whitespace() {
            if in_token {
                if token_has_alnum {
                    words += 1;
                }
                if words > max_words {
                    break;
                }
                // `prev` is the last char of the token that just ended.
                let ends_sentence = prev.is_some_and(|p| sentence_end_at(&text[..i], p));
                let paragraph_break = c == '\n' && iter.peek().is_some_and(|&(_, n)| n == '\n');
                if (ends_sentence || paragraph_break) && words > 0 {
                    best = Some(i);
                }
            }
            in_token = false;
            token_has_alnum = false;
        } else {
            in_token = true;
            token_has_alnum |= c.is_alphanumeric();
        }
        prev = Some(c);
    }
    best.map(|end| text[..end].trim_end())
}

/// Whether `before` (text up to a whitespace) ends a sentence; `last` is its last char.
fn sentence_end_at(before: &str, last: char) -> bool {
    if matches!(last, '.' | '!' | '?') {
        return true;
    }
    if matches!(last, '"' | '\'' | ')' | ']') {
        // `He said "stop."` — look through closing quotes and brackets.
        let trimmed = before.trim_end_matches(['"', '\'', ')', ']']);
        return trimmed.ends_with(['.', '!', '?']);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_for_sixty_seconds() {
        let b = LengthTarget::default().budget().unwrap();
        assert_eq!(
            b,
            WordBudget {
                target: 160,
                min: 128,
                max: 192
            }
        );
        assert!(b.contains(128) && b.contains(192) && !b.contains(193) && !b.contains(127));
    }

    #[test]
    fn budget_rejects_out_of_range() {
        assert!(LengthTarget::new(0).budget().is_err());
        assert!(LengthTarget::new(181).budget().is_err());
        assert!(LengthTarget::new(180).budget().is_ok());
        let e = LengthTarget {
            seconds: 60,
            words_per_minute: 10,
        }
        .budget()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid words per minute 10 (expected 60..=400)"
        );
    }

    #[test]
    fn tiny_budget_is_not_zero() {
        let b = LengthTarget {
            seconds: 1,
            words_per_minute: 60,
        }
        .budget()
        .unwrap();
        assert!(b.min >= 1 && b.max >= b.target && b.target >= 1);
    }

    #[test]
    fn counts_words_not_symbols() {
        assert_eq!(count_words("Hello — world 🙂 it's 5 o'clock."), 5);
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn trims_after_last_fitting_sentence() {
        let t = "One two three. Four five six! Seven eight \"nine.\" Ten eleven twelve.";
        assert_eq!(
            trim_to_sentences(t, 7),
            Some("One two three. Four five six!")
        );
        assert_eq!(
            trim_to_sentences(t, 9),
            Some("One two three. Four five six! Seven eight \"nine.\"")
        );
        assert_eq!(trim_to_sentences(t, 100), Some(t));
        assert_eq!(trim_to_sentences(t, 2), None);
    }

    #[test]
    fn paragraph_break_is_a_boundary() {
        let t = "a b c\n\nd e f g";
        assert_eq!(trim_to_sentences(t, 5), Some("a b c"));
    }
}
