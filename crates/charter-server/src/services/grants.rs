//! Grants: a steward requests one, owners of the partner approve or reject it, a steward
//! suspends, resumes or revokes it. The rules live in `charter_core::grant`; this service
//! loads what they need, applies them and writes what they decide with its audit record.
//! The admin API and the console call these functions; neither holds a copy of the workflow.

use charter_core::grant::{ApprovalInput, GrantRequest};
use charter_core::{
    Api, ApprovalDecision, Grant, GrantId, Name, Partner, Principal, PrincipalId, Role,
};
use charter_evidence::action;
use charter_store::{Kind, Versioned};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::repo::Repo;

/// Records a grant request by `requester`. A break-glass request is active at once and opens
/// its mandatory post-incident review in the same unit.
pub async fn request(repo: &Repo, requester: &PrincipalId, req: GrantRequest) -> ApiResult<Grant> {
    let api: Api = repo.referenced(req.api.as_str(), "API").await?;
    let partner: Partner = repo.referenced(req.partner.as_str(), "partner").await?;
    let (ms, rnd) = repo.id_seed();
    let grant = req.into_grant(
        GrantId::generate(ms, rnd),
        &api,
        &partner,
        requester.clone(),
        repo.now(),
    )?;
    if grant.emergency.is_some() {
        super::reviews::open_post_incident(
            repo,
            &grant,
            &partner,
            requester.as_str(),
            action::GRANT_EMERGENCY_OPEN,
        )
        .await?;
    } else {
        repo.create(
            &grant,
            None,
            requester.as_str(),
            action::GRANT_REQUEST,
            None,
        )
        .await?;
    }
    Ok(grant)
}

/// An owner of the grant's partner approves or rejects it (never its requester; the rule is
/// `Grant::decide`'s).
pub async fn decide(
    repo: &Repo,
    approver: &PrincipalId,
    id: &str,
    input: ApprovalInput,
) -> ApiResult<Grant> {
    let old = repo.load::<Grant>(id, "grant").await?;
    let partner = repo
        .load::<Partner>(old.value.partner.as_str(), "partner")
        .await?
        .value;
    let mut grant = old.value.clone();
    let action = match input.decision {
        ApprovalDecision::Approve => action::GRANT_APPROVE,
        ApprovalDecision::Reject => action::GRANT_REJECT,
    };
    let reason = input.justification.to_string();
    let extra = json!({
        "justification": input.justification.as_str(),
        "ticket": input.ticket.as_ref().map(Name::as_str),
        "data_exception": input.data_exception.as_ref().map(Name::as_str),
    });
    grant.decide(&partner, approver, input, repo.now())?;
    repo.update(
        &old,
        &grant,
        approver.as_str(),
        action,
        Some(reason),
        Some(extra),
    )
    .await?;
    Ok(grant)
}

/// A steward's lifecycle call on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Resume,
    Revoke,
}

impl Lifecycle {
    pub fn verb(self) -> &'static str {
        match self {
            Lifecycle::Suspend => "suspend",
            Lifecycle::Resume => "resume",
            Lifecycle::Revoke => "revoke",
        }
    }
}

pub async fn lifecycle(
    repo: &Repo,
    actor: &PrincipalId,
    id: &str,
    reason: Name,
    which: Lifecycle,
) -> ApiResult<Grant> {
    let old = repo.load::<Grant>(id, "grant").await?;
    let mut grant = old.value.clone();
    let now = repo.now();
    let action = match which {
        Lifecycle::Suspend => {
            grant.suspend(reason.clone())?;
            action::GRANT_SUSPEND
        }
        Lifecycle::Resume => {
            // Contract (Reviews): overdue-suspended grants come back only through a review.
            if charter_core::review::is_overdue_suspended(&grant) {
                return Err(ApiError::Conflict(
                    "the grant is suspended for an overdue recertification: attest keep or reduce in a review".into(),
                ));
            }
            grant.resume(reason.clone(), now)?;
            action::GRANT_RESUME
        }
        Lifecycle::Revoke => {
            grant.revoke(reason.clone(), now)?;
            action::GRANT_REVOKE
        }
    };
    repo.update(
        &old,
        &grant,
        actor.as_str(),
        action,
        Some(reason.to_string()),
        None,
    )
    .await?;
    Ok(grant)
}

/// Whether `principal` reads everything (admins, auditors, stewards); refused (403) unless it
/// holds some reading role (an API owner or an approver reads what concerns it).
pub fn reads_all(principal: &Principal) -> ApiResult<bool> {
    let has = |r| principal.has_role(r);
    if has(Role::Admin) || has(Role::Auditor) || has(Role::Steward) {
        Ok(true)
    } else if has(Role::ApiOwner) || has(Role::Approver) {
        Ok(false)
    } else {
        Err(ApiError::Forbidden("this call needs another role".into()))
    }
}

/// Who may see a grant: readers of everything, the owner of its API, an owner of its partner.
pub struct Visibility {
    all: bool,
    api_owner: bool,
    approver: bool,
    me: PrincipalId,
}

impl Visibility {
    /// A principal's reading rights; one without a reading role is refused (403).
    pub fn of(principal: &Principal) -> ApiResult<Self> {
        Ok(Self {
            all: reads_all(principal)?,
            api_owner: principal.has_role(Role::ApiOwner),
            approver: principal.has_role(Role::Approver),
            me: principal.id.clone(),
        })
    }

    pub async fn sees(&self, repo: &Repo, grant: &Grant) -> ApiResult<bool> {
        if self.all {
            return Ok(true);
        }
        // An approver of the grant (an owner when it was requested) reads it, even after the
        // partner's owners changed: it is theirs to decide.
        if self.approver && grant.approvers.contains(&self.me) {
            return Ok(true);
        }
        if self.approver
            && let Some(doc) = repo
                .store
                .get(Kind::Partner, grant.partner.as_str())
                .await?
            && Versioned::<Partner>::from_doc(&doc)?
                .value
                .owners
                .contains(&self.me)
        {
            return Ok(true);
        }
        if self.api_owner
            && let Some(doc) = repo.store.get(Kind::Api, grant.api.as_str()).await?
            && Versioned::<Api>::from_doc(&doc)?.value.owner == self.me
        {
            return Ok(true);
        }
        Ok(false)
    }

    /// The grant `id` if the caller may see it; one it may not see is 404, like one that
    /// does not exist.
    pub async fn load(&self, repo: &Repo, id: &str) -> ApiResult<Grant> {
        let grant = repo.load::<Grant>(id, "grant").await?.value;
        if !self.sees(repo, &grant).await? {
            return Err(ApiError::not_found("grant"));
        }
        Ok(grant)
    }
}
