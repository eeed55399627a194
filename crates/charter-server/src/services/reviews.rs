//! Reviews: recertification campaigns and their attestations, and the post-incident review
//! every break-glass grant opens. A campaign covers every active (or overdue-suspended) grant
//! of a partner or on an API, each item with usage evidence; an owner of the partner (never
//! the grant's requester) keeps, reduces or revokes each grant. The rules live in
//! `charter_core::review`; every attestation is one audited unit that changes the review and
//! the grant together.

use std::collections::HashMap;

use charter_core::review::{
    Attest, Review, ReviewItem, ReviewKind, ReviewSubject, UsageTally, under_review,
};
use charter_core::{Api, ApiId, Grant, Partner, PartnerId, Principal, PrincipalId, Role};
use charter_evidence::action;
use charter_store::{Kind, ListFilter, Op, Unit, Versioned};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::repo::{Repo, diff, to_value};
use crate::usage;

/// Every grant a campaign over `subject` considers (all pages).
async fn grants_of(repo: &Repo, subject: &ReviewSubject) -> ApiResult<Vec<Grant>> {
    Ok(match subject {
        ReviewSubject::Partner(p) => repo
            .list_all::<Grant>(ListFilter {
                parent: Some(p.to_string()),
                status: None,
            })
            .await?
            .into_iter()
            .map(|g| g.value)
            .collect(),
        // Grants are indexed by partner, so a campaign over an API reads them all.
        ReviewSubject::Api(a) => repo
            .list_all::<Grant>(ListFilter::default())
            .await?
            .into_iter()
            .map(|g| g.value)
            .filter(|g| &g.api == a)
            .collect(),
        ReviewSubject::Grant(g) => vec![repo.load::<Grant>(g.as_str(), "grant").await?.value],
    })
}

/// What a campaign reviews: one partner's grants or one API's.
pub fn subject(partner: Option<PartnerId>, api: Option<ApiId>) -> ApiResult<ReviewSubject> {
    match (partner, api) {
        (Some(p), None) => Ok(ReviewSubject::Partner(p)),
        (None, Some(a)) => Ok(ReviewSubject::Api(a)),
        _ => Err(ApiError::Invalid(
            "name either a partner or an API to review".into(),
        )),
    }
}

/// Starts a recertification campaign over every grant of `subject` that is under review.
pub async fn start(repo: &Repo, actor: &PrincipalId, subject: ReviewSubject) -> ApiResult<Review> {
    let now = repo.now();
    match &subject {
        ReviewSubject::Partner(p) => {
            repo.referenced::<Partner>(p.as_str(), "partner").await?;
        }
        ReviewSubject::Api(a) => {
            repo.referenced::<Api>(a.as_str(), "API").await?;
        }
        ReviewSubject::Grant(g) => {
            repo.referenced::<Grant>(g.as_str(), "grant").await?;
        }
    }
    let grants = grants_of(repo, &subject).await?;
    let mut partners: HashMap<PartnerId, Partner> = HashMap::new();
    let mut items = Vec::new();
    for grant in grants.iter().filter(|g| under_review(g)) {
        if !partners.contains_key(&grant.partner) {
            let p: Partner = repo.load(grant.partner.as_str(), "partner").await?.value;
            partners.insert(grant.partner.clone(), p);
        }
        let Some(partner) = partners.get(&grant.partner) else {
            continue;
        };
        let evidence =
            usage::evidence(repo.store.as_ref(), grant, ReviewKind::Recertification, now).await?;
        items.push(ReviewItem::new(
            items.len() + 1,
            ReviewKind::Recertification,
            grant,
            partner,
            evidence,
            now,
        ));
    }
    let (ms, rnd) = repo.id_seed();
    let review = Review::campaign(
        charter_core::ReviewId::generate(ms, rnd),
        subject,
        items,
        actor.clone(),
        now,
    )?;
    let rec = repo.record(
        actor.as_str(),
        action::REVIEW_START,
        review.id.as_str(),
        None,
        json!({ "after": to_value(&review),
                "grants": review.items.iter().map(|i| i.grant.as_str()).collect::<Vec<_>>() }),
    );
    repo.write(Unit {
        ops: vec![Op::Insert(Versioned::new_doc(&review, None))],
        audit: vec![rec],
    })
    .await?;
    Ok(review)
}

/// Creates a break-glass grant together with its post-incident review, in one audited unit:
/// `grant.emergency_open` (or the given action) for the grant and `review.open` for the
/// review, whose one item is due 72 h after the grant opened.
pub async fn open_post_incident(
    repo: &Repo,
    grant: &Grant,
    partner: &Partner,
    actor: &str,
    action: &str,
) -> ApiResult<()> {
    let now = repo.now();
    let (ms, rnd) = repo.id_seed();
    let evidence = UsageTally::default().evidence(&grant.scopes, now, now);
    let review = Review::post_incident(
        charter_core::ReviewId::generate(ms, rnd),
        grant,
        partner,
        evidence,
        grant.requested_by.clone(),
        now,
    )?;
    let grant_rec = repo.record(
        actor,
        action,
        grant.id.as_str(),
        None,
        json!({ "after": to_value(grant), "review": review.id }),
    );
    let review_rec = repo.record(
        actor,
        action::REVIEW_OPEN,
        review.id.as_str(),
        Some("break-glass access needs a post-incident review".into()),
        json!({ "after": to_value(&review), "grant": grant.id,
                "incident": grant.emergency.as_ref().map(|e| e.incident.as_str()) }),
    );
    repo.write(Unit {
        ops: vec![
            Op::Insert(Versioned::new_doc(grant, None)),
            Op::Insert(Versioned::new_doc(&review, None)),
        ],
        audit: vec![grant_rec, review_rec],
    })
    .await?;
    Ok(())
}

/// Who may read a review: readers of everything; an approver who owns a partner, or an API
/// owner who owns an API, that one of its items concerns.
pub struct Readers {
    all: bool,
    approver: bool,
    api_owner: bool,
    me: charter_core::PrincipalId,
    partners: HashMap<String, bool>,
    apis: HashMap<String, bool>,
}

impl Readers {
    pub fn of(principal: &Principal) -> ApiResult<Self> {
        Ok(Self {
            all: super::grants::reads_all(principal)?,
            approver: principal.has_role(Role::Approver),
            api_owner: principal.has_role(Role::ApiOwner),
            me: principal.id.clone(),
            partners: HashMap::new(),
            apis: HashMap::new(),
        })
    }

    async fn owns_partner(&mut self, repo: &Repo, id: &PartnerId) -> ApiResult<bool> {
        if let Some(v) = self.partners.get(id.as_str()) {
            return Ok(*v);
        }
        let owns = match repo.store.get(Kind::Partner, id.as_str()).await? {
            Some(doc) => Versioned::<Partner>::from_doc(&doc)?
                .value
                .owners
                .contains(&self.me),
            None => false,
        };
        self.partners.insert(id.to_string(), owns);
        Ok(owns)
    }

    async fn owns_api(&mut self, repo: &Repo, id: &ApiId) -> ApiResult<bool> {
        if let Some(v) = self.apis.get(id.as_str()) {
            return Ok(*v);
        }
        let owns = match repo.store.get(Kind::Api, id.as_str()).await? {
            Some(doc) => Versioned::<Api>::from_doc(&doc)?.value.owner == self.me,
            None => false,
        };
        self.apis.insert(id.to_string(), owns);
        Ok(owns)
    }

    pub async fn sees(&mut self, repo: &Repo, review: &Review) -> ApiResult<bool> {
        if self.all {
            return Ok(true);
        }
        for item in &review.items {
            if self.approver && self.owns_partner(repo, &item.partner).await? {
                return Ok(true);
            }
            if self.api_owner && self.owns_api(repo, &item.api).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A review as `readers` may see it; items still awaiting their decision show usage evidence
/// as of now, decided items the evidence their reviewer saw.
pub async fn get(repo: &Repo, readers: &mut Readers, id: &str) -> ApiResult<Review> {
    let mut review = repo.load::<Review>(id, "review").await?.value;
    if !readers.sees(repo, &review).await? {
        return Err(ApiError::not_found("review"));
    }
    let now = repo.now();
    for item in review.items.iter_mut().filter(|i| !i.is_attested()) {
        if let Some(doc) = repo.store.get(Kind::Grant, item.grant.as_str()).await? {
            let grant = Versioned::<Grant>::from_doc(&doc)?.value;
            item.evidence = usage::evidence(repo.store.as_ref(), &grant, item.kind, now).await?;
        }
    }
    Ok(review)
}

/// An owner of the grant's partner — never the grant's requester, admins included — keeps,
/// reduces or revokes the grant of one item. One audited unit changes the review and the
/// grant; the gateway sees the new grant (scopes, epoch, state) at once.
pub async fn attest(repo: &Repo, id: &str, item_id: &str, attest: Attest) -> ApiResult<Review> {
    let old_review = repo.load::<Review>(id, "review").await?;
    let Some(item) = old_review.value.item(item_id) else {
        return Err(ApiError::not_found("review item"));
    };
    let kind = item.kind;
    let old_grant = repo.load::<Grant>(item.grant.as_str(), "grant").await?;
    let partner = repo
        .load::<Partner>(old_grant.value.partner.as_str(), "partner")
        .await?
        .value;
    let now = repo.now();
    let evidence = usage::evidence(repo.store.as_ref(), &old_grant.value, kind, now).await?;
    let mut review = old_review.value.clone();
    let mut grant = old_grant.value.clone();
    let actor = attest.by.clone();
    let justification = attest.justification.clone();
    review.attest(item_id, attest, &mut grant, &partner, Some(evidence), now)?;
    let decided = review
        .item(item_id)
        .and_then(|i| i.decision.clone())
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("attested item has no decision")))?;
    let mut ops = vec![Op::Update(old_review.next_doc(&review))];
    if grant != old_grant.value {
        ops.push(Op::Update(old_grant.next_doc(&grant)));
    }
    let rec = repo.record(
        actor.as_str(),
        action::REVIEW_ATTEST,
        grant.id.as_str(),
        Some(justification.to_string()),
        json!({
            "review": review.id,
            "item": item_id,
            "kind": kind,
            "grant": grant.id,
            "partner": grant.partner,
            "decision": decided.decision.as_str(),
            "scopes": decided.scopes,
            "justification": justification.as_str(),
            "evidence": review.item(item_id).map(|i| to_value(&i.evidence)),
            "changed": diff(&to_value(&old_grant.value), &to_value(&grant)),
            "after": to_value(&grant),
            "review_status": review.status.as_str(),
        }),
    );
    repo.write(Unit {
        ops,
        audit: vec![rec],
    })
    .await?;
    Ok(review)
}
