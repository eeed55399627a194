//! Charter's domain: what a partner, an API, a grant and a principal are, which states they
//! move through and which rules a request must satisfy.
//!
//! Architecture invariant: this crate is pure. It knows nothing of HTTP, SQL, tokio or the
//! wall clock; every function that depends on time takes `now` as a parameter, and every
//! identifier is built from randomness the caller supplies.

/// Wire names for a closed enum whose serde form is its `snake_case` name: `ALL` (every
/// value, in declaration order), `as_str`, `parse` (exact match, `None` otherwise), `Display`
/// and `FromStr` (a [`DomainError::invalid`] naming `$what`). Callers at the edge — the CLI's
/// argument parser, query strings — take these instead of keeping their own copies.
macro_rules! wire_names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: [$ty; <[&str]>::len(&[$(stringify!($variant)),+])] =
                [$($ty::$variant),+];

            /// The value as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// A value exactly as written on the wire; anything else is `None`.
            pub fn parse(s: &str) -> Option<$ty> {
                $ty::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s).ok_or_else(|| {
                    $crate::DomainError::invalid(format!(
                        concat!("unknown ", $what, " {:?}"),
                        $crate::values::truncate(s)
                    ))
                })
            }
        }
    };
}

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
    Api, Approval, ApprovalDecision, Emergency, Grant, GrantStatus, Operation, OwnersChange,
    Partner, PartnerKind, PartnerStatus, Principal,
};
pub use values::{
    ApiName, Audience, DataClass, Environment, Method, Name, PathTemplate, Region, Role, Scope,
    TimeWindow, UpstreamUrl, Weekday,
};
