//! Offboarding: a partner leaves, every grant and credential is revoked, and then removal is
//! *verified* — not assumed. The record keeps every check with its result and time; it is
//! `completed` only if every check passed and every enforcement point was probed
//! ([`Offboarding::verdict`]), `incomplete` when something that must be probed was not.
//!
//! Serde here is the stored document format (and audit `after`), not the API; the API's types
//! are in charter-server's `wire` module.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{DomainError, Name, OffboardingId, Partner, PartnerId, PartnerStatus, PrincipalId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardingStatus {
    /// Every check passed and every enforcement point was probed.
    Completed,
    /// A check did not pass: access may remain.
    Failed,
    /// Every check that ran passed, but something that must be probed was not (no live
    /// gateway or control node, or fewer checks than an earlier attempt): removal is not
    /// proven.
    Incomplete,
}

/// Check names. Acceptance checks run before revocation, removal checks after.
pub mod check {
    /// Introspection at a control node answered `active: true` for a canary.
    pub const INTROSPECTION_ACCEPTS: &str = "introspection_accepts";
    /// A gateway's check endpoint accepted a canary's token (200, or a policy 403).
    pub const GATEWAY_ACCEPTS: &str = "gateway_accepts";
    /// A canary was never shown accepted before revocation: its refusal would prove nothing.
    pub const CANARY_ACCEPTED: &str = "canary_shown_accepted";
    /// A control node's token endpoint refused a client id as revoked.
    pub const TOKEN_ENDPOINT_REFUSES: &str = "token_endpoint_refuses";
    /// Introspection at a control node answered `active: false` for a canary.
    pub const INTROSPECTION_INACTIVE: &str = "introspection_inactive";
    /// A gateway refused a canary with 401 and a revocation reason.
    pub const GATEWAY_DENIES: &str = "gateway_denies";
    /// The checks that probe removal (made again by every attempt).
    pub const REMOVAL: [&str; 3] = [
        TOKEN_ENDPOINT_REFUSES,
        INTROSPECTION_INACTIVE,
        GATEWAY_DENIES,
    ];
}

/// One verification: what was checked, against what, and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// One of the names in [`check`].
    pub name: String,
    /// What was probed: `<node id> <endpoint URL> <client id or canary jti>`.
    pub target: String,
    pub passed: bool,
    pub at: Timestamp,
    pub detail: String,
}

impl Check {
    /// A check of removal (after revocation), as opposed to an acceptance check.
    pub fn is_removal(&self) -> bool {
        check::REMOVAL.contains(&self.name.as_str())
    }
}

/// A token minted at a grant's epoch before revocation, never handed out, used only to
/// prove that every enforcement point refuses what the grant could do. The record keeps its
/// claims (no signature): a retry mints the same claims again, so the canary stays
/// re-derivable until the offboarding completes, and no bearer token is ever stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub grant: String,
    pub jti: String,
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offboarding {
    pub id: OffboardingId,
    pub partner: PartnerId,
    pub status: OffboardingStatus,
    /// Why the offboarding is `incomplete`: what could not be probed.
    #[serde(default)]
    pub incomplete_reason: Option<String>,
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

/// What an attempt could reach, beside its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Live control nodes probed over HTTP.
    pub control_nodes: usize,
    /// Live gateways probed over HTTP.
    pub gateways: usize,
    /// The deployment has not declared that it runs no gateway.
    pub require_gateway: bool,
    /// The most removal checks an earlier attempt of this partner made.
    pub earlier_removal_checks: usize,
}

impl Offboarding {
    /// `failed` if any check failed; else `incomplete` (with why) if no control node or (where
    /// the deployment requires one) no gateway was probed, or if this attempt made fewer
    /// removal checks than an earlier one; else `completed`. A partner that held nothing
    /// has no canary and no client id, so it completes with the nodes alone.
    pub fn verdict(checks: &[Check], coverage: Coverage) -> (OffboardingStatus, Option<String>) {
        if checks.iter().any(|c| !c.passed) {
            return (OffboardingStatus::Failed, None);
        }
        let incomplete = |why: String| (OffboardingStatus::Incomplete, Some(why));
        if coverage.control_nodes == 0 {
            return incomplete(
                "no live control node is registered: no token endpoint or introspection was probed over HTTP".into(),
            );
        }
        if coverage.gateways == 0 && coverage.require_gateway {
            return incomplete(
                "no live gateway is registered: the enforcement layer was not probed (set offboarding.require_gateway = false only if this deployment runs no gateway)".into(),
            );
        }
        let removal = checks.iter().filter(|c| c.is_removal()).count();
        if removal < coverage.earlier_removal_checks {
            return incomplete(format!(
                "this attempt made {removal} removal checks, fewer than the {} of an earlier attempt",
                coverage.earlier_removal_checks
            ));
        }
        (OffboardingStatus::Completed, None)
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

    fn check(name: &str, passed: bool) -> Check {
        Check {
            name: name.into(),
            target: "t".into(),
            passed,
            at: Timestamp::UNIX_EPOCH,
            detail: String::new(),
        }
    }

    const FULL: Coverage = Coverage {
        control_nodes: 1,
        gateways: 1,
        require_gateway: true,
        earlier_removal_checks: 0,
    };

    #[test]
    fn one_failed_check_fails_the_offboarding() {
        let ok = [
            check(check::GATEWAY_DENIES, true),
            check(check::INTROSPECTION_INACTIVE, true),
        ];
        assert_eq!(
            Offboarding::verdict(&ok, FULL),
            (OffboardingStatus::Completed, None)
        );
        let bad = [
            check(check::GATEWAY_DENIES, true),
            check(check::GATEWAY_ACCEPTS, false),
        ];
        assert_eq!(
            Offboarding::verdict(&bad, FULL).0,
            OffboardingStatus::Failed
        );
        // A failure outranks missing coverage.
        let none = Coverage {
            gateways: 0,
            ..FULL
        };
        assert_eq!(
            Offboarding::verdict(&bad, none).0,
            OffboardingStatus::Failed
        );
    }

    #[test]
    fn nothing_to_probe_at_the_enforcement_layer_is_incomplete() {
        let ok = [check(check::INTROSPECTION_INACTIVE, true)];
        let no_gateway = Coverage {
            gateways: 0,
            ..FULL
        };
        let (status, why) = Offboarding::verdict(&ok, no_gateway);
        assert_eq!(status, OffboardingStatus::Incomplete);
        assert!(why.unwrap().contains("no live gateway"));
        let declared = Coverage {
            require_gateway: false,
            ..no_gateway
        };
        assert_eq!(
            Offboarding::verdict(&ok, declared).0,
            OffboardingStatus::Completed
        );
        // No control node is never excused.
        let no_control = Coverage {
            control_nodes: 0,
            ..declared
        };
        let (status, why) = Offboarding::verdict(&ok, no_control);
        assert_eq!(status, OffboardingStatus::Incomplete);
        assert!(why.unwrap().contains("control node"));
    }

    #[test]
    fn a_retry_never_completes_on_fewer_removal_checks() {
        let two = [
            check(check::GATEWAY_DENIES, true),
            check(check::TOKEN_ENDPOINT_REFUSES, true),
        ];
        // Acceptance checks carried from the first attempt do not count as removal checks.
        let padded = [
            check(check::GATEWAY_DENIES, true),
            check(check::GATEWAY_ACCEPTS, true),
        ];
        let after_three = Coverage {
            earlier_removal_checks: 3,
            ..FULL
        };
        assert_eq!(
            Offboarding::verdict(&two, after_three).0,
            OffboardingStatus::Incomplete
        );
        let after_two = Coverage {
            earlier_removal_checks: 2,
            ..FULL
        };
        assert_eq!(
            Offboarding::verdict(&two, after_two).0,
            OffboardingStatus::Completed
        );
        assert_eq!(
            Offboarding::verdict(&padded, after_two).0,
            OffboardingStatus::Incomplete
        );
    }
}
