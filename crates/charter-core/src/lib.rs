//! Charter's domain: what a partner, an API, a grant and a principal are, which states they
//! move through and which rules a request must satisfy.
//!
//! Architecture invariant: this crate is pure. It knows nothing of HTTP, SQL, tokio or the
//! wall clock; every function that depends on time takes `now` as a parameter, and every
//! identifier is built from randomness the caller supplies.

pub mod clock;
pub mod credential;
pub mod decision;
pub mod error;
pub mod grant;
pub mod ids;
pub mod model;
pub mod offboarding;
pub mod review;
pub mod values;

pub use clock::Clock;
pub use credential::{Credential, CredentialId, CredentialKind, CredentialStatus};
pub use error::DomainError;
pub use ids::{ApiId, GrantId, IdError, OffboardingId, PartnerId, PrincipalId, ReviewId};
pub use model::{
    Api, Approval, ApprovalDecision, Emergency, Grant, GrantStatus, Operation, Partner,
    PartnerKind, PartnerStatus, Principal,
};
pub use values::{
    ApiName, Audience, DataClass, Environment, Method, Name, PathTemplate, Region, Role, Scope,
    TimeWindow, UpstreamUrl, Weekday,
};
