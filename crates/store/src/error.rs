//! The store crate's error.

use sundial_common::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] sundial_engine::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A request no node can apply (a bad regex, a malformed message).
    #[error("{0}")]
    BadRequest(String),
    /// Not now (a delete that could not be applied yet): another owner, or later.
    #[error("{0}")]
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Engine(e) => e.class(),
            Error::Io(_) => ErrorClass::Internal,
            Error::BadRequest(_) => ErrorClass::BadRequest,
            Error::Unavailable(_) => ErrorClass::Unavailable,
        }
    }
}
