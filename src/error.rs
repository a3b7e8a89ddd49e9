//! Errors that carry an exit code, and the mapping from any error to one.
//!
//! Exit codes: 0 success, 1 a task or check failed, 2 usage or bad input, 130 interrupted.

use std::fmt;

/// What kind of failure an error is, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A task, merge or verify command failed (exit 1).
    Failed,
    /// Bad input or usage: the user can fix the command line or the files (exit 2).
    Usage,
    /// The user interrupted us (exit 130).
    Interrupted,
}

/// An error with a known kind; anything else is treated as a failure.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error { kind: Kind::Usage, message: message.into(), hint: None }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Error { kind: Kind::Failed, message: message.into(), hint: None }
    }
    pub fn interrupted(message: impl Into<String>) -> Self {
        Error { kind: Kind::Interrupted, message: message.into(), hint: None }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for a usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Error::usage(message).into()
}

/// Shorthand for a failure as an `anyhow::Error`.
pub fn failed(message: impl Into<String>) -> anyhow::Error {
    Error::failed(message).into()
}

/// True when the error is, somewhere in its chain, a closed pipe on our output.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The process exit code for an error.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if is_broken_pipe(err) {
        return 0;
    }
    match err.chain().find_map(|c| c.downcast_ref::<Error>()).map(|e| e.kind) {
        Some(Kind::Usage) => 2,
        Some(Kind::Interrupted) => 130,
        Some(Kind::Failed) | None => 1,
    }
}

/// The hint attached to an error, if any.
pub fn hint(err: &anyhow::Error) -> Option<&str> {
    err.chain().find_map(|c| c.downcast_ref::<Error>()).and_then(|e| e.hint.as_deref())
}
