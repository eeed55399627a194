//! The audit log's action names: one table, so that writers, rules, exports and evidence
//! assembly agree on the spelling. Each constant is the `action` field of a record; the
//! names are part of the audit format (`docs/audit-encoding.md`) and are never renamed.

macro_rules! actions {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        $($(#[$doc])* pub const $name: &str = $value;)*
        /// Every action name Charter writes.
        pub const ALL: &[&str] = &[$($value),*];
    };
}

actions! {
    /// A gateway decided a call (allow or deny) — durable before anything is forwarded.
    ACCESS_DECISION = "access.decision";
    /// What became of an allowed call (upstream status, latency).
    ACCESS_OUTCOME = "access.outcome";
    API_PUBLISH = "api.publish";
    API_REPUBLISH = "api.republish";
    /// A signed checkpoint of the chain head was written.
    AUDIT_CHECKPOINT = "audit.checkpoint";
    /// An admin-API bearer token was refused.
    AUTH_FAILED = "auth.failed";
    AUTH_RATE_LIMITED = "auth.rate_limited";
    /// A principal signed in to the console (its session began).
    CONSOLE_SIGN_IN = "console.sign_in";
    CONSOLE_SIGN_OUT = "console.sign_out";
    /// A control node registered itself (its advertised URL), so offboarding probes it.
    CONTROL_REGISTER = "control.register";
    CREDENTIAL_EXPIRE = "credential.expire";
    CREDENTIAL_ISSUE = "credential.issue";
    CREDENTIAL_REVOKE = "credential.revoke";
    CREDENTIAL_ROTATE = "credential.rotate";
    /// An evidence bundle was issued: the head of its subject's sub-chain, committing the
    /// heads of the other sub-chains it carries and its usage summaries.
    EVIDENCE_ISSUE = "evidence.issue";
    EVIDENCE_KEY_CREATE = "evidence_key.create";
    EVIDENCE_KEY_ROTATE = "evidence_key.rotate";
    GATEWAY_REGISTER = "gateway.register";
    GRANT_APPROVE = "grant.approve";
    GRANT_EMERGENCY_END = "grant.emergency_end";
    GRANT_EMERGENCY_OPEN = "grant.emergency_open";
    GRANT_EXPIRE = "grant.expire";
    GRANT_REJECT = "grant.reject";
    GRANT_REQUEST = "grant.request";
    GRANT_RESUME = "grant.resume";
    GRANT_REVOKE = "grant.revoke";
    GRANT_SUSPEND = "grant.suspend";
    /// The scheduler suspended a grant whose recertification is overdue.
    GRANT_SUSPEND_OVERDUE = "grant.suspend_overdue";
    /// A signing key was created or rotated.
    KEY_CREATE = "key.create";
    KEY_ROTATE = "key.rotate";
    PARTNER_CREATE = "partner.create";
    /// An offboarding finished (its record holds every check).
    PARTNER_OFFBOARD = "partner.offboard";
    PARTNER_OFFBOARD_START = "partner.offboard_start";
    PARTNER_UPDATE = "partner.update";
    PRINCIPAL_BOOTSTRAP = "principal.bootstrap";
    PRINCIPAL_CREATE = "principal.create";
    PRINCIPAL_DISABLE = "principal.disable";
    PRINCIPAL_ROTATE = "principal.rotate";
    REVIEW_ATTEST = "review.attest";
    /// A post-incident review was opened for a break-glass grant.
    REVIEW_OPEN = "review.open";
    REVIEW_START = "review.start";
    TOKEN_ISSUE = "token.issue";
    TOKEN_REFUSED = "token.refused";
    TOKEN_REVOKE = "token.revoke";
}

/// The kinds of object whose records form a per-subject sub-chain: each such record's
/// `details.subject_prev` is the hash of the previous record about the same `target` (`null`
/// for the first), set by the writer when it seals the record (`docs/evidence-bundle.md`).
const SUBJECT_KINDS: &[&str] = &["grant", "partner", "credential", "review", "evidence"];

/// Whether the writer links a record of this action and target into its subject's
/// sub-chain: lifecycle records of grants, partners and credentials, reviews (an attestation
/// is about its grant), and issued evidence.
/// Traffic (`access.*`, `token.*`, `auth.*`) and other objects are not linked; a grant's
/// usage is committed as a summary instead (`crate::usage`).
pub fn on_subject_chain(action: &str, target: &str) -> bool {
    !target.is_empty()
        && action
            .split_once('.')
            .is_some_and(|(kind, _)| SUBJECT_KINDS.contains(&kind))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_dotted() {
        let mut seen = std::collections::BTreeSet::new();
        for name in super::ALL {
            assert!(seen.insert(*name), "{name} twice");
            let (kind, verb) = name.split_once('.').unwrap_or_default();
            assert!(!kind.is_empty() && !verb.is_empty(), "{name}");
        }
    }
}
