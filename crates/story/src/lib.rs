//! Stories for storyreel: clean a given text for narration, or write one from a prompt with
//! any OpenAI-compatible chat-completions server.
//!
//! - [`clean_story`] turns a given text into a [`Story`] (title split, Markdown and HTML
//!   removed, quotes straightened, length checked against a [`LengthTarget`]). Pure.
//! - [`StoryWriter`] writes a story from a [`StoryRequest`] with `async-openai`: streamed
//!   structured output with a plain-text fallback, refusal detection, length control,
//!   no repeated titles, and bounded retries of transient server errors.
//! - [`Story::to_file_text`] / [`parse_story_file`] read and write the story file format:
//!   title line, blank line, body.
//!
//! Every error is a [`StoryError`] with a [`kind`](StoryError::kind) and a stable
//! [`error_name`](StoryError::error_name) for the state machine.

mod clean;
mod error;
mod json_stream;
pub mod length;
mod prompt;
pub mod title;
mod transport;
mod writer;

pub use clean::{MAX_TITLE_CHARS, MAX_TITLE_WORDS, Story, clean_story, parse_story_file};
pub use error::{BoxError, ErrorKind, StoryError};
pub use length::{LengthTarget, WordBudget, count_words};
pub use prompt::StoryStyle;
pub use transport::HttpFailure;
pub use writer::{
    DEFAULT_BASE_URL, DEFAULT_MODEL, LlmConfig, MAX_PROMPT_CHARS, MAX_RECENT_TITLES, StoryRequest,
    StoryWriter,
};
