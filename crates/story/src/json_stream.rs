//! Reading `{"title": "…", "body": "…"}` as it streams in, to show the story text (not
//! JSON) while it is generated, and to recover a title and body from JSON cut short.
//!
//! A small state machine over the top-level object: it decodes the string values of the
//! `title` and `body` keys (escapes included, `\u` surrogate pairs joined) and ignores
//! everything else. If the answer does not start with `{` (after an optional Markdown code
//! fence) it is not JSON, and the text is passed through as it is.

/// Which part of the story a piece of decoded text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Title,
    Body,
}

/// What [`JsonStoryStream::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Decoded text of a field.
    Text(Field, &'a str),
    /// The field's string value closed.
    End(Field),
    /// The answer is not JSON: raw text to show as is.
    Raw(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing but whitespace yet.
    Start,
    /// Inside a leading Markdown code fence, before `{`.
    Fence,
    Json,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// `\u` with `n` hex digits read so far into `acc`.
    Unicode {
        n: u8,
        acc: u32,
    },
}

/// Incremental decoder of a streamed story JSON object.
#[derive(Debug)]
pub(crate) struct JsonStoryStream {
    mode: Mode,
    fence_chars: usize,
    depth: u32,
    in_string: bool,
    escape: Escape,
    /// High surrogate waiting for its pair.
    high_surrogate: Option<u32>,
    /// At depth 1: the next string is a key.
    expect_key: bool,
    key: String,
    key_overflow: bool,
    /// The string being read is a key at depth 1.
    reading_key: bool,
    /// The field whose value is being read, if any.
    capturing: Option<Field>,
    /// Last complete key at depth 1.
    last_key: Option<Field>,
    title: String,
    body: String,
    saw_body: bool,
    complete: bool,
}

const MAX_KEY_CHARS: usize = 32;
const MAX_FENCE_CHARS: usize = 16;

impl JsonStoryStream {
    pub(crate) fn new() -> Self {
        JsonStoryStream {
            mode: Mode::Start,
            fence_chars: 0,
            depth: 0,
            in_string: false,
            escape: Escape::None,
            high_surrogate: None,
            expect_key: false,
            key: String::new(),
            key_overflow: false,
            reading_key: false,
            capturing: None,
            last_key: None,
            title: String::new(),
            body: String::new(),
            saw_body: false,
            complete: false,
        }
    }

    /// Whether the answer turned out not to be JSON.
    pub(crate) fn is_raw(&self) -> bool {
        self.mode == Mode::Raw
    }

    /// The decoded title and body so far, if a `body` key was seen.
    pub(crate) fn parts(&self) -> Option<(&str, &str)> {
        self.saw_body
            .then_some((self.title.as_str(), self.body.as_str()))
    }

    /// Feeds the next piece of the answer; `emit` receives what it decodes.
    pub(crate) fn feed(&mut self, chunk: &str, emit: &mut dyn FnMut(Piece<'_>)) {
        let mut pending = String::new();
        let mut pending_field: Option<Field> = None;
        let mut rest = chunk;
        while let Some(c) = rest.chars().next() {
            match self.mode {
                Mode::Raw => {
                    emit(Piece::Raw(rest));
                    return;
                }
                Mode::Start if c.is_whitespace() => {}
                Mode::Start | Mode::Fence if c == '{' => {
                    self.mode = Mode::Json;
                    self.depth = 1;
                    self.expect_key = true;
                }
                Mode::Start if c == '`' => {
                    self.mode = Mode::Fence;
                    self.fence_chars = 1;
                }
                Mode::Fence if self.fence_chars < MAX_FENCE_CHARS => self.fence_chars += 1,
                Mode::Start | Mode::Fence => {
                    self.mode = Mode::Raw;
                    continue;
                }
                Mode::Json => {
                    let decoded = self.json_char(c, emit, &mut pending, &mut pending_field);
                    if let Some((field, text)) = decoded {
                        if pending_field != Some(field) {
                            if let Some(f) = pending_field {
                                emit(Piece::Text(f, &pending));
                            }
                            pending.clear();
                            pending_field = Some(field);
                        }
                        pending.push(text);
                    }
                }
            }
            rest = &rest[c.len_utf8()..];
        }
        if let Some(f) = pending_field.filter(|_| !pending.is_empty()) {
            emit(Piece::Text(f, &pending));
        }
    }

    /// Handles one character in JSON mode; returns a decoded character of a captured field.
    fn json_char(
        &mut self,
        c: char,
        emit: &mut dyn FnMut(Piece<'_>),
        pending: &mut String,
        pending_field: &mut Option<Field>,
    ) -> Option<(Field, char)> {
        if self.complete {
            return None;
        }
        if self.in_string {
            let decoded = match self.escape {
                Escape::Backslash => {
                    self.escape = Escape::None;
                    match c {
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        'b' | 'f' => None,
                        'u' => {
                            self.escape = Escape::Unicode { n: 0, acc: 0 };
                            None
                        }
                        other => Some(other),
                    }
                }
                Escape::Unicode { n, acc } => {
                    let digit = c.to_digit(16);
                    match digit {
                        Some(d) if n < 3 => {
                            self.escape = Escape::Unicode {
                                n: n + 1,
                                acc: acc * 16 + d,
                            };
                            None
                        }
                        Some(d) => {
                            self.escape = Escape::None;
                            self.code_unit(acc * 16 + d)
                        }
                        None => {
                            self.escape = Escape::None;
                            Some('\u{FFFD}')
                        }
                    }
                }
                Escape::None => match c {
                    '\\' => {
                        self.escape = Escape::Backslash;
                        None
                    }
                    '"' => {
                        self.close_string(emit, pending, pending_field);
                        return None;
                    }
                    other => Some(other),
                },
            };
            let decoded = decoded?;
            if self.reading_key {
                if self.key.len() < MAX_KEY_CHARS {
                    self.key.push(decoded);
                } else {
                    self.key_overflow = true;
                }
                return None;
            }
            let field = self.capturing?;
            match field {
                Field::Title => self.title.push(decoded),
                Field::Body => self.body.push(decoded),
            }
            return Some((field, decoded));
        }
        match c {
            '"' => {
                self.in_string = true;
                self.high_surrogate = None;
                if self.depth == 1 && self.expect_key {
                    self.reading_key = true;
                    self.key.clear();
                    self.key_overflow = false;
                } else if self.depth == 1 {
                    self.capturing = self.last_key;
                    if self.capturing == Some(Field::Body) {
                        self.saw_body = true;
                    }
                }
            }
            '{' | '[' => self.depth = self.depth.saturating_add(1),
            '}' | ']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.complete = true;
                }
            }
            ':' if self.depth == 1 => self.expect_key = false,
            ',' if self.depth == 1 => {
                self.expect_key = true;
                self.last_key = None;
            }
            _ => {}
        }
        None
    }

    fn close_string(
        &mut self,
        emit: &mut dyn FnMut(Piece<'_>),
        pending: &mut String,
        pending_field: &mut Option<Field>,
    ) {
        self.in_string = false;
        if self.reading_key {
            self.reading_key = false;
            self.last_key = match (self.key_overflow, self.key.as_str()) {
                (false, "title") => Some(Field::Title),
                (false, "body") => Some(Field::Body),
                _ => None,
            };
            return;
        }
        if let Some(field) = self.capturing.take() {
            if let Some(f) = pending_field.take().filter(|_| !pending.is_empty()) {
                emit(Piece::Text(f, pending));
            }
            pending.clear();
            emit(Piece::End(field));
        }
    }

    /// Joins UTF-16 surrogate pairs from `\u` escapes.
    fn code_unit(&mut self, unit: u32) -> Option<char> {
        match unit {
            0xD800..=0xDBFF => {
                self.high_surrogate = Some(unit);
                None
            }
            0xDC00..=0xDFFF => {
                let high = self.high_surrogate.take()?;
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))
            }
            _ => {
                self.high_surrogate = None;
                char::from_u32(unit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (Vec<String>, JsonStoryStream) {
        let mut s = JsonStoryStream::new();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |p| {
                out.push(match p {
                    Piece::Text(Field::Title, t) => format!("T:{t}"),
                    Piece::Text(Field::Body, t) => format!("B:{t}"),
                    Piece::End(f) => format!("End:{f:?}"),
                    Piece::Raw(t) => format!("R:{t}"),
                })
            });
        }
        (out, s)
    }

    #[test]
    fn decodes_split_json() {
        let json = r#"{"title": "A \"big\" day", "extra": {"body": "no"}, "body": "Line\none \u00e9\ud83d\ude00 end"}"#;
        // Feed one byte-ish piece at a time (on char boundaries).
        let pieces: Vec<String> = json.chars().map(String::from).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let (out, s) = run(&refs);
        assert_eq!(s.parts(), Some(("A \"big\" day", "Line\none é😀 end")));
        assert!(out.contains(&"End:Title".to_string()));
        assert!(out.contains(&"End:Body".to_string()));
        let body: String = out.iter().filter_map(|p| p.strip_prefix("B:")).collect();
        assert_eq!(body, "Line\none é😀 end");
    }

    #[test]
    fn truncated_json_still_gives_parts() {
        let (_, s) = run(&["{\"title\":\"T\",\"bo", "dy\":\"Once upon a ti"]);
        assert_eq!(s.parts(), Some(("T", "Once upon a ti")));
    }

    #[test]
    fn plain_text_passes_through() {
        let (out, s) = run(&["  The title\n", "\nBody text"]);
        assert!(s.is_raw());
        assert_eq!(out, vec!["R:The title\n", "R:\nBody text"]);
    }

    #[test]
    fn fenced_json() {
        let (_, s) = run(&["```json\n{\"title\":\"x\",\"body\":\"y\"}\n```"]);
        assert_eq!(s.parts(), Some(("x", "y")));
    }
}
