//! `/v1/reviews`: recertification campaigns and their attestations. A steward starts a
//! campaign over a partner's or an API's grants; each item carries usage evidence from the
//! audit log; an owner of the partner (never the grant's requester) keeps, reduces or revokes
//! each grant. A break-glass grant opens its post-incident review when it is created
//! ([`open_post_incident`]). The rules live in `charter_core::review`; every attestation is
//! one audited unit that changes the review and the grant together.

use charter_evidence::action;
use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use charter_core::review::{
    Attest, AttestDecision, Review, ReviewItem, ReviewKind, ReviewStatus, ReviewSubject,
    UsageTally, under_review,
};
use charter_core::{Api, ApiId, Grant, Name, Partner, PartnerId, Role, Scope};
use charter_store::{Kind, ListFilter, Op, Record, Unit, Versioned};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{ListReply, Page, list_page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::state::{AppState, Shared, diff, to_value};
use crate::usage;

/// `{partner}` or `{api}`: whose grants the campaign reviews.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReview {
    #[schema(value_type = Option<String>)]
    pub partner: Option<PartnerId>,
    #[schema(value_type = Option<String>)]
    pub api: Option<ApiId>,
}

/// A reviewer's decision on one item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestBody {
    pub decision: AttestDecision,
    /// With `reduce`: the scopes to keep (a non-empty strict subset of the grant's).
    #[schema(value_type = Option<Vec<String>>)]
    pub scopes: Option<Vec<Scope>>,
    #[schema(value_type = String)]
    pub justification: Name,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
    /// Only open or only completed reviews.
    pub status: Option<ReviewStatus>,
    /// Only campaigns (`recertification`) or only `post_incident` reviews.
    pub kind: Option<ReviewKind>,
}

async fn load_ref<T: Record>(state: &AppState, id: &str, what: &str) -> ApiResult<T> {
    match state.store.get(T::KIND, id).await? {
        Some(doc) => Ok(Versioned::<T>::from_doc(&doc)?.value),
        None => Err(ApiError::Invalid(format!("{what} {id} does not exist"))),
    }
}

/// Every object of a kind under a parent (all pages).
async fn all_under<T: Record>(state: &AppState, parent: &str) -> ApiResult<Vec<T>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let filter = ListFilter {
            parent: Some(parent.to_owned()),
            status: None,
        };
        let page = state
            .store
            .list(T::KIND, &filter, after.as_deref(), 500)
            .await?;
        for doc in &page {
            out.push(Versioned::<T>::from_doc(doc)?.value);
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.clone()),
            _ => return Ok(out),
        }
    }
}

/// Every grant on an API (grants are indexed by partner, so this reads them all).
async fn grants_on_api(state: &AppState, api: &ApiId) -> ApiResult<Vec<Grant>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .list(Kind::Grant, &ListFilter::default(), after.as_deref(), 500)
            .await?;
        for doc in &page {
            let g = Versioned::<Grant>::from_doc(doc)?.value;
            if &g.api == api {
                out.push(g);
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.clone()),
            _ => return Ok(out),
        }
    }
}

/// A steward starts a recertification campaign over every active (or overdue-suspended)
/// grant of a partner or on an API.
#[utoipa::path(post, path = "/v1/reviews", tag = "reviews", request_body = StartReview,
    responses((status = 201, body = Review), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn start(
    State(state): State<Shared>,
    caller: Caller,
    Body(req): Body<StartReview>,
) -> ApiResult<(StatusCode, Json<Review>)> {
    caller.require(&[Role::Steward])?;
    let now = state.now();
    let mut partners: HashMap<PartnerId, Partner> = HashMap::new();
    let (subject, grants) = match (req.partner, req.api) {
        (Some(p), None) => {
            let partner: Partner = load_ref(&state, p.as_str(), "partner").await?;
            let grants = all_under::<Grant>(&state, p.as_str()).await?;
            partners.insert(p.clone(), partner);
            (ReviewSubject::Partner(p), grants)
        }
        (None, Some(a)) => {
            let api: Api = load_ref(&state, a.as_str(), "API").await?;
            let grants = grants_on_api(&state, &api.id).await?;
            (ReviewSubject::Api(a), grants)
        }
        _ => {
            return Err(ApiError::Invalid(
                "name either a partner or an API to review".into(),
            ));
        }
    };
    let mut items = Vec::new();
    for grant in grants.iter().filter(|g| under_review(g)) {
        if !partners.contains_key(&grant.partner) {
            let p: Partner = state.load(grant.partner.as_str(), "partner").await?.value;
            partners.insert(grant.partner.clone(), p);
        }
        let Some(partner) = partners.get(&grant.partner) else {
            continue;
        };
        let evidence = usage::evidence(
            state.store.as_ref(),
            grant,
            ReviewKind::Recertification,
            now,
        )
        .await?;
        items.push(ReviewItem::new(
            items.len() + 1,
            ReviewKind::Recertification,
            grant,
            partner,
            evidence,
            now,
        ));
    }
    let (ms, rnd) = state.id_seed();
    let review = Review::campaign(
        charter_core::ReviewId::generate(ms, rnd),
        subject,
        items,
        caller.principal.id.clone(),
        now,
    )?;
    let rec = state.record(
        caller.id(),
        action::REVIEW_START,
        review.id.as_str(),
        None,
        json!({ "after": to_value(&review),
                "grants": review.items.iter().map(|i| i.grant.as_str()).collect::<Vec<_>>() }),
    );
    state
        .write(Unit {
            ops: vec![Op::Insert(Versioned::new_doc(&review, None))],
            audit: vec![rec],
        })
        .await?;
    Ok((StatusCode::CREATED, Json(review)))
}

/// Creates a break-glass grant together with its post-incident review, in one audited unit:
/// `grant.emergency_open` (or the given action) for the grant and `review.open` for the
/// review, whose one item is due 72 h after the grant opened.
pub(crate) async fn open_post_incident(
    state: &AppState,
    grant: &Grant,
    partner: &Partner,
    actor: &str,
    action: &str,
) -> ApiResult<()> {
    let now = state.now();
    let (ms, rnd) = state.id_seed();
    let evidence = UsageTally::default().evidence(&grant.scopes, now, now);
    let review = Review::post_incident(
        charter_core::ReviewId::generate(ms, rnd),
        grant,
        partner,
        evidence,
        grant.requested_by.clone(),
        now,
    )?;
    let grant_rec = state.record(
        actor,
        action,
        grant.id.as_str(),
        None,
        json!({ "after": to_value(grant), "review": review.id }),
    );
    let review_rec = state.record(
        actor,
        action::REVIEW_OPEN,
        review.id.as_str(),
        Some("break-glass access needs a post-incident review".into()),
        json!({ "after": to_value(&review), "grant": grant.id,
                "incident": grant.emergency.as_ref().map(|e| e.incident.as_str()) }),
    );
    state
        .write(Unit {
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
struct Readers {
    all: bool,
    approver: bool,
    api_owner: bool,
    me: charter_core::PrincipalId,
    partners: HashMap<String, bool>,
    apis: HashMap<String, bool>,
}

impl Readers {
    fn of(caller: &Caller) -> ApiResult<Self> {
        caller.require(&[Role::Auditor, Role::Steward, Role::ApiOwner, Role::Approver])?;
        Ok(Self {
            all: caller.reads_all(),
            approver: caller.is(Role::Approver),
            api_owner: caller.is(Role::ApiOwner),
            me: caller.principal.id.clone(),
            partners: HashMap::new(),
            apis: HashMap::new(),
        })
    }

    async fn owns_partner(&mut self, state: &AppState, id: &PartnerId) -> ApiResult<bool> {
        if let Some(v) = self.partners.get(id.as_str()) {
            return Ok(*v);
        }
        let owns = match state.store.get(Kind::Partner, id.as_str()).await? {
            Some(doc) => Versioned::<Partner>::from_doc(&doc)?
                .value
                .owners
                .contains(&self.me),
            None => false,
        };
        self.partners.insert(id.to_string(), owns);
        Ok(owns)
    }

    async fn owns_api(&mut self, state: &AppState, id: &ApiId) -> ApiResult<bool> {
        if let Some(v) = self.apis.get(id.as_str()) {
            return Ok(*v);
        }
        let owns = match state.store.get(Kind::Api, id.as_str()).await? {
            Some(doc) => Versioned::<Api>::from_doc(&doc)?.value.owner == self.me,
            None => false,
        };
        self.apis.insert(id.to_string(), owns);
        Ok(owns)
    }

    async fn sees(&mut self, state: &AppState, review: &Review) -> ApiResult<bool> {
        if self.all {
            return Ok(true);
        }
        for item in &review.items {
            if self.approver && self.owns_partner(state, &item.partner).await? {
                return Ok(true);
            }
            if self.api_owner && self.owns_api(state, &item.api).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", params(ReviewQuery),
    responses((status = 200, body = ListReply<Review>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<ReviewQuery>,
) -> ApiResult<Json<ListReply<Review>>> {
    let mut readers = Readers::of(&caller)?;
    let filter = ListFilter {
        parent: None,
        status: q.status.map(|s| s.as_str().to_owned()),
    };
    let mut reply = list_page::<Review>(
        &state,
        filter,
        Page {
            limit: q.limit,
            after: q.after,
        },
        |r| q.kind.is_none_or(|k| r.kind == k),
    )
    .await?;
    let mut kept = Vec::with_capacity(reply.items.len());
    for r in reply.items {
        if readers.sees(&state, &r).await? {
            kept.push(r);
        }
    }
    reply.items = kept;
    Ok(Json(reply))
}

/// A review; items still awaiting their decision show usage evidence as of now, decided
/// items the evidence their reviewer saw.
#[utoipa::path(get, path = "/v1/reviews/{id}", tag = "reviews",
    responses((status = 200, body = Review), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Review>> {
    let mut readers = Readers::of(&caller)?;
    let mut review = state.load::<Review>(&id, "review").await?.value;
    if !readers.sees(&state, &review).await? {
        return Err(ApiError::not_found("review"));
    }
    let now = state.now();
    for item in review.items.iter_mut().filter(|i| !i.is_attested()) {
        if let Some(doc) = state.store.get(Kind::Grant, item.grant.as_str()).await? {
            let grant = Versioned::<Grant>::from_doc(&doc)?.value;
            item.evidence = usage::evidence(state.store.as_ref(), &grant, item.kind, now).await?;
        }
    }
    Ok(Json(review))
}

/// An owner of the grant's partner — never the grant's requester, admins included — keeps,
/// reduces or revokes the grant of one item. One audited unit changes the review and the
/// grant; the gateway sees the new grant (scopes, epoch, state) at once.
#[utoipa::path(post, path = "/v1/reviews/{id}/items/{item}/attest", tag = "reviews",
    request_body = AttestBody,
    responses((status = 200, body = Review), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn attest(
    State(state): State<Shared>,
    caller: Caller,
    Path((id, item_id)): Path<(String, String)>,
    Body(req): Body<AttestBody>,
) -> ApiResult<Json<Review>> {
    caller.require(&[Role::Approver])?;
    let old_review = state.load::<Review>(&id, "review").await?;
    let Some(item) = old_review.value.item(&item_id) else {
        return Err(ApiError::not_found("review item"));
    };
    let kind = item.kind;
    let old_grant = state.load::<Grant>(item.grant.as_str(), "grant").await?;
    let partner = state
        .load::<Partner>(old_grant.value.partner.as_str(), "partner")
        .await?
        .value;
    let now = state.now();
    let evidence = usage::evidence(state.store.as_ref(), &old_grant.value, kind, now).await?;
    let mut review = old_review.value.clone();
    let mut grant = old_grant.value.clone();
    review.attest(
        &item_id,
        Attest {
            decision: req.decision,
            scopes: req.scopes,
            justification: req.justification.clone(),
            by: caller.principal.id.clone(),
        },
        &mut grant,
        &partner,
        Some(evidence),
        now,
    )?;
    let decided = review
        .item(&item_id)
        .and_then(|i| i.decision.clone())
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("attested item has no decision")))?;
    let mut ops = vec![Op::Update(old_review.next_doc(&review))];
    if grant != old_grant.value {
        ops.push(Op::Update(old_grant.next_doc(&grant)));
    }
    let rec = state.record(
        caller.id(),
        action::REVIEW_ATTEST,
        grant.id.as_str(),
        Some(req.justification.to_string()),
        json!({
            "review": review.id,
            "item": item_id,
            "kind": kind,
            "grant": grant.id,
            "partner": grant.partner,
            "decision": decided.decision.as_str(),
            "scopes": decided.scopes,
            "justification": req.justification.as_str(),
            "evidence": review.item(&item_id).map(|i| to_value(&i.evidence)),
            "changed": diff(&to_value(&old_grant.value), &to_value(&grant)),
            "after": to_value(&grant),
            "review_status": review.status.as_str(),
        }),
    );
    state
        .write(Unit {
            ops,
            audit: vec![rec],
        })
        .await?;
    Ok(Json(review))
}
