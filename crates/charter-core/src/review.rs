//! Recertification: every grant comes due for review, and a reviewer — an owner of the
//! partner, never the grant's requester — decides on usage evidence whether to keep it,
//! reduce it to a subset of its scopes, or revoke it. A break-glass grant opens a
//! post-incident review that someone other than its opener must complete.
//!
//! A review holds one item per grant under review; each item is a snapshot of what the grant
//! could reach and how it was used, plus (once attested) the decision. The rules that move a
//! grant on an attestation live here as `Grant::recertify` and `Grant::reduce`; like every
//! transition they leave the grant untouched when they refuse.
//!
//! Serde here is the stored document format (and audit `after`), not the API; the API's types
//! are in charter-server's `wire` module.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::model::{Emergency, Grant, GrantStatus};
use crate::values::{DataClass, Name, Region, Scope};
use crate::{ApiId, DomainError, GrantId, Partner, PartnerId, PrincipalId, ReviewId};

/// The `status_reason` the scheduler gives a grant it suspends for an overdue review; only a
/// `keep` or `reduce` attestation resumes such a grant.
pub const OVERDUE_REASON: &str = "recertification overdue";
/// The `status_reason` of a grant resumed by an attestation.
pub const RECERTIFIED_REASON: &str = "recertified";
/// A break-glass grant's post-incident review is due this long after the grant opened.
pub const POST_INCIDENT_HOURS: i64 = 72;

/// What a review (and each of its items) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// The periodic review of a grant's need (a campaign over a partner or an API).
    Recertification,
    /// The mandatory review after break-glass access.
    PostIncident,
}

wire_names!(ReviewKind, "review kind", {
    Recertification => "recertification",
    PostIncident => "post_incident",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Some item still awaits its decision.
    Open,
    /// Every item is decided.
    Completed,
}

wire_names!(ReviewStatus, "review status", {
    Open => "open",
    Completed => "completed",
});

/// What a review covers: `{type: "partner" | "api" | "grant", id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum ReviewSubject {
    /// Every grant of a partner.
    Partner(PartnerId),
    /// Every grant on an API.
    Api(ApiId),
    /// One grant (a post-incident review).
    Grant(GrantId),
}

impl ReviewSubject {
    pub fn id(&self) -> &str {
        match self {
            Self::Partner(id) => id.as_str(),
            Self::Api(id) => id.as_str(),
            Self::Grant(id) => id.as_str(),
        }
    }
}

/// How a grant was used over a period, from its access-decision records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvidence {
    /// The last allowed call within the period (`null`: none).
    pub last_call_at: Option<Timestamp>,
    /// Allowed calls per scope within the period; every granted scope is listed.
    pub calls_by_scope: BTreeMap<String, u64>,
    /// Granted scopes with no allowed call within the period.
    pub scopes_never_used: Vec<Scope>,
    /// Denied calls attributed to the grant within the period.
    pub denials: u64,
    pub period_days: u32,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
}

/// Counts access decisions as they are read, newest or oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTally {
    last_call_at: Option<Timestamp>,
    calls: BTreeMap<String, u64>,
    denials: u64,
}

impl UsageTally {
    /// An allowed call at `at` for an operation of `scope`.
    pub fn allowed(&mut self, at: Timestamp, scope: &str) {
        *self.calls.entry(scope.to_owned()).or_default() += 1;
        if self.last_call_at.is_none_or(|last| at > last) {
            self.last_call_at = Some(at);
        }
    }

    pub fn denied(&mut self) {
        self.denials += 1;
    }

    pub fn last_call_at(&self) -> Option<Timestamp> {
        self.last_call_at
    }

    /// Whether any call of `scope` was allowed.
    pub fn used(&self, scope: &Scope) -> bool {
        self.calls.get(scope.as_str()).is_some_and(|n| *n > 0)
    }

    /// Granted scopes with no allowed call.
    pub fn unused(&self, scopes: &[Scope]) -> Vec<Scope> {
        scopes.iter().filter(|s| !self.used(s)).cloned().collect()
    }

    /// The evidence over `[start, end]` for a grant holding `scopes`.
    pub fn evidence(self, scopes: &[Scope], start: Timestamp, end: Timestamp) -> UsageEvidence {
        let scopes_never_used = self.unused(scopes);
        let mut calls_by_scope = self.calls;
        for s in scopes {
            calls_by_scope.entry(s.to_string()).or_insert(0);
        }
        let secs = end.duration_since(start).as_secs().max(0);
        UsageEvidence {
            last_call_at: self.last_call_at,
            calls_by_scope,
            scopes_never_used,
            denials: self.denials,
            period_days: u32::try_from((secs + 86_399) / 86_400).unwrap_or(u32::MAX),
            period_start: start,
            period_end: end,
        }
    }
}

/// The period a grant's usage evidence covers, ending `now`: its recertification interval
/// (for a post-incident review, the grant's life so far).
pub fn evidence_period(grant: &Grant, kind: ReviewKind, now: Timestamp) -> (Timestamp, Timestamp) {
    match kind {
        ReviewKind::Recertification => (
            now - SignedDuration::from_hours(24 * i64::from(grant.recertify_every_days)),
            now,
        ),
        ReviewKind::PostIncident => {
            let opened = grant.activated_at.unwrap_or(grant.requested_at);
            (opened.min(now), now)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestDecision {
    /// The access is still needed as it is.
    Keep,
    /// Still needed, but only a strict subset of its scopes.
    Reduce,
    /// No longer needed.
    Revoke,
}

wire_names!(AttestDecision, "decision", {
    Keep => "keep",
    Reduce => "reduce",
    Revoke => "revoke",
});

/// A reviewer's decision on one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attestation {
    pub decision: AttestDecision,
    /// The scopes kept by a `reduce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    pub justification: Name,
    pub by: PrincipalId,
    pub at: Timestamp,
}

/// One grant under review: what it could reach, who may decide, how it was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// `itm_1`, `itm_2`, … within the review.
    pub id: String,
    pub kind: ReviewKind,
    pub grant: GrantId,
    pub partner: PartnerId,
    pub api: ApiId,
    pub use_case: Name,
    /// The grant's state when the item was opened.
    pub grant_status: GrantStatus,
    pub scopes: Vec<Scope>,
    pub data_class_ceiling: DataClass,
    pub regions: Vec<Region>,
    pub transfer_basis: Option<Name>,
    /// The grant's regions outside the partner's processing regions (cross-border access,
    /// which needs the transfer basis).
    pub cross_border_regions: Vec<Region>,
    pub emergency: Option<Emergency>,
    /// Who requested (or, for break-glass, opened) the grant: never its reviewer.
    pub requested_by: PrincipalId,
    /// The partner's owners: for a reseller every owner sees the shared path.
    pub reviewers: Vec<PrincipalId>,
    /// When the decision is due (the grant's `review_due_at`, or 72 h after break-glass).
    pub due_at: Timestamp,
    pub evidence: UsageEvidence,
    pub decision: Option<Attestation>,
}

impl ReviewItem {
    /// An item reviewing `grant` of `partner`, numbered `n` within its review.
    pub fn new(
        n: usize,
        kind: ReviewKind,
        grant: &Grant,
        partner: &Partner,
        evidence: UsageEvidence,
        now: Timestamp,
    ) -> Self {
        let due_at = match kind {
            ReviewKind::Recertification => grant.review_due_at.unwrap_or(now),
            ReviewKind::PostIncident => {
                grant.activated_at.unwrap_or(grant.requested_at)
                    + SignedDuration::from_hours(POST_INCIDENT_HOURS)
            }
        };
        Self {
            id: format!("itm_{n}"),
            kind,
            grant: grant.id.clone(),
            partner: grant.partner.clone(),
            api: grant.api.clone(),
            use_case: grant.use_case.clone(),
            grant_status: grant.status,
            scopes: grant.scopes.clone(),
            data_class_ceiling: grant.data_class_ceiling,
            regions: grant.regions.clone(),
            transfer_basis: grant.transfer_basis.clone(),
            cross_border_regions: grant
                .regions
                .iter()
                .filter(|r| !partner.regions.contains(r))
                .cloned()
                .collect(),
            emergency: grant.emergency.clone(),
            requested_by: grant.requested_by.clone(),
            reviewers: partner.owners.clone(),
            due_at,
            evidence,
            decision: None,
        }
    }

    pub fn is_attested(&self) -> bool {
        self.decision.is_some()
    }
}

/// A review: a recertification campaign over a partner's or an API's grants, or the
/// post-incident review of one break-glass grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: ReviewId,
    pub kind: ReviewKind,
    pub subject: ReviewSubject,
    pub status: ReviewStatus,
    pub items: Vec<ReviewItem>,
    pub created_by: PrincipalId,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// Whether a recertification campaign takes the grant: active, or suspended because its
/// review is overdue (the review is what brings it back).
pub fn under_review(grant: &Grant) -> bool {
    match grant.status {
        GrantStatus::Active => true,
        GrantStatus::Suspended => is_overdue_suspended(grant),
        _ => false,
    }
}

/// Whether the scheduler suspended the grant for an overdue review: only a `keep` or
/// `reduce` attestation brings such a grant back, not a plain resume.
pub fn is_overdue_suspended(grant: &Grant) -> bool {
    grant.status == GrantStatus::Suspended
        && grant
            .status_reason
            .as_ref()
            .is_some_and(|r| r.as_str() == OVERDUE_REASON)
}

/// An attestation as a reviewer submits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attest {
    pub decision: AttestDecision,
    pub scopes: Option<Vec<Scope>>,
    pub justification: Name,
    pub by: PrincipalId,
}

impl Review {
    /// A recertification campaign; it needs at least one grant to review.
    pub fn campaign(
        id: ReviewId,
        subject: ReviewSubject,
        items: Vec<ReviewItem>,
        created_by: PrincipalId,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        if items.is_empty() {
            return Err(DomainError::conflict(format!(
                "{} has no active grant to review",
                subject.id()
            )));
        }
        Ok(Self {
            id,
            kind: ReviewKind::Recertification,
            subject,
            status: ReviewStatus::Open,
            items,
            created_by,
            created_at: now,
            completed_at: None,
        })
    }

    /// The post-incident review a break-glass grant opens with it.
    pub fn post_incident(
        id: ReviewId,
        grant: &Grant,
        partner: &Partner,
        evidence: UsageEvidence,
        created_by: PrincipalId,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        if grant.emergency.is_none() {
            return Err(DomainError::invalid(
                "only an emergency grant has a post-incident review",
            ));
        }
        Ok(Self {
            id,
            kind: ReviewKind::PostIncident,
            subject: ReviewSubject::Grant(grant.id.clone()),
            status: ReviewStatus::Open,
            items: vec![ReviewItem::new(
                1,
                ReviewKind::PostIncident,
                grant,
                partner,
                evidence,
                now,
            )],
            created_by,
            created_at: now,
            completed_at: None,
        })
    }

    pub fn item(&self, id: &str) -> Option<&ReviewItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Records a reviewer's decision on one item and applies it to the item's grant:
    /// `keep` recertifies, `reduce` narrows the scopes (bumping the epoch), `revoke` ends the
    /// grant. The reviewer must own the partner and must not be the grant's requester; an
    /// item is decided once. On any refusal neither the review nor the grant changes.
    /// `evidence`, when given, replaces the item's evidence (what the reviewer saw).
    pub fn attest(
        &mut self,
        item_id: &str,
        attest: Attest,
        grant: &mut Grant,
        partner: &Partner,
        evidence: Option<UsageEvidence>,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        let Some(item) = self.items.iter_mut().find(|i| i.id == item_id) else {
            return Err(DomainError::invalid(format!(
                "no item {item_id} in the review"
            )));
        };
        if item.grant != grant.id || partner.id != grant.partner {
            return Err(DomainError::invalid(
                "the grant or partner is not the item's",
            ));
        }
        if attest.by == grant.requested_by {
            return Err(DomainError::forbidden(
                "the requester of a grant cannot attest its review",
            ));
        }
        if !grant.approvers.contains(&attest.by)
            || partner.owners_changed_by_since(&attest.by, grant.requested_at)
        {
            return Err(DomainError::forbidden(
                "only a principal who owned the partner when the grant was requested (and has not changed its owners since) can attest it",
            ));
        }
        if item.is_attested() {
            return Err(DomainError::conflict(format!(
                "item {item_id} is already attested"
            )));
        }
        let scopes = match (attest.decision, attest.scopes) {
            (AttestDecision::Reduce, Some(s)) => Some(s),
            (AttestDecision::Reduce, None) => {
                return Err(DomainError::invalid("reduce needs the scopes to keep"));
            }
            (_, Some(_)) => {
                return Err(DomainError::invalid(
                    "scopes go with a reduce decision only",
                ));
            }
            (_, None) => None,
        };
        let mut next = grant.clone();
        match (item.kind, attest.decision) {
            (ReviewKind::Recertification, AttestDecision::Keep) => next.recertify(now)?,
            (ReviewKind::Recertification, AttestDecision::Reduce) => {
                next.reduce(scopes.as_deref().unwrap_or_default(), now)?;
            }
            (ReviewKind::PostIncident, AttestDecision::Reduce) => {
                return Err(DomainError::invalid(
                    "a post-incident review keeps or revokes",
                ));
            }
            // The break-glass use is accepted; the grant ends by itself.
            (ReviewKind::PostIncident, AttestDecision::Keep) => {}
            // Break-glass is usually over by the time it is reviewed: nothing left to end.
            (ReviewKind::PostIncident, AttestDecision::Revoke) if next.status.is_final() => {}
            (_, AttestDecision::Revoke) => next.revoke(attest.justification.clone(), now)?,
        }
        item.decision = Some(Attestation {
            decision: attest.decision,
            scopes: scopes.map(|s| {
                next.scopes
                    .iter()
                    .filter(|g| s.contains(g))
                    .cloned()
                    .collect()
            }),
            justification: attest.justification,
            by: attest.by,
            at: now,
        });
        if let Some(e) = evidence {
            item.evidence = e;
        }
        *grant = next;
        if self.items.iter().all(ReviewItem::is_attested) {
            self.status = ReviewStatus::Completed;
            self.completed_at = Some(now);
        }
        Ok(())
    }
}

impl Grant {
    fn check_recertifiable(&self, now: Timestamp) -> Result<(), DomainError> {
        if !matches!(self.status, GrantStatus::Active | GrantStatus::Suspended) {
            return Err(DomainError::conflict(format!(
                "cannot recertify grant {}: it is {}",
                self.id,
                self.status.as_str()
            )));
        }
        if now >= self.expires_at {
            return Err(DomainError::conflict("the grant has passed its expires_at"));
        }
        Ok(())
    }

    fn recertified(&mut self, now: Timestamp) {
        self.review_due_at =
            Some(now + SignedDuration::from_hours(24 * i64::from(self.recertify_every_days)));
        if is_overdue_suspended(self) {
            self.status = GrantStatus::Active;
            self.status_reason = Name::parse(RECERTIFIED_REASON).ok();
        }
    }

    /// A `keep` decision: the next review is due a full interval from now, and a grant
    /// suspended for an overdue review is active again (one suspended for another reason
    /// stays suspended).
    pub fn recertify(&mut self, now: Timestamp) -> Result<(), DomainError> {
        self.check_recertifiable(now)?;
        self.recertified(now);
        Ok(())
    }

    /// A `reduce` decision: the grant keeps only `scopes`, a non-empty strict subset of its
    /// scopes; its epoch is bumped so tokens carrying the removed scopes die, and it is
    /// recertified as by [`Grant::recertify`].
    pub fn reduce(&mut self, scopes: &[Scope], now: Timestamp) -> Result<(), DomainError> {
        if scopes.is_empty() {
            return Err(DomainError::invalid("reduce keeps at least one scope"));
        }
        if let Some(s) = scopes.iter().find(|s| !self.scopes.contains(s)) {
            return Err(DomainError::invalid(format!(
                "scope {s} is not one of the grant's scopes"
            )));
        }
        if self.scopes.iter().all(|s| scopes.contains(s)) {
            return Err(DomainError::invalid(
                "reduce must remove at least one scope (use keep to keep them all)",
            ));
        }
        self.check_recertifiable(now)?;
        self.scopes.retain(|s| scopes.contains(s));
        self.epoch += 1;
        self.recertified(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::GrantRequest;
    use crate::values::{ApiName, Audience, Method, PathTemplate, UpstreamUrl};
    use crate::{Api, Operation, PartnerKind, PartnerStatus};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pid(n: u8) -> PrincipalId {
        PrincipalId::generate(1, [n; 10])
    }

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn api() -> Api {
        let op = |s: &str, path: &str| Operation {
            scope: scope(s),
            method: Method::Get,
            path: PathTemplate::parse(path).unwrap(),
            data_class: DataClass::Internal,
            region: Region::parse("eu").unwrap(),
        };
        Api {
            id: ApiId::generate(1, [1; 10]),
            name: ApiName::parse("orders").unwrap(),
            audience: Audience::parse("https://api.example.com/orders").unwrap(),
            upstream: UpstreamUrl::parse("http://127.0.0.1:9").unwrap(),
            owner: pid(9),
            operations: vec![
                op("orders:read", "/orders/{id}"),
                op("orders:list", "/orders"),
                op("orders:track", "/orders/{id}/track"),
            ],
            revision: 1,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
        }
    }

    fn partner(owners: Vec<PrincipalId>) -> Partner {
        Partner {
            id: PartnerId::generate(1, [2; 10]),
            name: name("Acme"),
            kind: PartnerKind::Direct,
            regions: vec![Region::parse("eu").unwrap()],
            owners,
            status: PartnerStatus::Active,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
            owner_changes: Vec::new(),
        }
    }

    /// An active grant requested by principal 5 and approved by owner 1.
    fn grant(p: &Partner, now: Timestamp, emergency: bool) -> Grant {
        let api = api();
        let req = GrantRequest {
            partner: p.id.clone(),
            api: api.id.clone(),
            use_case: name("sync"),
            scopes: vec![
                scope("orders:read"),
                scope("orders:list"),
                scope("orders:track"),
            ],
            data_class_ceiling: DataClass::Confidential,
            regions: vec![Region::parse("eu").unwrap()],
            environments: None,
            expires_at: now + SignedDuration::from_hours(if emergency { 4 } else { 24 * 200 }),
            token_ttl_seconds: None,
            recertify_every_days: Some(30),
            approvals_required: None,
            transfer_basis: None,
            time_window: None,
            require_dpop: None,
            emergency: emergency.then(|| Emergency {
                incident: name("INC-1"),
            }),
        };
        let mut g = req
            .into_grant(GrantId::generate(2, [0; 10]), &api, p, pid(5), now)
            .unwrap();
        if !emergency {
            g.decide(
                p,
                &pid(1),
                crate::grant::ApprovalInput::approve(name("ok")),
                now,
            )
            .unwrap();
        }
        g
    }

    fn evidence(g: &Grant, now: Timestamp) -> UsageEvidence {
        let (start, end) = evidence_period(g, ReviewKind::Recertification, now);
        UsageTally::default().evidence(&g.scopes, start, end)
    }

    fn campaign(g: &Grant, p: &Partner, now: Timestamp) -> Review {
        let item = ReviewItem::new(1, ReviewKind::Recertification, g, p, evidence(g, now), now);
        Review::campaign(
            ReviewId::generate(3, [0; 10]),
            ReviewSubject::Partner(p.id.clone()),
            vec![item],
            pid(6),
            now,
        )
        .unwrap()
    }

    fn attest(decision: AttestDecision, by: u8, scopes: Option<Vec<Scope>>) -> Attest {
        Attest {
            decision,
            scopes,
            justification: name("still needed"),
            by: pid(by),
        }
    }

    #[test]
    fn the_overdue_reason_is_the_schedulers() {
        let now = ts("2026-11-30T10:00:00Z");
        let p = partner(vec![pid(1)]);
        let mut g = grant(&p, now, false);
        g.suspend_overdue(now + SignedDuration::from_hours(24 * 30))
            .unwrap();
        assert_eq!(g.status_reason.as_ref().unwrap().as_str(), OVERDUE_REASON);
        assert!(under_review(&g));
    }

    #[test]
    fn tally_counts_and_lists_unused_scopes() {
        let now = ts("2026-11-30T10:00:00Z");
        let scopes = [scope("orders:read"), scope("orders:list")];
        let mut t = UsageTally::default();
        t.allowed(now - SignedDuration::from_hours(2), "orders:read");
        t.allowed(now - SignedDuration::from_hours(1), "orders:read");
        t.allowed(now - SignedDuration::from_hours(3), "orders:read");
        t.denied();
        let e = t.evidence(&scopes, now - SignedDuration::from_hours(24 * 30), now);
        assert_eq!(e.last_call_at, Some(now - SignedDuration::from_hours(1)));
        assert_eq!(e.calls_by_scope["orders:read"], 3);
        assert_eq!(e.calls_by_scope["orders:list"], 0);
        assert_eq!(e.scopes_never_used, vec![scope("orders:list")]);
        assert_eq!((e.denials, e.period_days), (1, 30));
    }

    #[test]
    fn keep_recertifies_and_resumes_only_an_overdue_suspension() {
        let now = ts("2026-11-30T10:00:00Z");
        let p = partner(vec![pid(1)]);
        let mut g = grant(&p, now, false);
        let later = now + SignedDuration::from_hours(24 * 31);
        g.suspend_overdue(later).unwrap();
        let mut r = campaign(&g, &p, later);
        r.attest(
            "itm_1",
            attest(AttestDecision::Keep, 1, None),
            &mut g,
            &p,
            None,
            later,
        )
        .unwrap();
        assert_eq!(g.status, GrantStatus::Active);
        assert_eq!(
            g.review_due_at,
            Some(later + SignedDuration::from_hours(24 * 30))
        );
        assert_eq!(g.epoch, 1, "keep kills no token");
        assert_eq!(r.status, ReviewStatus::Completed);
        assert_eq!(r.completed_at, Some(later));
        assert_eq!(r.items[0].decision.as_ref().unwrap().by, pid(1));

        // A grant suspended by a steward for another reason stays suspended.
        let mut g = grant(&p, now, false);
        g.suspend(name("investigation")).unwrap();
        g.recertify(later).unwrap();
        assert_eq!(g.status, GrantStatus::Suspended);
        assert_eq!(
            g.review_due_at,
            Some(later + SignedDuration::from_hours(24 * 30))
        );
    }

    #[test]
    fn reduce_needs_a_strict_subset_and_bumps_the_epoch() {
        let now = ts("2026-11-30T10:00:00Z");
        let p = partner(vec![pid(1)]);
        let mut g = grant(&p, now, false);
        let before = g.clone();
        for bad in [
            vec![],
            vec![scope("orders:write")],
            vec![
                scope("orders:read"),
                scope("orders:list"),
                scope("orders:track"),
            ],
        ] {
            assert!(matches!(g.reduce(&bad, now), Err(DomainError::Invalid(_))));
            assert_eq!(g, before, "a refused reduce leaves the grant untouched");
        }
        let mut r = campaign(&g, &p, now);
        // A reduce without scopes, and scopes on a keep, are refused.
        assert!(matches!(
            r.attest(
                "itm_1",
                attest(AttestDecision::Reduce, 1, None),
                &mut g,
                &p,
                None,
                now
            ),
            Err(DomainError::Invalid(_))
        ));
        assert!(matches!(
            r.attest(
                "itm_1",
                attest(AttestDecision::Keep, 1, Some(vec![scope("orders:read")])),
                &mut g,
                &p,
                None,
                now
            ),
            Err(DomainError::Invalid(_))
        ));
        r.attest(
            "itm_1",
            attest(
                AttestDecision::Reduce,
                1,
                Some(vec![scope("orders:track"), scope("orders:read")]),
            ),
            &mut g,
            &p,
            None,
            now,
        )
        .unwrap();
        assert_eq!(g.scopes, vec![scope("orders:read"), scope("orders:track")]);
        assert_eq!(g.epoch, 2);
        assert_eq!(
            r.items[0].decision.as_ref().unwrap().scopes,
            Some(vec![scope("orders:read"), scope("orders:track")])
        );
    }

    #[test]
    fn separation_of_duties_and_single_decision() {
        let now = ts("2026-11-30T10:00:00Z");
        let p = partner(vec![pid(1), pid(5)]);
        let mut g = grant(&p, now, false);
        let mut r = campaign(&g, &p, now);
        let (r0, g0) = (r.clone(), g.clone());
        // The requester owns the partner too, but never attests; a non-owner neither.
        for by in [5, 7] {
            assert!(matches!(
                r.attest(
                    "itm_1",
                    attest(AttestDecision::Keep, by, None),
                    &mut g,
                    &p,
                    None,
                    now
                ),
                Err(DomainError::Forbidden(_))
            ));
        }
        assert_eq!((&r, &g), (&r0, &g0));
        r.attest(
            "itm_1",
            attest(AttestDecision::Revoke, 1, None),
            &mut g,
            &p,
            None,
            now,
        )
        .unwrap();
        assert_eq!((g.status, g.epoch), (GrantStatus::Revoked, 2));
        assert!(matches!(
            r.attest(
                "itm_1",
                attest(AttestDecision::Keep, 1, None),
                &mut g,
                &p,
                None,
                now
            ),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn a_decision_on_an_ended_grant_is_refused() {
        let now = ts("2026-11-30T10:00:00Z");
        let p = partner(vec![pid(1)]);
        let mut g = grant(&p, now, false);
        let mut r = campaign(&g, &p, now);
        g.revoke(name("gone"), now).unwrap();
        for d in [AttestDecision::Keep, AttestDecision::Revoke] {
            assert!(matches!(
                r.attest("itm_1", attest(d, 1, None), &mut g, &p, None, now),
                Err(DomainError::Conflict(_))
            ));
        }
        assert_eq!(r.status, ReviewStatus::Open);
        assert!(!r.items[0].is_attested());
    }

    #[test]
    fn post_incident_review_of_break_glass() {
        let now = ts("2026-11-30T10:00:00Z");
        let p = partner(vec![pid(1)]);
        let g = grant(&p, now, true);
        let (start, end) = evidence_period(&g, ReviewKind::PostIncident, now);
        assert_eq!((start, end), (now, now));
        let e = UsageTally::default().evidence(&g.scopes, start, end);
        let mut r =
            Review::post_incident(ReviewId::generate(3, [0; 10]), &g, &p, e, pid(5), now).unwrap();
        assert_eq!(r.subject, ReviewSubject::Grant(g.id.clone()));
        assert_eq!(r.items[0].kind, ReviewKind::PostIncident);
        assert_eq!(
            r.items[0].due_at,
            now + SignedDuration::from_hours(POST_INCIDENT_HOURS)
        );
        // The opener cannot review their own break-glass; reduce is not a post-incident
        // decision; once the grant has ended by itself, revoke is still recorded.
        let mut g2 = g.clone();
        assert!(matches!(
            r.attest(
                "itm_1",
                attest(AttestDecision::Revoke, 5, None),
                &mut g2,
                &p,
                None,
                now
            ),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            r.attest(
                "itm_1",
                attest(AttestDecision::Reduce, 1, Some(vec![scope("orders:read")])),
                &mut g2,
                &p,
                None,
                now
            ),
            Err(DomainError::Invalid(_))
        ));
        let end = g2.expires_at;
        g2.expire(end).unwrap();
        let expired = g2.clone();
        r.attest(
            "itm_1",
            attest(AttestDecision::Revoke, 1, None),
            &mut g2,
            &p,
            None,
            end,
        )
        .unwrap();
        assert_eq!(g2, expired);
        assert_eq!(r.status, ReviewStatus::Completed);

        let not_emergency = grant(&p, now, false);
        assert!(
            Review::post_incident(
                ReviewId::generate(3, [1; 10]),
                &not_emergency,
                &p,
                evidence(&not_emergency, now),
                pid(5),
                now
            )
            .is_err()
        );
    }

    #[test]
    fn subjects_serialise_as_type_and_id() {
        let s = ReviewSubject::Partner(PartnerId::generate(1, [2; 10]));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["type"], "partner");
        assert_eq!(v["id"], s.id());
        let back: ReviewSubject = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
