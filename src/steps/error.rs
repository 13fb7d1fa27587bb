//! Step errors and their stable names: what a Lambda returns as `errorType`, and what the
//! state machine's Retry and Catch match.

use std::fmt;

/// The stable error names of storyreel's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorName {
    /// The input is wrong (a malformed event or story, an unknown voice, a corrupt video):
    /// retrying cannot help.
    InvalidInput,
    /// The model refused to write the story (not retried; its words are in the cause).
    StoryRefused,
    /// A dependency was throttled or briefly unavailable: the state machine retries.
    Retryable,
    /// Anything else (a bug, a full disk): not retried.
    Fatal,
}

impl ErrorName {
    /// The name as Step Functions sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::InvalidInput => "InvalidInput",
            ErrorName::StoryRefused => "StoryRefused",
            ErrorName::Retryable => "Retryable",
            ErrorName::Fatal => "Fatal",
        }
    }

    pub const ALL: [ErrorName; 4] = [
        ErrorName::InvalidInput,
        ErrorName::StoryRefused,
        ErrorName::Retryable,
        ErrorName::Fatal,
    ];
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed step: which step, the stable name, what happened, and the cause chain.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct StepError {
    pub step: &'static str,
    pub name: ErrorName,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StepError {
    pub fn new(
        step: &'static str,
        name: ErrorName,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StepError {
            step,
            name,
            message: message.into(),
            source,
        }
    }

    pub fn invalid(step: &'static str, message: impl Into<String>) -> Self {
        Self::new(step, ErrorName::InvalidInput, message, None)
    }

    /// Wraps a cause: the message says what the step was doing.
    pub fn wrap(
        step: &'static str,
        name: ErrorName,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::new(step, name, message, Some(Box::new(source)))
    }

    pub fn fatal(
        step: &'static str,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::wrap(step, ErrorName::Fatal, message, source)
    }

    /// The whole chain on one line: `step: message: cause: cause`.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|e| e as _);
        while let Some(e) = cur {
            let text = e.to_string();
            if !text.is_empty() && !s.ends_with(&text) {
                s.push_str(": ");
                s.push_str(&text);
            }
            cur = e.source();
        }
        s
    }
}

/// Store errors: a missing object is the input's fault, throttling is retryable.
pub(crate) fn store_err(step: &'static str, e: crate::store::StoreError) -> StepError {
    use crate::store::StoreError as S;
    let name = match &e {
        S::NotFound { .. } | S::InvalidKey { .. } | S::TooLarge { .. } => ErrorName::InvalidInput,
        S::Unavailable { .. } => ErrorName::Retryable,
        S::AccessDenied { .. } | S::Io { .. } => ErrorName::Fatal,
    };
    StepError::wrap(step, name, "storage", e)
}

pub(crate) fn job_err(step: &'static str, e: crate::jobs::JobError) -> StepError {
    let name = if e.is_retryable() {
        ErrorName::Retryable
    } else {
        ErrorName::Fatal
    };
    StepError::wrap(step, name, "job table", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_step_and_cause() {
        let io = std::io::Error::other("disk on fire");
        let e = StepError::fatal("merge", "cannot write video", io);
        assert_eq!(e.chain(), "merge: cannot write video: disk on fire");
        assert_eq!(e.name.as_str(), "Fatal");
    }
}
