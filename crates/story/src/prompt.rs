//! storyreel's own prompts: what a good narrated short story is, and how to answer.

use serde::{Deserialize, Serialize};

use crate::length::WordBudget;

/// The shape of a generated story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoryStyle {
    /// A first-person Reddit-style post.
    #[default]
    Post,
    /// A post followed by a few replies and, when it fits, an update from the poster.
    Replies,
}

impl std::str::FromStr for StoryStyle {
    type Err = String;

    /// Parses `post` or `replies` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "post" => Ok(StoryStyle::Post),
            "replies" => Ok(StoryStyle::Replies),
            other => Err(format!(
                "invalid style {other:?} (expected post or replies)"
            )),
        }
    }
}

impl std::fmt::Display for StoryStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoryStyle::Post => "post",
            StoryStyle::Replies => "replies",
        })
    }
}

const CORE: &str = "\
You write stories for short vertical videos: a text-to-speech voice reads the story over \
gameplay footage while the words appear as captions. The stories read like posts on Reddit \
(r/AmItheAsshole, r/tifu, r/pettyrevenge, r/relationship_advice, r/nosleep).

How to write:
- First person, as the person posting, in a natural, conversational voice: specific details, \
real-sounding people, a little messy, like someone typing on their phone.
- The first sentence is a hook that makes a viewer keep watching. No preamble, no greeting, \
no \"So, this happened\" filler.
- One story with a clear situation, rising tension and a payoff or twist at the end.
- Write for the ear: short and medium sentences, everyday words. Spell out symbols and \
abbreviations a voice would stumble on (write \"am I the jerk\", not \"AITA\"; \"twenty \
dollars\", not \"$20\").
- Plain text only: no Markdown, no headings, no bullet points, no emoji, no hashtags, no \
sound effects or stage directions, no labels such as \"Title:\" or \"Body:\" inside the body. \
Separate paragraphs with one blank line.
- Keep it suitable for YouTube Shorts and TikTok: no graphic violence or sex, no slurs, no \
real people's names, nothing that identifies a real person.
- The title is a short Reddit-style post title of at most fifteen words. It is given \
separately and not repeated at the start of the body.";

const POST: &str = "\
Format of the story: a single post, the poster telling what happened.";

const REPLIES: &str = "\
Format of the story: the post, then two to four replies from other users, then, if it fits, \
a short update from the poster. Introduce each reply so a listener can follow it without \
seeing the screen, for example \"The top comment said:\" or \"Another person replied:\". \
Do not read out usernames.";

const ANSWER_JSON: &str = "\
Answer with a JSON object with two fields: \"title\" (the title) and \"body\" (the story).";

const ANSWER_TEXT: &str = "\
Answer with the title on the first line, then one blank line, then the body. Nothing else: \
no labels, no quotes around the title, no comments before or after the story.";

/// The system prompt for a style and answer format.
pub(crate) fn system_prompt(style: StoryStyle, structured: bool) -> String {
    let style_text = match style {
        StoryStyle::Post => POST,
        StoryStyle::Replies => REPLIES,
    };
    let answer = if structured { ANSWER_JSON } else { ANSWER_TEXT };
    format!("{CORE}\n\n{style_text}\n\n{answer}")
}

/// The user message: the prompt, the word budget and the titles not to repeat.
pub(crate) fn user_prompt(
    prompt: &str,
    budget: &WordBudget,
    seconds: u32,
    recent_titles: &[String],
) -> String {
    let mut text = format!(
        "Write a story about: {prompt}\n\nLength: about {} words (between {} and {} words), \
         which is about {seconds} seconds of narration.",
        budget.target, budget.min, budget.max
    );
    if !recent_titles.is_empty() {
        text.push_str(
            "\n\nThese stories were told recently. Do not repeat them or reuse or closely \
             imitate their titles:",
        );
        for t in recent_titles {
            text.push_str("\n- ");
            text.push_str(t);
        }
    }
    text
}

/// The JSON schema for structured output (strict: both fields required, nothing else).
pub(crate) fn story_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "title": {
                "type": "string",
                "description": "Short Reddit-style post title, at most fifteen words"
            },
            "body": {
                "type": "string",
                "description": "The story as plain text, paragraphs separated by a blank line"
            }
        },
        "required": ["title", "body"],
        "additionalProperties": false
    })
}

/// Why an answer is asked for again, phrased for the model.
pub(crate) fn feedback_too_short(words: usize, budget: &WordBudget) -> String {
    format!(
        "That story has {words} words, but it must have between {} and {} words (about {}). \
         Write it again, longer, keeping the same idea and title; count the words carefully.",
        budget.min, budget.max, budget.target
    )
}

pub(crate) fn feedback_too_long(words: usize, budget: &WordBudget) -> String {
    format!(
        "That story has {words} words, but it must have between {} and {} words (about {}). \
         Write it again, shorter, keeping the same idea and title; count the words carefully.",
        budget.min, budget.max, budget.target
    )
}

pub(crate) fn feedback_duplicate(title: &str, similar_to: &str) -> String {
    format!(
        "The title \"{title}\" is too close to a recent story, \"{similar_to}\". Write a \
         different story with a clearly different premise and title."
    )
}

pub(crate) fn feedback_no_title() -> String {
    "That answer has no title. Answer again with a title and the story, in the format asked."
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_parse() {
        assert_eq!("Replies".parse::<StoryStyle>(), Ok(StoryStyle::Replies));
        assert!("poem".parse::<StoryStyle>().is_err());
        assert_eq!(StoryStyle::Post.to_string(), "post");
    }

    #[test]
    fn prompts_mention_budget_and_titles() {
        let b = WordBudget {
            target: 160,
            min: 128,
            max: 192,
        };
        let u = user_prompt("a lost cat", &b, 60, &["Old title".into()]);
        assert!(u.contains("a lost cat") && u.contains("between 128 and 192"));
        assert!(u.contains("- Old title"));
        assert!(system_prompt(StoryStyle::Replies, false).contains("first line"));
        assert!(system_prompt(StoryStyle::Post, true).contains("JSON"));
    }
}
