//! The one error type of the crate.

/// What can go wrong starting the simulator or reading its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener could not be bound or inspected.
    #[error("listener error: {0}")]
    Io(#[from] std::io::Error),
    /// A fault rule that does not follow the grammar of [`crate::FaultRule`].
    #[error("bad fault rule {rule:?}: {reason}")]
    FaultSyntax {
        /// The rule as given.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value that cannot work (zero workers, an unknown mode, ...).
    #[error("bad simulator config: {0}")]
    Config(String),
    /// An image could not be encoded.
    #[error("image encoding failed: {0}")]
    Image(String),
}
