//! Errors of the domain rules. The HTTP edge maps them to statuses: `Invalid` → 422,
//! `Conflict` → 409, `Forbidden` → 403.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Well-formed input that breaks a rule (unknown scope, ceiling or region violation, …).
    #[error("{0}")]
    Invalid(String),
    /// The object is not in a state that allows the change (illegal transition, duplicate).
    #[error("{0}")]
    Conflict(String),
    /// The actor may not make this change (separation of duties, ownership).
    #[error("{0}")]
    Forbidden(String),
}

impl DomainError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden(msg.into())
    }
}
