//! Partners: a steward registers one and changes its processing regions; only an admin
//! changes its owners. A grant's approvers are the owners when it was requested
//! (`Grant::approvers`), so an owner change never reaches a request already made, and the
//! principal who made the change is recorded on the partner (`owner_changes`) so that it can
//! approve nothing requested before it (`Grant::decide`).

use charter_core::{
    OwnersChange, Partner, PartnerId, PartnerKind, PartnerStatus, Principal, PrincipalId, Region,
    Role,
};
use charter_evidence::action;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::repo::Repo;

/// What a partner is created with.
pub struct NewPartner {
    pub name: charter_core::Name,
    pub kind: PartnerKind,
    pub regions: Vec<Region>,
    pub owners: Vec<PrincipalId>,
}

/// A change to a partner; `None` leaves the field as it is.
pub struct PartnerChange {
    pub regions: Option<Vec<Region>>,
    pub owners: Option<Vec<PrincipalId>>,
}

fn check_regions(mut regions: Vec<Region>) -> ApiResult<Vec<Region>> {
    regions.sort();
    regions.dedup();
    if regions.is_empty() {
        return Err(ApiError::Invalid(
            "regions must name at least one region".into(),
        ));
    }
    Ok(regions)
}

/// Owners must be enabled principals with role `approver`; each counts once.
async fn check_owners(repo: &Repo, owners: Vec<PrincipalId>) -> ApiResult<Vec<PrincipalId>> {
    let mut out: Vec<PrincipalId> = Vec::with_capacity(owners.len());
    for owner in owners {
        if out.contains(&owner) {
            continue;
        }
        let p: Principal = repo.referenced(owner.as_str(), "owner").await?;
        if p.disabled || !p.has_role(Role::Approver) {
            return Err(ApiError::Invalid(format!(
                "owner {owner} is not an enabled approver"
            )));
        }
        out.push(owner);
    }
    Ok(out)
}

/// Registers a partner (the caller has been authorised as a steward).
pub async fn create(repo: &Repo, actor: &PrincipalId, req: NewPartner) -> ApiResult<Partner> {
    let regions = check_regions(req.regions)?;
    let owners = check_owners(repo, req.owners).await?;
    if req.kind == PartnerKind::SaasConnector && owners.is_empty() {
        return Err(ApiError::Invalid(
            "a SaaS connector names its accountable owner on our side: owners must not be empty"
                .into(),
        ));
    }
    let now = repo.now();
    let (ms, rnd) = repo.id_seed();
    let partner = Partner {
        id: PartnerId::generate(ms, rnd),
        name: req.name,
        kind: req.kind,
        regions,
        owners,
        status: PartnerStatus::Active,
        created_at: now,
        updated_at: now,
        owner_changes: Vec::new(),
    };
    repo.create(&partner, None, actor.as_str(), action::PARTNER_CREATE, None)
        .await?;
    Ok(partner)
}

/// Changes a partner's regions (a steward) and owners (an admin only: whoever sets the
/// owners chooses who approves). An owner change is audited with the owners before and
/// after, and recorded on the partner with who made it.
pub async fn update(
    repo: &Repo,
    actor: &Principal,
    id: &str,
    change: PartnerChange,
) -> ApiResult<Partner> {
    if change.owners.is_some() && !actor.has_role(Role::Admin) {
        return Err(ApiError::Forbidden(
            "only an admin changes a partner's owners (they approve its grants)".into(),
        ));
    }
    let old = repo.load::<Partner>(id, "partner").await?;
    if old.value.status == PartnerStatus::Offboarded {
        return Err(ApiError::Conflict("the partner is offboarded".into()));
    }
    let now = repo.now();
    let mut partner = old.value.clone();
    if let Some(regions) = change.regions {
        partner.regions = check_regions(regions)?;
    }
    let mut extra = None;
    if let Some(owners) = change.owners {
        let owners = check_owners(repo, owners).await?;
        if partner.kind == PartnerKind::SaasConnector && owners.is_empty() {
            return Err(ApiError::Invalid(
                "a SaaS connector keeps an accountable owner: owners must not be empty".into(),
            ));
        }
        if owners != partner.owners {
            extra = Some(json!({
                "owners_change": { "before": &partner.owners, "after": &owners },
            }));
            partner.owners = owners;
            partner.owner_changes.push(OwnersChange {
                by: actor.id.clone(),
                at: now,
            });
        }
    }
    partner.updated_at = now;
    repo.update(
        &old,
        &partner,
        actor.id.as_str(),
        action::PARTNER_UPDATE,
        None,
        extra,
    )
    .await?;
    Ok(partner)
}
