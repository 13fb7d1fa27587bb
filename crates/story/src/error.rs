//! The one error type of this crate, its kind and the stable names the state machine matches.

use std::time::Duration;

/// A boxed cause kept behind [`StoryError`] variants that wrap an SDK or HTTP failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How the caller should react to a [`StoryError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Transient: the same call may succeed later (rate limits, server errors, network).
    Retryable,
    /// The input (text, prompt, length target) cannot make a story; retrying will not help.
    InvalidInput,
    /// Configuration or server behaviour that needs a person; retrying will not help.
    Fatal,
}

/// Everything that can go wrong while cleaning or writing a story.
///
/// Messages are lowercase, give the value and what was allowed; causes are kept as
/// [`std::error::Error::source`], so print the chain (`{:#}` with anyhow).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoryError {
    /// Nothing narratable is left after cleaning (or the story file has no body).
    #[error("story is empty (no words left after cleaning)")]
    Empty,

    /// A given text is longer than the target duration allows (+20%).
    #[error(
        "story too long for {seconds} s: {words} words (at most {max_words} at {words_per_minute} words per minute)"
    )]
    TooLong {
        /// Words in the cleaned story.
        words: usize,
        /// The most words the target allows.
        max_words: usize,
        /// Target duration in seconds.
        seconds: u32,
        /// Speaking rate used for the budget.
        words_per_minute: u32,
    },

    /// The length target itself is out of range.
    #[error("invalid {what} {value} (expected {expected})")]
    InvalidTarget {
        /// Which parameter: "target duration (s)" or "words per minute".
        what: &'static str,
        /// The value given.
        value: u32,
        /// The allowed range.
        expected: &'static str,
    },

    /// The prompt is empty or too long.
    #[error("invalid prompt: {reason}")]
    InvalidPrompt {
        /// What is wrong with it.
        reason: String,
    },

    /// The model refused or answered off-task; never retried, never narrated.
    #[error("the model refused to write the story: {model_words:?}")]
    Refused {
        /// What the model said (truncated), to record on the job.
        model_words: String,
    },

    /// The model kept missing the word budget although told its word count.
    #[error(
        "the model wrote {words} words in the last of {attempts} attempts (expected {min}..={max})"
    )]
    LengthUnmet {
        /// Words in the last attempt.
        words: usize,
        /// Lower bound of the budget.
        min: usize,
        /// Upper bound of the budget.
        max: usize,
        /// Attempts made.
        attempts: u32,
    },

    /// The model kept choosing a title too close to a recent one.
    #[error(
        "the model repeated a recent title in {attempts} attempts: {title:?} is too close to {similar_to:?}"
    )]
    DuplicateTitle {
        /// The title of the last attempt.
        title: String,
        /// The recent title it resembles.
        similar_to: String,
        /// Attempts made.
        attempts: u32,
    },

    /// Rate limited, server error or network failure, still failing after our retries.
    #[error("llm server at {url} unavailable after {attempts} attempt(s): {reason}")]
    Unavailable {
        /// Base URL of the server.
        url: String,
        /// HTTP attempts made.
        attempts: u32,
        /// Short summary; details are in the source.
        reason: String,
        /// What the server asked for with `Retry-After`, if anything.
        retry_after: Option<Duration>,
        /// The last HTTP or transport failure.
        #[source]
        source: Option<BoxError>,
    },

    /// Wrong or missing key, base URL or model (401, 403, 404, no quota, bad URL).
    #[error("llm configuration error: {message}")]
    Config {
        /// What to fix, naming the environment variables.
        message: String,
        /// The HTTP or SDK failure behind it.
        #[source]
        source: Option<BoxError>,
    },

    /// The server rejected the request for another reason (4xx).
    #[error("llm server at {url} rejected the request: {message}")]
    Rejected {
        /// Base URL of the server.
        url: String,
        /// Summary of the rejection.
        message: String,
        /// The HTTP failure.
        #[source]
        source: Option<BoxError>,
    },

    /// The server answered with something that is not a chat completion.
    #[error("llm server at {url} sent an unusable response: {message}")]
    BadResponse {
        /// Base URL of the server.
        url: String,
        /// What was wrong.
        message: String,
        /// The parse or SDK failure.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoryError {
    /// Whether to retry, give up on the input, or call a person.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoryError::Empty
            | StoryError::TooLong { .. }
            | StoryError::InvalidTarget { .. }
            | StoryError::InvalidPrompt { .. }
            | StoryError::Refused { .. } => ErrorKind::InvalidInput,
            StoryError::Unavailable { .. } => ErrorKind::Retryable,
            StoryError::LengthUnmet { .. }
            | StoryError::DuplicateTitle { .. }
            | StoryError::Config { .. }
            | StoryError::Rejected { .. }
            | StoryError::BadResponse { .. } => ErrorKind::Fatal,
        }
    }

    /// Stable error name for the Lambda response, matched by the state machine's
    /// `Retry`/`Catch`; never changes once published.
    pub fn error_name(&self) -> &'static str {
        match self {
            StoryError::Empty => "StoryEmpty",
            StoryError::TooLong { .. } => "StoryTooLong",
            StoryError::InvalidTarget { .. } | StoryError::InvalidPrompt { .. } => {
                "StoryInvalidInput"
            }
            StoryError::Refused { .. } => "StoryRefused",
            StoryError::LengthUnmet { .. } => "StoryLengthUnmet",
            StoryError::DuplicateTitle { .. } => "StoryDuplicateTitle",
            StoryError::Unavailable { .. } => "LlmUnavailable",
            StoryError::Config { .. } => "LlmConfig",
            StoryError::Rejected { .. } => "LlmRejected",
            StoryError::BadResponse { .. } => "LlmBadResponse",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_are_stable() {
        let e = StoryError::TooLong {
            words: 400,
            max_words: 192,
            seconds: 60,
            words_per_minute: 160,
        };
        assert_eq!(e.error_name(), "StoryTooLong");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "story too long for 60 s: 400 words (at most 192 at 160 words per minute)"
        );
        let e = StoryError::Unavailable {
            url: "http://x".into(),
            attempts: 4,
            reason: "status 500".into(),
            retry_after: None,
            source: None,
        };
        assert_eq!(e.error_name(), "LlmUnavailable");
        assert_eq!(e.kind(), ErrorKind::Retryable);
        let e = StoryError::Refused {
            model_words: "no".into(),
        };
        assert_eq!(e.error_name(), "StoryRefused");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
