//! Near-duplicate titles, so a channel does not tell the same story twice.
//!
//! Rule: lowercase both titles, drop apostrophes (`sister's` → `sisters`), split on anything
//! that is not a letter or digit, and compare the two token *sets* with the Jaccard index
//! (shared tokens / all tokens). An index of at least [`DUPLICATE_THRESHOLD`] (0.6) is a
//! duplicate: "My roommate stole my lunch" vs "My roommate ate my lunch" share 3 of 5 tokens
//! (0.6, duplicate), while two "AITA for refusing to …" titles about different things share
//! the frame but stay well below it. Word order and repetition are ignored on purpose.

use std::collections::BTreeSet;

/// Jaccard index at or above which two titles count as the same story.
pub const DUPLICATE_THRESHOLD: f64 = 0.6;

/// Titles are compared on at most this many characters, so a hostile title costs little.
const MAX_TITLE_CHARS: usize = 300;

/// The normalised token set of a title.
pub fn title_tokens(title: &str) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    let mut current = String::new();
    for c in title.chars().take(MAX_TITLE_CHARS) {
        if matches!(c, '\'' | '’' | '‘') {
            continue;
        }
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            tokens.insert(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.insert(current);
    }
    tokens
}

/// Jaccard index of the two titles' token sets, in `0.0..=1.0`. Two titles without any
/// letters or digits are identical (1.0) only if their trimmed text is equal.
pub fn title_similarity(a: &str, b: &str) -> f64 {
    let (ta, tb) = (title_tokens(a), title_tokens(b));
    if ta.is_empty() && tb.is_empty() {
        return if a.trim() == b.trim() { 1.0 } else { 0.0 };
    }
    let shared = ta.intersection(&tb).count();
    let all = ta.union(&tb).count();
    shared as f64 / all as f64
}

/// The first recent title that `title` duplicates (similarity ≥ [`DUPLICATE_THRESHOLD`]).
pub fn find_duplicate<'a>(title: &str, recent: &'a [String]) -> Option<&'a str> {
    recent
        .iter()
        .find(|r| title_similarity(title, r) >= DUPLICATE_THRESHOLD)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates() {
        assert!(title_similarity("My roommate stole my lunch", "my roommate ATE my lunch!") >= 0.6);
        assert_eq!(title_similarity("The Lost Key", "the lost key."), 1.0);
        assert!(
            title_similarity(
                "AITA for refusing to pay for my sister's wedding?",
                "AITA for refusing to go to my brother's party?"
            ) < 0.6
        );
        assert!(title_similarity("", "") == 1.0);
        assert!(title_similarity("!!!", "???") == 0.0);
        assert!(title_similarity("Sister’s dress", "sisters dress") == 1.0);
    }

    #[test]
    fn finds_the_recent_duplicate() {
        let recent = vec![
            "The night shift".to_string(),
            "My neighbour's cat".to_string(),
        ];
        assert_eq!(
            find_duplicate("my neighbours cat", &recent),
            Some("My neighbour's cat")
        );
        assert_eq!(find_duplicate("A wedding gone wrong", &recent), None);
    }
}
