//! Grant rules: what a request must satisfy, and the state machine
//! `pending → active → (suspended ↔ active) → revoked | expired`, `pending → rejected`.
//! Every transition is a method that either changes the grant or returns a typed error and
//! leaves it untouched.

use crate::model::{Approval, ApprovalDecision, Emergency, Grant, GrantStatus};
use crate::values::{DataClass, Environment, Name, Region, Scope, TimeWindow};
use crate::{Api, DomainError, GrantId, Partner, PartnerKind, PartnerStatus, PrincipalId};
use jiff::{SignedDuration, Timestamp};

pub const DEFAULT_TOKEN_TTL_SECONDS: u32 = 600;
pub const MAX_TOKEN_TTL_SECONDS: u32 = 3600;
pub const DEFAULT_RECERTIFY_DAYS: u32 = 90;
pub const MAX_RECERTIFY_DAYS: u32 = 365;
pub const MAX_GRANT_DAYS: i64 = 365;
pub const MAX_EMERGENCY_HOURS: i64 = 4;

/// One approver's decision as submitted.
#[derive(Debug, Clone)]
pub struct ApprovalInput {
    pub decision: ApprovalDecision,
    pub justification: Name,
    pub ticket: Option<Name>,
    pub data_exception: Option<Name>,
}

impl ApprovalInput {
    pub fn approve(justification: Name) -> Self {
        Self {
            decision: ApprovalDecision::Approve,
            justification,
            ticket: None,
            data_exception: None,
        }
    }

    pub fn reject(justification: Name) -> Self {
        Self {
            decision: ApprovalDecision::Reject,
            justification,
            ticket: None,
            data_exception: None,
        }
    }
}

/// A grant request as a steward submits it. Its wire form (the `POST /v1/grants` body) is
/// charter-server's `wire::GrantRequest`.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub partner: crate::PartnerId,
    pub api: crate::ApiId,
    pub use_case: Name,
    pub scopes: Vec<Scope>,
    pub data_class_ceiling: DataClass,
    pub regions: Vec<Region>,
    pub environments: Option<Vec<Environment>>,
    pub expires_at: Timestamp,
    pub token_ttl_seconds: Option<u32>,
    pub recertify_every_days: Option<u32>,
    pub approvals_required: Option<u32>,
    pub transfer_basis: Option<Name>,
    pub time_window: Option<TimeWindow>,
    pub require_dpop: Option<bool>,
    pub emergency: Option<Emergency>,
}

fn dedup<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

impl GrantRequest {
    /// Checks the request against the API and partner it names and builds the grant:
    /// `pending`, or `active` at once for an emergency grant.
    pub fn into_grant(
        self,
        id: GrantId,
        api: &Api,
        partner: &Partner,
        requested_by: PrincipalId,
        now: Timestamp,
    ) -> Result<Grant, DomainError> {
        if api.id != self.api || partner.id != self.partner {
            return Err(DomainError::invalid("request names another API or partner"));
        }
        if partner.status != PartnerStatus::Active {
            return Err(DomainError::conflict(format!(
                "partner {} is not active",
                partner.id
            )));
        }
        let scopes = dedup(&self.scopes);
        let regions = dedup(&self.regions);
        let environments = match &self.environments {
            Some(envs) => dedup(envs),
            None => vec![Environment::parse("production")?],
        };
        if scopes.is_empty() {
            return Err(DomainError::invalid("scopes must name at least one scope"));
        }
        if regions.is_empty() {
            return Err(DomainError::invalid(
                "regions must name at least one region",
            ));
        }
        if environments.is_empty() {
            return Err(DomainError::invalid(
                "environments must name at least one environment",
            ));
        }
        for scope in &scopes {
            if !api.has_scope(scope) {
                return Err(DomainError::invalid(format!(
                    "unknown scope {scope} for API {}",
                    api.name
                )));
            }
        }
        check_reach(api, &scopes, self.data_class_ceiling, &regions)?;
        let transfer_basis = self.transfer_basis;
        if transfer_basis.is_none()
            && let Some(r) = regions.iter().find(|r| !partner.regions.contains(r))
        {
            return Err(DomainError::invalid(format!(
                "region {r} is outside the partner's processing regions: a transfer_basis is required"
            )));
        }

        if self.expires_at <= now {
            return Err(DomainError::invalid("expires_at must be in the future"));
        }
        let limit = if self.emergency.is_some() {
            now + SignedDuration::from_hours(MAX_EMERGENCY_HOURS)
        } else {
            now + SignedDuration::from_hours(24 * MAX_GRANT_DAYS)
        };
        if self.expires_at > limit {
            return Err(DomainError::invalid(if self.emergency.is_some() {
                "an emergency grant lasts at most 4 hours"
            } else {
                "expires_at is at most 365 days ahead"
            }));
        }

        let token_ttl_seconds = self.token_ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS);
        if !(1..=MAX_TOKEN_TTL_SECONDS).contains(&token_ttl_seconds) {
            return Err(DomainError::invalid(
                "token_ttl_seconds must be between 1 and 3600",
            ));
        }
        let recertify_every_days = self.recertify_every_days.unwrap_or(DEFAULT_RECERTIFY_DAYS);
        if !(1..=MAX_RECERTIFY_DAYS).contains(&recertify_every_days) {
            return Err(DomainError::invalid(
                "recertify_every_days must be between 1 and 365",
            ));
        }
        let owners = dedup(&partner.owners).len() as u32;
        let approvals_required = match (partner.kind, self.approvals_required) {
            (PartnerKind::Reseller, None) => 2,
            (PartnerKind::Reseller, Some(n)) if n < 2 => {
                return Err(DomainError::invalid(
                    "a reseller grant needs approvals from at least 2 distinct owners",
                ));
            }
            (_, Some(0)) => return Err(DomainError::invalid("approvals_required is at least 1")),
            (_, n) => n.unwrap_or(1),
        };
        if self.emergency.is_none() && approvals_required > owners {
            return Err(DomainError::invalid(format!(
                "approvals_required is {approvals_required} but the partner has {owners} owner(s)"
            )));
        }

        // A SaaS connector runs the integration on its side while we keep the data risk:
        // above `internal` it needs an exception each approver records.
        let data_exception_required = partner.kind == PartnerKind::SaasConnector
            && self.data_class_ceiling > DataClass::Internal;
        if data_exception_required && self.emergency.is_some() {
            return Err(DomainError::invalid(
                "break-glass access for a SaaS connector is limited to internal data",
            ));
        }
        let emergency = self.emergency;
        let active = emergency.is_some();
        Ok(Grant {
            id,
            partner: partner.id.clone(),
            api: api.id.clone(),
            use_case: self.use_case,
            scopes,
            data_class_ceiling: self.data_class_ceiling,
            regions,
            environments,
            transfer_basis,
            time_window: self.time_window,
            require_dpop: self.require_dpop.unwrap_or(false),
            data_exception_required,
            emergency,
            expires_at: self.expires_at,
            token_ttl_seconds,
            recertify_every_days,
            approvals_required,
            status: if active {
                GrantStatus::Active
            } else {
                GrantStatus::Pending
            },
            status_reason: None,
            requested_by,
            requested_at: now,
            approvers: dedup(&partner.owners),
            approvals: Vec::new(),
            activated_at: active.then_some(now),
            review_due_at: active.then(|| review_due(now, recertify_every_days)),
            ended_at: None,
            epoch: 1,
        })
    }
}

fn review_due(now: Timestamp, days: u32) -> Timestamp {
    now + SignedDuration::from_hours(24 * i64::from(days))
}

/// The operations a grant's scopes reach must all sit at or below its data-class ceiling
/// and inside its regions. Checked when a grant is requested; the gateway checks each call
/// again, because an API owner may reclassify an operation later.
pub fn check_reach(
    api: &Api,
    scopes: &[Scope],
    ceiling: DataClass,
    regions: &[Region],
) -> Result<(), DomainError> {
    for scope in scopes {
        for op in api.operations_for(scope) {
            if op.data_class > ceiling {
                return Err(DomainError::invalid(format!(
                    "scope {scope} reaches {:?} {} classified {}, above the ceiling {}",
                    op.method,
                    op.path.as_str(),
                    op.data_class.as_str(),
                    ceiling.as_str()
                )));
            }
            if !regions.contains(&op.region) {
                return Err(DomainError::invalid(format!(
                    "scope {scope} reaches {:?} {} in region {}, outside the grant's regions",
                    op.method,
                    op.path.as_str(),
                    op.region
                )));
            }
        }
    }
    Ok(())
}

impl Grant {
    fn illegal(&self, action: &str) -> DomainError {
        DomainError::conflict(format!(
            "cannot {action} grant {}: it is {}",
            self.id,
            self.status.as_str()
        ))
    }

    /// Records an approver's decision. The requester never approves; approvers must have
    /// owned the partner when the grant was requested (`approvers`, not the current owners),
    /// must not have changed the partner's owners since, and each counts once. Enough approvals activate the grant; one
    /// rejection ends the request.
    pub fn decide(
        &mut self,
        partner: &Partner,
        approver: &PrincipalId,
        input: ApprovalInput,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        let ApprovalInput {
            decision,
            justification,
            ticket,
            data_exception,
        } = input;
        if self.status != GrantStatus::Pending {
            return Err(self.illegal("decide on"));
        }
        if approver == &self.requested_by {
            return Err(DomainError::forbidden(
                "the requester of a grant cannot approve it",
            ));
        }
        if !self.approvers.contains(approver) {
            return Err(DomainError::forbidden(
                "only a principal who owned the partner when the grant was requested can approve it",
            ));
        }
        if partner.owners_changed_by_since(approver, self.requested_at) {
            return Err(DomainError::forbidden(
                "a principal who changed the partner's owners after the grant was requested cannot approve it",
            ));
        }
        if self.approvals.iter().any(|a| &a.approver == approver) {
            return Err(DomainError::conflict(
                "this owner has already decided on the grant",
            ));
        }
        if decision == ApprovalDecision::Approve
            && self.data_exception_required
            && data_exception.is_none()
        {
            return Err(DomainError::invalid(
                "this SaaS connector grant reaches data above internal: the approval must record a data_exception",
            ));
        }
        if decision == ApprovalDecision::Approve && now >= self.expires_at {
            return Err(DomainError::conflict(
                "the grant request has passed its expires_at",
            ));
        }
        self.approvals.push(Approval {
            approver: approver.clone(),
            decision,
            justification,
            ticket,
            data_exception,
            at: now,
        });
        match decision {
            ApprovalDecision::Reject => {
                self.status = GrantStatus::Rejected;
                self.ended_at = Some(now);
            }
            ApprovalDecision::Approve => {
                let approved = self
                    .approvals
                    .iter()
                    .filter(|a| a.decision == ApprovalDecision::Approve)
                    .count() as u32;
                if approved >= self.approvals_required {
                    self.status = GrantStatus::Active;
                    self.activated_at = Some(now);
                    self.review_due_at = Some(review_due(now, self.recertify_every_days));
                }
            }
        }
        Ok(())
    }

    /// `active → suspended`.
    pub fn suspend(&mut self, reason: Name) -> Result<(), DomainError> {
        if self.status != GrantStatus::Active {
            return Err(self.illegal("suspend"));
        }
        self.status = GrantStatus::Suspended;
        self.status_reason = Some(reason);
        Ok(())
    }

    /// `suspended → active`, unless the grant has passed its `expires_at`.
    pub fn resume(&mut self, reason: Name, now: Timestamp) -> Result<(), DomainError> {
        if self.status != GrantStatus::Suspended {
            return Err(self.illegal("resume"));
        }
        if now >= self.expires_at {
            return Err(DomainError::conflict("the grant has passed its expires_at"));
        }
        self.status = GrantStatus::Active;
        self.status_reason = Some(reason);
        Ok(())
    }

    /// Ends the grant for good and bumps its epoch, so every outstanding token dies.
    pub fn revoke(&mut self, reason: Name, now: Timestamp) -> Result<(), DomainError> {
        if self.status.is_final() {
            return Err(self.illegal("revoke"));
        }
        self.status = GrantStatus::Revoked;
        self.status_reason = Some(reason);
        self.ended_at = Some(now);
        self.epoch += 1;
        Ok(())
    }

    /// Ends the grant at its `expires_at` (any state but a final one); bumps the epoch.
    pub fn expire(&mut self, now: Timestamp) -> Result<(), DomainError> {
        if self.status.is_final() {
            return Err(self.illegal("expire"));
        }
        if now < self.expires_at {
            return Err(DomainError::conflict(
                "the grant has not reached its expires_at",
            ));
        }
        self.status = GrantStatus::Expired;
        self.status_reason = Some(Name::parse("reached expires_at")?);
        self.ended_at = Some(now);
        self.epoch += 1;
        Ok(())
    }

    /// Suspends an active grant whose recertification is overdue (fail closed).
    pub fn suspend_overdue(&mut self, now: Timestamp) -> Result<(), DomainError> {
        if self.status != GrantStatus::Active || self.review_due_at.is_none_or(|due| now < due) {
            return Err(DomainError::conflict("the grant is not overdue for review"));
        }
        self.status = GrantStatus::Suspended;
        self.status_reason = Some(Name::parse("recertification overdue")?);
        Ok(())
    }

    /// Whether the grant currently lets its partner in (state and `expires_at`).
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.status == GrantStatus::Active && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{ApiName, Audience, Method, PathTemplate, UpstreamUrl};
    use crate::{ApiId, Operation, PartnerId};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pid(n: u8) -> PrincipalId {
        PrincipalId::generate(1, [n; 10])
    }

    fn api() -> Api {
        let op = |scope: &str, path: &str, class, region: &str| Operation {
            scope: Scope::parse(scope).unwrap(),
            method: Method::Get,
            path: PathTemplate::parse(path).unwrap(),
            data_class: class,
            region: Region::parse(region).unwrap(),
        };
        Api {
            id: ApiId::generate(1, [1; 10]),
            name: ApiName::parse("orders").unwrap(),
            audience: Audience::parse("https://api.example.com/orders").unwrap(),
            upstream: UpstreamUrl::parse("http://127.0.0.1:9").unwrap(),
            owner: pid(9),
            operations: vec![
                op("orders:read", "/orders/{id}", DataClass::Confidential, "eu"),
                op("orders:export", "/export", DataClass::Restricted, "us"),
            ],
            revision: 1,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
        }
    }

    fn partner(kind: PartnerKind, owners: Vec<PrincipalId>) -> Partner {
        Partner {
            id: PartnerId::generate(1, [2; 10]),
            name: Name::parse("Acme").unwrap(),
            kind,
            regions: vec![Region::parse("eu").unwrap()],
            owners,
            status: PartnerStatus::Active,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
            owner_changes: Vec::new(),
        }
    }

    fn request(api: &Api, partner: &Partner, now: Timestamp) -> GrantRequest {
        GrantRequest {
            partner: partner.id.clone(),
            api: api.id.clone(),
            use_case: Name::parse("sync").unwrap(),
            scopes: vec![Scope::parse("orders:read").unwrap()],
            data_class_ceiling: DataClass::Confidential,
            regions: vec![Region::parse("eu").unwrap()],
            environments: None,
            expires_at: now + SignedDuration::from_hours(24 * 30),
            token_ttl_seconds: None,
            recertify_every_days: None,
            approvals_required: None,
            transfer_basis: None,
            time_window: None,
            require_dpop: None,
            emergency: None,
        }
    }

    fn just(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn approvers_are_the_owners_at_request_time() {
        let now = ts("2026-11-30T10:00:00Z");
        let later = now + SignedDuration::from_mins(5);
        let api = api();
        let mut p = partner(PartnerKind::Direct, vec![pid(1), pid(2)]);
        let mut g = request(&api, &p, now)
            .into_grant(GrantId::generate(2, [0; 10]), &api, &p, pid(5), now)
            .unwrap();
        assert_eq!(g.approvers, vec![pid(1), pid(2)]);
        // Owner 2 (say, an admin who also approves) replaces the owners after the request.
        p.owners = vec![pid(2), pid(3)];
        p.owner_changes.push(crate::model::OwnersChange {
            by: pid(2),
            at: later,
        });
        // The new owner was not an owner at request time; the changer changed the owner set.
        for who in [pid(3), pid(2)] {
            assert!(matches!(
                g.decide(&p, &who, ApprovalInput::approve(just("x")), later),
                Err(DomainError::Forbidden(_))
            ));
        }
        // Owner 1, dropped since, still approves what was asked of it.
        g.decide(&p, &pid(1), ApprovalInput::approve(just("ok")), later)
            .unwrap();
        assert_eq!(g.status, GrantStatus::Active);
        // A grant stored without a snapshot has no approver (fails closed).
        let mut legacy = request(&api, &p, later)
            .into_grant(GrantId::generate(3, [0; 10]), &api, &p, pid(5), later)
            .unwrap();
        legacy.approvers.clear();
        assert!(matches!(
            legacy.decide(&p, &pid(3), ApprovalInput::approve(just("x")), later),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn approval_state_machine() {
        let now = ts("2026-11-30T10:00:00Z");
        let (api, p) = (api(), partner(PartnerKind::Direct, vec![pid(1)]));
        let mut g = request(&api, &p, now)
            .into_grant(GrantId::generate(2, [0; 10]), &api, &p, pid(5), now)
            .unwrap();
        assert_eq!(g.status, GrantStatus::Pending);
        // Nothing but a decision moves a pending grant out of pending, except revocation.
        assert!(matches!(
            g.suspend(just("x")),
            Err(DomainError::Conflict(_))
        ));
        assert!(matches!(
            g.resume(just("x"), now),
            Err(DomainError::Conflict(_))
        ));
        // The requester cannot approve, nor can a non-owner.
        assert!(matches!(
            g.decide(&p, &pid(5), ApprovalInput::approve(just("me")), now),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            g.decide(&p, &pid(7), ApprovalInput::approve(just("me")), now),
            Err(DomainError::Forbidden(_))
        ));
        g.decide(&p, &pid(1), ApprovalInput::approve(just("ok")), now)
            .unwrap();
        assert_eq!(g.status, GrantStatus::Active);
        assert_eq!(
            g.review_due_at,
            Some(now + SignedDuration::from_hours(24 * 90))
        );
        assert!(g.is_live(now));
        assert!(!g.is_live(g.expires_at));
        g.suspend(just("investigation")).unwrap();
        assert!(!g.is_live(now));
        // A suspended grant past its end cannot be resumed.
        assert!(g.resume(just("late"), g.expires_at).is_err());
        g.resume(just("cleared"), now).unwrap();
        g.revoke(just("ended"), now).unwrap();
        assert_eq!((g.status, g.epoch), (GrantStatus::Revoked, 2));
        let before = g.clone();
        for result in [
            g.suspend(just("x")),
            g.resume(just("x"), now),
            g.revoke(just("x"), now),
        ] {
            assert!(matches!(result, Err(DomainError::Conflict(_))));
        }
        assert_eq!(g, before, "a refused transition leaves the grant untouched");
    }

    #[test]
    fn reseller_counts_each_owner_once() {
        let now = ts("2026-11-30T10:00:00Z");
        let (api, p) = (api(), partner(PartnerKind::Reseller, vec![pid(1), pid(2)]));
        let mut g = request(&api, &p, now)
            .into_grant(GrantId::generate(2, [0; 10]), &api, &p, pid(5), now)
            .unwrap();
        assert_eq!(g.approvals_required, 2);
        g.decide(&p, &pid(1), ApprovalInput::approve(just("a")), now)
            .unwrap();
        assert!(matches!(
            g.decide(&p, &pid(1), ApprovalInput::approve(just("a")), now),
            Err(DomainError::Conflict(_))
        ));
        assert_eq!(g.status, GrantStatus::Pending);
        g.decide(&p, &pid(2), ApprovalInput::approve(just("b")), now)
            .unwrap();
        assert_eq!(g.status, GrantStatus::Active);
    }

    #[test]
    fn rejection_is_final() {
        let now = ts("2026-11-30T10:00:00Z");
        let (api, p) = (api(), partner(PartnerKind::Direct, vec![pid(1)]));
        let mut g = request(&api, &p, now)
            .into_grant(GrantId::generate(2, [0; 10]), &api, &p, pid(5), now)
            .unwrap();
        g.decide(&p, &pid(1), ApprovalInput::reject(just("no")), now)
            .unwrap();
        assert_eq!(g.status, GrantStatus::Rejected);
        assert!(g.revoke(just("x"), now).is_err());
    }

    #[test]
    fn requests_are_checked() {
        let now = ts("2026-11-30T10:00:00Z");
        let (api, p) = (api(), partner(PartnerKind::Direct, vec![pid(1)]));
        let build =
            |r: GrantRequest| r.into_grant(GrantId::generate(2, [0; 10]), &api, &p, pid(5), now);
        let mut r = request(&api, &p, now);
        r.data_class_ceiling = DataClass::Internal;
        assert!(matches!(build(r), Err(DomainError::Invalid(m)) if m.contains("ceiling")));
        let mut r = request(&api, &p, now);
        r.scopes = vec![Scope::parse("orders:export").unwrap()];
        r.data_class_ceiling = DataClass::Restricted;
        assert!(build(r.clone()).is_err(), "region us not in the grant");
        r.regions = vec![Region::parse("us").unwrap()];
        assert!(
            matches!(build(r.clone()), Err(DomainError::Invalid(m)) if m.contains("transfer_basis"))
        );
        r.transfer_basis = Some(just("SCC"));
        assert!(build(r).is_ok());
        let mut r = request(&api, &p, now);
        r.emergency = Some(Emergency {
            incident: just("INC-1"),
        });
        assert!(
            build(r.clone()).is_err(),
            "30 days is too long for an emergency"
        );
        r.expires_at = now + SignedDuration::from_hours(4);
        let g = build(r).unwrap();
        assert_eq!(g.status, GrantStatus::Active);
        let mut r = request(&api, &p, now);
        r.approvals_required = Some(2);
        assert!(build(r).is_err(), "more approvals than owners");
        let mut suspended = p.clone();
        suspended.status = PartnerStatus::Suspended;
        let r = request(&api, &p, now);
        assert!(matches!(
            r.into_grant(GrantId::generate(2, [0; 10]), &api, &suspended, pid(5), now),
            Err(DomainError::Conflict(_))
        ));
    }
}
