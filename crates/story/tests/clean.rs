//! `clean_story` and the story file format on Markdown, odd Unicode, empty and huge input.

use storyreel_story::{LengthTarget, Story, StoryError, clean_story, parse_story_file};

fn clean(raw: &str) -> Result<Story, StoryError> {
    clean_story(raw, &LengthTarget::default())
}

/// Invariants every cleaned story keeps.
fn check(story: &Story, input: &str) {
    let ctx = format!("input {input:?} gave {story:?}");
    assert!(!story.body.is_empty(), "{ctx}");
    assert_eq!(story.body, story.body.trim(), "{ctx}");
    assert!(
        story.body.chars().all(|c| c == '\n' || !c.is_control()),
        "{ctx}"
    );
    assert!(!story.body.contains("\n\n\n"), "{ctx}");
    assert!(
        !story
            .body
            .contains(['“', '”', '‘', '’', '\u{200B}', '\u{FEFF}']),
        "{ctx}"
    );
    if let Some(t) = &story.title {
        assert!(!t.is_empty() && !t.contains('\n'), "{ctx}");
    }
    let again = parse_story_file(&story.to_file_text()).expect("file text parses");
    assert_eq!(&again, story, "{ctx}");
}

#[test]
fn markdown_is_removed() {
    let raw = "\
# AITA for *refusing* to share my **lottery** winnings?

So I (**28F**) won some money.   My brother [Jake](https://example.com/u/jake) found out.
He said:

> You *owe* me.

Things he asked for:
- a car
- rent for a year!
1. his debts

```
code is kept as words
```

<p>I said <b>no</b> &amp; left.</p><br>
---
EDIT: thanks ~~all~~ everyone ![img](x.png)
";
    let story = clean(raw).unwrap();
    assert_eq!(
        story.title.as_deref(),
        Some("AITA for refusing to share my lottery winnings?")
    );
    assert_eq!(
        story.body,
        "So I (28F) won some money. My brother Jake found out. He said:\n\n\
         You owe me.\n\n\
         Things he asked for: a car. rent for a year! his debts.\n\n\
         code is kept as words\n\n\
         I said no & left.\n\n\
         EDIT: thanks all everyone"
    );
    check(&story, raw);
}

#[test]
fn title_line_and_first_line_titles() {
    let s = clean("Title: The Door\n\nI opened the door.").unwrap();
    assert_eq!(s.title.as_deref(), Some("The Door"));
    assert_eq!(s.body, "I opened the door.");

    let s = clean("The Door\n\nI opened the door.\nThen I closed it.").unwrap();
    assert_eq!(s.title.as_deref(), Some("The Door"));
    assert_eq!(s.body, "I opened the door. Then I closed it.");

    // A title line directly above the body, as story files often start.
    let s = clean("The Door\nI opened the door.").unwrap();
    assert_eq!(s.title.as_deref(), Some("The Door"));
    assert_eq!(s.body, "I opened the door.");

    // A first line that ends in punctuation, or runs on in lower case, is body.
    let s = clean("I opened the door.\nThen I closed it.").unwrap();
    assert_eq!(s.title, None);
    let s = clean("The door I opened\nwas red.").unwrap();
    assert_eq!(s.title, None);
    assert_eq!(s.body, "The door I opened was red.");
}

#[test]
fn quotes_and_spaces_are_normalised_for_the_voice() {
    let s = clean("“Don’t,” she said…\u{A0}\u{2003}and left\u{200B}.\r\n\r\nThe end.").unwrap();
    assert_eq!(s.title, None);
    assert_eq!(s.body, "\"Don't,\" she said... and left.\n\nThe end.");
}

#[test]
fn empty_after_cleaning_is_an_error() {
    for raw in [
        "",
        "   \n\n\t",
        "**",
        "<br><br>",
        "```\n```",
        "---\n***",
        "\u{FEFF}\u{200B}",
        "🙂 🙂",
    ] {
        let e = clean(raw).unwrap_err();
        assert!(matches!(e, StoryError::Empty), "{raw:?}: {e:?}");
        assert_eq!(e.error_name(), "StoryEmpty");
    }
}

#[test]
fn far_too_long_is_an_error_with_the_numbers() {
    let raw = "word ".repeat(1000);
    let e = clean(&raw).unwrap_err();
    assert!(matches!(
        e,
        StoryError::TooLong {
            words: 1000,
            max_words: 192,
            seconds: 60,
            words_per_minute: 160
        }
    ));
    assert_eq!(
        e.to_string(),
        "story too long for 60 s: 1000 words (at most 192 at 160 words per minute)"
    );
    assert_eq!(e.error_name(), "StoryTooLong");
    // Within +20% is fine; a longer target allows more.
    assert!(clean(&"word ".repeat(192)).is_ok());
    assert!(clean_story(&raw, &LengthTarget::new(180)).is_err());
    assert!(clean_story(&"word ".repeat(570), &LengthTarget::new(180)).is_ok());
}

#[test]
fn huge_input_is_rejected_quickly() {
    let raw = "a ".repeat(3 << 20);
    let start = std::time::Instant::now();
    let e = clean(&raw).unwrap_err();
    assert!(matches!(e, StoryError::TooLong { words, .. } if words == 3 << 20));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // Pathological Markdown just under the cap is still linear.
    let raw = "[".repeat(500_000) + &"*_`~".repeat(100_000);
    let _ = clean(&raw);
}

#[test]
fn odd_unicode_never_panics() {
    let cases = [
        "\0\u{1}\u{7f}\u{9f}",
        "مرحبا بالعالم\n\nهذه قصة قصيرة.",
        "\u{202E}reversed\u{202C} text",
        "e\u{301}\u{302}\u{303} combining marks",
        "👩‍👩‍👧‍👦 family 🏳️‍🌈 flag",
        "ไม่มีช่องว่างระหว่างคำ",
        "日本語の文章です。\n\n次の段落。",
        "&#xD800; &#99999999; &#0; &#x110000; &amp",
        "<b",
        "[",
        "](",
        "![",
        "[a](",
        "[a][",
        "\\",
        "_",
        "#",
        "####### seven",
        "Title:",
        "Title:\n\nbody words here",
        "\r\r\r\u{2028}\u{2029}\u{85}x",
        "```\nunclosed fence with words",
        "> > > nested quote",
        ">! spoiler !<",
        "| a | b |\n|---|---|",
        "1) first\n2) second",
        "\u{FFFD}\u{FFFE}\u{FFFF}\u{10FFFF}",
        "\u{E000} private use",
        "a\u{AD}b soft hyphen",
        "ǅ ǈ ß ŉ İ case oddities",
    ];
    for raw in cases {
        if let Ok(story) = clean(raw) {
            check(&story, raw);
        }
        let _ = parse_story_file(raw);
    }
}

/// Deterministic pseudo-random inputs built from fragments that stress the cleaner.
#[test]
fn fuzz_fragments_never_panic() {
    const FRAGMENTS: &[&str] = &[
        "word",
        "Title:",
        "# ",
        "## ",
        "**",
        "*",
        "_",
        "__",
        "~~",
        "`",
        "```",
        "~~~",
        "[",
        "]",
        "(",
        ")",
        "![",
        "](",
        "<",
        ">",
        "</",
        "<br>",
        "<b>",
        "</p>",
        "&",
        "&amp;",
        "&#",
        ";",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        " ",
        "\t",
        "-",
        "- ",
        "1. ",
        "> ",
        ">!",
        "!<",
        "|",
        "---",
        "===",
        "\\",
        "\"",
        "“",
        "’",
        "…",
        "\u{200B}",
        "\u{FEFF}",
        "\u{0}",
        "\u{1F600}",
        "é",
        "\u{301}",
        "\u{202E}",
        "\u{2028}",
        "ß",
        "日本",
        ".",
        "!",
        "?",
        "Body:",
        "http://x.y",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5000 {
        let len = (next() % 40) as usize;
        let raw: String = (0..len)
            .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
            .collect();
        match clean(&raw) {
            Ok(story) => check(&story, &raw),
            Err(StoryError::Empty) | Err(StoryError::TooLong { .. }) => {}
            Err(other) => panic!("{raw:?}: unexpected {other:?}"),
        }
        if let Ok(story) = parse_story_file(&raw) {
            assert!(!story.body.is_empty());
        }
    }
}

#[test]
fn story_file_format() {
    let story = Story {
        title: Some("The title".into()),
        body: "First paragraph.\n\nSecond one.".into(),
    };
    assert_eq!(
        story.to_file_text(),
        "The title\n\nFirst paragraph.\n\nSecond one.\n"
    );
    assert_eq!(parse_story_file(&story.to_file_text()).unwrap(), story);
    let untitled = Story {
        title: None,
        body: "Short line\n\nMore.".into(),
    };
    assert_eq!(untitled.to_file_text(), "\n\nShort line\n\nMore.\n");
    assert_eq!(
        parse_story_file(&untitled.to_file_text()).unwrap(),
        untitled
    );
    // Windows line endings and stray spaces.
    let s = parse_story_file("Title \r\n\r\n line one\r\nline two \r\n").unwrap();
    assert_eq!(s.title.as_deref(), Some("Title"));
    assert_eq!(s.body, "line one line two");
    assert!(matches!(
        parse_story_file("Only a title\n\n"),
        Err(StoryError::Empty)
    ));
}
