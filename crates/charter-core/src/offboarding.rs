//! Offboarding: a partner leaves, every grant and credential is revoked, and then removal is
//! *verified* — not assumed. The record keeps every check with its result and time; it is
//! `completed` only if every check passed.
//!
//! Serde here is the stored document format (and audit `after`), not the API; the API's types
//! are in charter-server's `wire` module.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{DomainError, Name, OffboardingId, Partner, PartnerId, PartnerStatus, PrincipalId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardingStatus {
    Completed,
    Failed,
}

/// One verification: what was checked, against what, and whether removal held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `token_endpoint_refuses`, `introspection_inactive` or `gateway_denies`.
    pub name: String,
    /// The client id, canary or gateway checked.
    pub target: String,
    pub passed: bool,
    pub at: Timestamp,
    pub detail: String,
}

/// A token minted at a grant's last epoch before revocation, never handed out, used only to
/// prove that every enforcement point refuses what the grant could do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub grant: String,
    pub jti: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offboarding {
    pub id: OffboardingId,
    pub partner: PartnerId,
    pub status: OffboardingStatus,
    pub requested_by: PrincipalId,
    pub reason: Name,
    /// Grants and credentials revoked by this offboarding.
    pub revoked_grants: Vec<String>,
    pub revoked_credentials: Vec<String>,
    pub canaries: Vec<Canary>,
    pub checks: Vec<Check>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

impl Offboarding {
    /// `completed` only if every check passed (a partner that held nothing has nothing to
    /// verify).
    pub fn verdict(checks: &[Check]) -> OffboardingStatus {
        if checks.iter().all(|c| c.passed) {
            OffboardingStatus::Completed
        } else {
            OffboardingStatus::Failed
        }
    }
}

impl Partner {
    /// `active | suspended | offboarding → offboarding` (a failed offboarding may be run
    /// again); an offboarded partner stays gone.
    pub fn start_offboarding(&mut self) -> Result<(), DomainError> {
        if self.status == PartnerStatus::Offboarded {
            return Err(DomainError::conflict("the partner is already offboarded"));
        }
        self.status = PartnerStatus::Offboarding;
        Ok(())
    }

    /// `offboarding → offboarded`, once every check passed.
    pub fn finish_offboarding(&mut self) -> Result<(), DomainError> {
        if self.status != PartnerStatus::Offboarding {
            return Err(DomainError::conflict("the partner is not being offboarded"));
        }
        self.status = PartnerStatus::Offboarded;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(passed: bool) -> Check {
        Check {
            name: "x".into(),
            target: "t".into(),
            passed,
            at: Timestamp::UNIX_EPOCH,
            detail: String::new(),
        }
    }

    #[test]
    fn one_failed_check_fails_the_offboarding() {
        assert_eq!(
            Offboarding::verdict(&[check(true), check(true)]),
            OffboardingStatus::Completed
        );
        assert_eq!(
            Offboarding::verdict(&[check(true), check(false)]),
            OffboardingStatus::Failed
        );
    }
}
