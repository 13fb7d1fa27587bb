//! Turning a given text into a narratable [`Story`], and the story file format.
//!
//! Pure and total: any `&str` gives a `Story` or a [`StoryError`], never a panic, and the
//! output is never more than about twice the input.
//!
//! # Title
//! The title is split from the body when the first non-blank line
//! 1. is a `Title:` line (any case, optionally bold or a heading): the rest of it is the title;
//! 2. or is a Markdown heading (`# …`) followed by more text;
//! 3. or is followed by a blank line and looks like a title: one sentence of at most
//!    [`MAX_TITLE_WORDS`] words and [`MAX_TITLE_CHARS`] characters, not a list item or quote;
//! 4. or is as short, ends without punctuation, and the next line starts a new sentence (a
//!    title line written directly above the body).
//!
//! Otherwise there is no title and the whole text is the body. A leading `Body:` or
//! `Story:` label on the body is dropped.
//!
//! # Cleaning, for a text-to-speech voice and word-synced captions
//! - Markdown: heading marks, emphasis (`*`, `_` at word edges, `~~`), inline code, code
//!   fences (the content is kept), links (`[text](url)` → text), images (dropped), reference
//!   definitions, horizontal rules, block quotes, list markers (each item becomes a sentence),
//!   table pipes; backslash escapes give the literal character.
//! - HTML: known tags removed (`<br>` and block tags break lines), comments removed,
//!   common entities decoded.
//! - Characters: curly quotes become straight quotes (`'` and `"`) and `…` becomes `...`,
//!   because voices read both the same and straight quotes keep caption matching and SSML
//!   escaping simple; dashes and emoji are kept. Control and invisible format characters
//!   (zero-width space, BOM, bidi controls, soft hyphen) are removed; every other kind of
//!   space becomes a plain space.
//! - Whitespace: lines inside a paragraph are joined with one space; paragraphs are separated
//!   by exactly one blank line; no leading or trailing whitespace.

use serde::{Deserialize, Serialize};

use crate::StoryError;
use crate::length::{LengthTarget, count_words};

/// Most words a first line may have to be taken as a title (rule 3).
pub const MAX_TITLE_WORDS: usize = 25;
/// Most characters a title may have.
pub const MAX_TITLE_CHARS: usize = 200;

/// Inputs larger than this are not cleaned: they are reported as too long from a raw word
/// count, so a hostile upload costs one linear scan.
const MAX_INPUT_BYTES: usize = 1 << 20;

/// A narratable story: an optional title and a plain-text body.
///
/// The body is plain text with paragraphs separated by one blank line, no Markdown, no
/// control characters and straight quotes; the title is a single line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Story {
    /// The title, if any: one line, not repeated in the body.
    pub title: Option<String>,
    /// The text to narrate.
    pub body: String,
}

impl Story {
    /// Words in the body, as counted for the length budget.
    pub fn word_count(&self) -> usize {
        count_words(&self.body)
    }

    /// The story file text: title line, blank line, body, final newline.
    ///
    /// Without a title the first line is empty (`"\n\nbody\n"`), so that
    /// [`parse_story_file`] never mistakes the body's first line for a title.
    pub fn to_file_text(&self) -> String {
        let title = self
            .title
            .as_deref()
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        format!("{title}\n\n{}\n", self.body.trim())
    }
}

/// Reads the story file format written by [`Story::to_file_text`]: the first line is the
/// title when a blank line follows it (an empty first line means no title); a file whose
/// second line is not blank has no title and is all body. Line endings and spaces are
/// normalised, and paragraphs re-joined, but the text is otherwise taken as written (use
/// [`clean_story`] for text that may hold Markdown).
///
/// Fails with [`StoryError::Empty`] when there is no body.
pub fn parse_story_file(text: &str) -> Result<Story, StoryError> {
    let text = normalise_chars(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let second_blank = lines.get(1).is_some_and(|l| l.trim().is_empty());
    let (title, body_lines) = match lines.first() {
        Some(first) if first.trim().is_empty() => (None, &lines[1..]),
        Some(first) if second_blank => (Some(collapse_spaces(first)), &lines[1..]),
        _ => (None, &lines[..]),
    };
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for line in body_lines {
        let line = collapse_spaces(line);
        if line.is_empty() {
            flush(&mut paragraphs, &mut current);
        } else {
            push_words(&mut current, &line);
        }
    }
    flush(&mut paragraphs, &mut current);
    let body = paragraphs.join("\n\n");
    if count_words(&body) == 0 {
        return Err(StoryError::Empty);
    }
    Ok(Story {
        title: title.filter(|t| !t.is_empty()),
        body,
    })
}

/// Cleans a given text for narration (see the module docs for the rules) and checks it
/// against the length target.
///
/// Errors: [`StoryError::Empty`] when no words are left, [`StoryError::TooLong`] when the
/// body has more words than the budget's maximum (target + 20%), and
/// [`StoryError::InvalidTarget`] for an out-of-range target. A short text is accepted.
pub fn clean_story(raw: &str, opts: &LengthTarget) -> Result<Story, StoryError> {
    let budget = opts.budget()?;
    let too_long = |words| StoryError::TooLong {
        words,
        max_words: budget.max,
        seconds: opts.seconds,
        words_per_minute: opts.words_per_minute,
    };
    if raw.len() > MAX_INPUT_BYTES {
        return Err(too_long(count_words(raw)));
    }
    let story = clean_unchecked(raw);
    let words = story.word_count();
    if words == 0 {
        return Err(StoryError::Empty);
    }
    if words > budget.max {
        return Err(too_long(words));
    }
    Ok(story)
}

/// Splits and cleans without any length check; the body may be empty.
pub(crate) fn clean_unchecked(raw: &str) -> Story {
    let text = normalise_chars(&strip_html(raw));
    let lines: Vec<&str> = text.split('\n').collect();
    let (title, rest) = split_title(&lines);
    let mut rest = rest.to_vec();
    strip_body_label(&mut rest);
    Story {
        title,
        body: clean_body(&rest),
    }
}

/// Drops a `Body:` or `Story:` label (possibly bold) from the first non-blank line.
fn strip_body_label(lines: &mut [&str]) {
    let Some(line) = lines.iter_mut().find(|l| !l.trim().is_empty()) else {
        return;
    };
    let unmarked = line.trim_start().trim_start_matches(['*', '_']);
    for label in ["body:", "story:"] {
        if unmarked
            .get(..label.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(label))
        {
            *line = unmarked[label.len()..].trim_start_matches(['*', '_']);
            return;
        }
    }
}

/// Cleans a text known to be only a body (no title split), e.g. the `body` of a JSON answer.
pub(crate) fn clean_body_only(raw: &str) -> String {
    let text = normalise_chars(&strip_html(raw));
    let mut lines: Vec<&str> = text.split('\n').collect();
    strip_body_label(&mut lines);
    clean_body(&lines)
}

/// Cleans a text known to be a title: first non-blank line, inline Markdown removed.
pub(crate) fn clean_title_only(raw: &str) -> String {
    let text = normalise_chars(&strip_html(raw));
    let first = text
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let title = clean_title(first);
    let unlabelled = title
        .get(..6)
        .filter(|h| h.eq_ignore_ascii_case("title:"))
        .map(|_| title[6..].trim().to_string());
    unlabelled
        .unwrap_or(title)
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Characters

/// Line endings to `\n`, quotes straightened, invisible and control characters dropped,
/// exotic spaces to a plain space.
fn normalise_chars(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{0B}' | '\u{0C}' => out.push('\n'),
            '‘' | '’' | '‚' | '‛' | '′' => out.push('\''),
            '“' | '”' | '„' | '‟' | '″' | '«' | '»' => out.push('"'),
            '…' => out.push_str("..."),
            // Invisible format characters and the replacement character: nothing to say.
            '\u{AD}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFFD}' => {}
            c if c.is_control() => {
                if c == '\t' {
                    out.push(' ');
                }
            }
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------
// HTML

/// Elements whose tags are removed; block elements also break the line.
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "big", "cite", "code", "del", "em", "font", "i", "img", "ins", "kbd", "mark",
    "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "tt", "u", "var",
];
const BLOCK_TAGS: &[&str] = &[
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "center",
    "details",
    "div",
    "dd",
    "dl",
    "dt",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

fn strip_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Once a comment has no end, no later one has: stop looking (keeps this linear).
    let mut comments_closed = true;
    while let Some(pos) = rest.find(['<', '&']) {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if comments_closed && rest.starts_with("<!--") {
            if let Some(end) = rest.find("-->") {
                rest = &rest[end + 3..];
                continue;
            }
            comments_closed = false;
        }
        if rest.starts_with('<') {
            if let Some((len, block)) = html_tag(rest) {
                if block {
                    out.push('\n');
                }
                rest = &rest[len..];
            } else {
                out.push('<');
                rest = &rest[1..];
            }
            continue;
        }
        // '&'
        if let Some((len, decoded)) = html_entity(rest) {
            out.push_str(&decoded);
            rest = &rest[len..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A known tag at the start of `s` (which starts with `<`): its byte length and whether it
/// is a block element. The tag must close on the same line within 500 bytes.
fn html_tag(s: &str) -> Option<(usize, bool)> {
    let inner = s.get(1..)?;
    let inner = inner.strip_prefix('/').unwrap_or(inner);
    let name_len = inner
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(inner.len());
    let name = inner[..name_len].to_ascii_lowercase();
    let after = inner[name_len..].chars().next()?;
    if !(after == '>' || after == '/' || after == ' ') {
        return None;
    }
    let block = BLOCK_TAGS.contains(&name.as_str());
    if !block && !INLINE_TAGS.contains(&name.as_str()) {
        return None;
    }
    let window = prefix(s, 500);
    let end = window.find(['>', '\n'])?;
    if window.as_bytes().get(end) != Some(&b'>') {
        return None;
    }
    Some((end + 1, block))
}

/// An entity at the start of `s` (which starts with `&`): its byte length and text.
fn html_entity(s: &str) -> Option<(usize, String)> {
    let end = prefix(s, 12).find(';')?;
    let name = &s[1..end];
    let text = match name {
        "amp" => "&".to_string(),
        "lt" => "<".to_string(),
        "gt" => ">".to_string(),
        "quot" | "ldquo" | "rdquo" => "\"".to_string(),
        "apos" | "lsquo" | "rsquo" => "'".to_string(),
        "nbsp" => " ".to_string(),
        "mdash" => "—".to_string(),
        "ndash" => "–".to_string(),
        "hellip" => "...".to_string(),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?.to_string()
        }
    };
    Some((end + 1, text))
}

// ---------------------------------------------------------------------------------------
// Title

fn split_title<'a, 'b>(lines: &'b [&'a str]) -> (Option<String>, &'b [&'a str]) {
    let Some(first_idx) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return (None, lines);
    };
    let first = lines[first_idx].trim();
    let rest = &lines[first_idx + 1..];
    let rest_has_words = rest.iter().any(|l| count_words(l) > 0);

    // 1. "Title: …", possibly as a heading or in bold.
    let unmarked = first.trim_start_matches('#').trim_start();
    let unmarked = unmarked.trim_start_matches(['*', '_']);
    if unmarked
        .get(..6)
        .is_some_and(|h| h.eq_ignore_ascii_case("title:"))
    {
        let title = clean_title(&unmarked[6..]);
        if !title.is_empty() && title.chars().count() <= MAX_TITLE_CHARS && rest_has_words {
            return (Some(title), rest);
        }
        if title.is_empty() {
            return (None, rest);
        }
    }
    if !rest_has_words {
        return (None, &lines[first_idx..]);
    }
    // 2. A Markdown heading.
    if heading_text(first).is_some() {
        let title = clean_title(first);
        if count_words(&title) > 0 && title.chars().count() <= MAX_TITLE_CHARS {
            return (Some(title), rest);
        }
    }
    // 3. A short single-sentence line followed by a blank line.
    let blank_follows = rest.first().is_some_and(|l| l.trim().is_empty());
    if blank_follows && block_kind(first).1 == Block::Text && !is_fence(first) {
        let title = clean_title(first);
        let words = count_words(&title);
        if (1..=MAX_TITLE_WORDS).contains(&words)
            && title.chars().count() <= MAX_TITLE_CHARS
            && !has_inner_sentence_break(&title)
        {
            return (Some(title), rest);
        }
    }
    // 4. A title line directly above the body: short, no closing punctuation, and the next
    //    line starts a new sentence (a wrapped paragraph continues in lower case).
    let next_starts_sentence = rest.first().is_some_and(|l| {
        l.trim_start()
            .chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit() || "\"'“‘".contains(c))
    });
    let open_ended = !first.ends_with(['.', ',', ';', ':', '!', '?', '…', '-', '—']);
    if next_starts_sentence && open_ended && block_kind(first).1 == Block::Text && !is_fence(first)
    {
        let title = clean_title(first);
        let words = count_words(&title);
        if (1..=MAX_TITLE_WORDS).contains(&words) && title.chars().count() <= MAX_TITLE_CHARS {
            return (Some(title), rest);
        }
    }
    (None, &lines[first_idx..])
}

fn clean_title(line: &str) -> String {
    let line = line.trim();
    let line = heading_text(line).unwrap_or(line);
    let t = collapse_spaces(&clean_inline(line));
    let t = t.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    t.trim_end_matches(':').trim().to_string()
}

/// Whether a sentence ends inside the line (`. ` followed by more text).
fn has_inner_sentence_break(s: &str) -> bool {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            // Skip "Mr. X"-style abbreviations? A title rarely has them; treat as a break.
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// Body (block level)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Heading,
    ListItem,
    TableRow,
}

fn clean_body(lines: &[&str]) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut fence: Option<(char, usize)> = None;
    for raw in lines {
        let line = raw.trim();
        if let Some((ch, n)) = fence {
            if fence_marker(line).is_some_and(|(c, m)| c == ch && m >= n)
                && line.trim_start_matches(ch).trim().is_empty()
            {
                fence = None;
            } else {
                push_words(&mut current, &collapse_spaces(line));
            }
            continue;
        }
        if let Some(marker) = fence_marker(line) {
            fence = Some(marker);
            continue;
        }
        if line.is_empty() || is_rule(line) {
            flush(&mut paragraphs, &mut current);
            continue;
        }
        if is_setext_underline(line) {
            // The line before was a heading: make it a sentence of its own.
            if !current.is_empty() {
                end_sentence(&mut current);
            }
            flush(&mut paragraphs, &mut current);
            continue;
        }
        if is_reference_definition(line) {
            continue;
        }
        let (content, kind) = block_kind(line);
        match kind {
            Block::Heading => {
                flush(&mut paragraphs, &mut current);
                let mut text = collapse_spaces(&clean_inline(content));
                if count_words(&text) > 0 {
                    end_sentence(&mut text);
                    paragraphs.push(text);
                }
            }
            Block::ListItem => {
                let mut text = collapse_spaces(&clean_inline(content));
                if count_words(&text) > 0 {
                    end_sentence(&mut text);
                    push_words(&mut current, &text);
                }
            }
            Block::TableRow => {
                let cells: Vec<String> = content
                    .split('|')
                    .map(|c| collapse_spaces(&clean_inline(c)))
                    .filter(|c| !c.is_empty())
                    .collect();
                let separator = content.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '));
                if !separator && !cells.is_empty() {
                    let mut text = cells.join(", ");
                    end_sentence(&mut text);
                    push_words(&mut current, &text);
                }
            }
            Block::Text => {
                let text = collapse_spaces(&clean_inline(content));
                push_words(&mut current, &text);
            }
        }
    }
    flush(&mut paragraphs, &mut current);
    paragraphs.join("\n\n")
}

fn push_words(current: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !current.is_empty() {
        current.push(' ');
    }
    current.push_str(text);
}

fn flush(paragraphs: &mut Vec<String>, current: &mut String) {
    let p = std::mem::take(current);
    if count_words(&p) > 0 {
        paragraphs.push(p);
    }
}

/// Adds a full stop unless the text already ends a sentence or clause.
fn end_sentence(text: &mut String) {
    let trimmed = text.trim_end_matches(['"', '\'', ')', ']']);
    if !trimmed.ends_with(['.', '!', '?', ':', ';', ',']) {
        text.push('.');
    }
}

/// Strips block-level prefixes (quote marks, heading marks, list markers) and says what the
/// line is.
fn block_kind(line: &str) -> (&str, Block) {
    let mut s = line.trim();
    // Block quotes, possibly nested; ">!" is a Reddit spoiler, not a quote.
    while s.starts_with('>') && !s.starts_with(">!") {
        s = s[1..].trim_start();
    }
    if let Some(text) = heading_text(s) {
        return (text, Block::Heading);
    }
    if let Some(rest) = list_item(s) {
        return (rest, Block::ListItem);
    }
    if s.len() > 1 && s.starts_with('|') && s.ends_with('|') {
        return (&s[1..s.len() - 1], Block::TableRow);
    }
    (s, Block::Text)
}

/// The text of an ATX heading (`## Text ##`), or `None`.
fn heading_text(line: &str) -> Option<&str> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim_end())
}

/// The text after a list marker (`-`, `*`, `+`, `•`, `1.`, `1)`), or `None`.
fn list_item(line: &str) -> Option<&str> {
    for marker in ['-', '*', '+', '•'] {
        if let Some(rest) = line.strip_prefix(marker).filter(|r| r.starts_with(' ')) {
            return Some(rest.trim_start());
        }
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if (1..=3).contains(&digits) {
        let rest = &line[digits..];
        if let Some(after) = rest.strip_prefix(['.', ')']).filter(|a| a.starts_with(' ')) {
            return Some(after.trim_start());
        }
    }
    None
}

/// A code fence opener/closer: its character and length (at least three).
fn fence_marker(line: &str) -> Option<(char, usize)> {
    let ch = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = line.len() - line.trim_start_matches(ch).len();
    (n >= 3).then_some((ch, n))
}

fn is_fence(line: &str) -> bool {
    fence_marker(line.trim()).is_some()
}

/// `---`, `***`, `___` (spaces allowed): a horizontal rule.
fn is_rule(line: &str) -> bool {
    let mut kind = None;
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => {}
            '-' | '*' | '_' if kind.is_none() || kind == Some(c) => {
                kind = Some(c);
                n += 1;
            }
            _ => return false,
        }
    }
    n >= 3
}

/// `===` or `---` under a line: a Setext heading underline.
fn is_setext_underline(line: &str) -> bool {
    line.len() >= 2 && (line.chars().all(|c| c == '=') || line.chars().all(|c| c == '-'))
}

/// `[label]: http://…`, a Markdown reference definition.
fn is_reference_definition(line: &str) -> bool {
    line.starts_with('[')
        && line
            .find("]:")
            .is_some_and(|i| !line[1..i].contains(']') && line.len() > i + 2)
}

// ---------------------------------------------------------------------------------------
// Inline

/// Longest Markdown link (`[text](url)`) recognised, in bytes.
const MAX_LINK_BYTES: usize = 2048;

/// At most the first `max` bytes of `s`, cut at a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Removes inline Markdown from one line.
fn clean_inline(s: &str) -> String {
    clean_inline_depth(s, 0)
}

fn clean_inline_depth(s: &str, depth: u8) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut prev: Option<char> = None;
    while let Some(c) = s[i..].chars().next() {
        let len = c.len_utf8();
        let rest = &s[i..];
        let next = s[i + len..].chars().next();
        match c {
            '\\' if next.is_some_and(|n| n.is_ascii_punctuation()) => {
                if let Some(n) = next {
                    out.push(n);
                    prev = Some(n);
                    i += len + n.len_utf8();
                    continue;
                }
            }
            '!' if next == Some('[') => {
                if let Some((total, _)) = link_at(&rest[1..]) {
                    i += 1 + total;
                    continue;
                }
                out.push('!');
            }
            '!' if next == Some('<') => {
                // End of a Reddit spoiler ">!…!<".
                i += 2;
                continue;
            }
            '>' if next == Some('!') => {
                i += 2;
                continue;
            }
            '[' => {
                if let Some((total, text)) = link_at(rest) {
                    if depth < 2 {
                        out.push_str(&clean_inline_depth(text, depth + 1));
                    } else {
                        out.push_str(text);
                    }
                    i += total;
                    continue;
                }
                out.push('[');
            }
            '*' | '`' => {}
            '~' if next == Some('~') => {
                i += 2;
                continue;
            }
            '_' => {
                let inside_word = prev.is_some_and(char::is_alphanumeric)
                    && next.is_some_and(char::is_alphanumeric);
                if inside_word {
                    out.push('_');
                }
            }
            c => out.push(c),
        }
        prev = Some(c);
        i += len;
    }
    out
}

/// A link or image body at the start of `s` (which starts with `[`): `[text](url)` or
/// `[text][ref]`. Returns the total byte length and the text.
fn link_at(s: &str) -> Option<(usize, &str)> {
    // Bounded look-ahead, so a line of ten thousand `[` stays linear.
    let s = prefix(s, MAX_LINK_BYTES);
    let close = s.find(']')?;
    let text = &s[1..close];
    if text.contains('[') {
        return None;
    }
    let after = &s[close + 1..];
    let closer = if after.starts_with('(') {
        ')'
    } else if after.starts_with('[') {
        ']'
    } else {
        return None;
    };
    let end = after.find(closer)?;
    Some((close + 1 + end + 1, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markdown() {
        assert_eq!(
            clean_inline("**Bold** and *it* and _em_ and snake_case and `code` ~~no~~"),
            "Bold and it and em and snake_case and code no"
        );
        assert_eq!(
            clean_inline("see [the post](http://x.y/z) and ![img](a.png) and [ref][1]"),
            "see the post and  and ref"
        );
        assert_eq!(clean_inline(r"a \*literal\* star"), "a *literal* star");
        assert_eq!(clean_inline(">!spoiler!< here"), "spoiler here");
        assert_eq!(clean_inline("[deleted] user"), "[deleted] user");
    }

    #[test]
    fn html_is_stripped() {
        assert_eq!(
            strip_html("a<br>b <b>c</b> &amp; d &lt;3 <3 a < b &#39;x&#x27; <!-- hidden -->"),
            "a\nb c & d <3 <3 a < b 'x' "
        );
        assert_eq!(strip_html("<notatag> <b"), "<notatag> <b");
    }

    #[test]
    fn characters_are_normalised() {
        assert_eq!(
            normalise_chars("“Hi”\r\n‘there’…\u{200B}\u{7}\u{A0}x\ty"),
            "\"Hi\"\n'there'... x y"
        );
    }

    #[test]
    fn title_rules() {
        let s = clean_unchecked("Title: The Door\nI opened it.");
        assert_eq!(s.title.as_deref(), Some("The Door"));
        assert_eq!(s.body, "I opened it.");
        let s = clean_unchecked("# My *Big* Day\n\nIt was big.");
        assert_eq!(s.title.as_deref(), Some("My Big Day"));
        let s = clean_unchecked("The lost key\n\nI lost it. Then I found it.");
        assert_eq!(s.title.as_deref(), Some("The lost key"));
        // A first paragraph of two sentences is body, not a title.
        let s = clean_unchecked("I lost it. Then I found it.\n\nThe end came.");
        assert_eq!(s.title, None);
        assert_eq!(s.body, "I lost it. Then I found it.\n\nThe end came.");
        // A title line directly above the body (no blank line between).
        let s = clean_unchecked("I Found a Note\nLast Tuesday I found a note. It was odd.");
        assert_eq!(s.title.as_deref(), Some("I Found a Note"));
        assert_eq!(s.body, "Last Tuesday I found a note. It was odd.");
        // A wrapped first sentence is not a title.
        let s = clean_unchecked("Last Tuesday I found\na note under my door.");
        assert_eq!(s.title, None);
        // A single line is all body.
        let s = clean_unchecked("Just one line");
        assert_eq!(s.title, None);
        assert_eq!(s.body, "Just one line");
        let s = clean_unchecked("**Title:** \"Quoted\"\n\nBody: Text here.");
        assert_eq!(s.title.as_deref(), Some("Quoted"));
        assert_eq!(s.body, "Text here.");
    }

    #[test]
    fn lists_headings_quotes_fences() {
        let s = clean_unchecked(
            "Intro line\nwraps here.\n\n## Update\n- eggs\n- milk!\n1. one\n> quoted *text*\n```text\ncode stays\n```\n---\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        assert_eq!(s.title, None);
        assert_eq!(
            s.body,
            "Intro line wraps here.\n\nUpdate.\n\neggs. milk! one. quoted text code stays\n\na, b. 1, 2."
        );
    }

    #[test]
    fn file_round_trip() {
        for story in [
            Story {
                title: Some("A title".into()),
                body: "One.\n\nTwo.".into(),
            },
            Story {
                title: None,
                body: "Short first line\n\nThen more.".into(),
            },
        ] {
            assert_eq!(parse_story_file(&story.to_file_text()).unwrap(), story);
        }
        let s = parse_story_file("no title here\nstill body").unwrap();
        assert_eq!(s.title, None);
        assert_eq!(s.body, "no title here still body");
        assert!(matches!(
            parse_story_file("Title\n\n  \n"),
            Err(StoryError::Empty)
        ));
    }
}
