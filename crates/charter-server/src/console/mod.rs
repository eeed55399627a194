//! The console at `/console`: server-rendered pages for the people who approve, review and
//! audit partner access. It is an edge like the admin API — parse, authorise, call a service,
//! render — and never holds a copy of a workflow: approvals, lifecycle calls, attestations,
//! break-glass and offboarding go through `services`, with the signed-in principal as actor,
//! under the same role rules as the API.
//!
//! Security: sign-in takes a principal's token once (form field `token`) and answers a
//! session cookie (`session.rs`); every form carries the session's CSRF token in a hidden
//! `csrf` field; every page is sent with a CSP that allows no script at all, `frame-ancestors
//! 'none'` and `Referrer-Policy: no-referrer`. Failed sign-ins are audited and counted like
//! failed bearer tokens.

pub mod session;
mod views;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use charter_core::grant::ApprovalInput;
use charter_core::model::ApprovalDecision;
use charter_core::{Name, Partner, Principal, Role};
use charter_evidence::action;
use serde_json::json;

use crate::auth;
use crate::error::ApiError;
use crate::services::grants::{self, Lifecycle, Visibility};
use crate::state::{AppState, Shared};
use session::{COOKIE, PRE_COOKIE, Session, Sessions, cookie_value, same_secret, set_cookie};

/// What the console keeps beside the shared state.
pub struct Console {
    pub sessions: Sessions,
    /// Cookies carry `Secure` (the deployment is served over HTTPS).
    pub secure: bool,
}

/// The console's routes, mounted on the control plane.
pub fn router(secure: bool) -> Router<Shared> {
    let console = Arc::new(Console {
        sessions: Sessions::default(),
        secure,
    });
    Router::new()
        .route("/console", get(views::home))
        .route("/console/sign-in", get(sign_in_form).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/grants/{id}", get(views::grant))
        .route("/console/grants/{id}/evidence", get(views::grant_evidence))
        .route("/console/grants/{id}/{verb}", post(grant_action))
        .route("/console/partners/{id}", get(views::partner))
        .route("/console/partners/{id}/offboard", post(offboard))
        .route("/console/partners/{id}/breakglass", post(breakglass))
        .route("/console/reviews", get(views::reviews))
        .route("/console/reviews/{id}/items/{item}/attest", post(attest))
        .route("/console/findings", get(views::findings))
        .route("/console/audit", get(views::audit))
        .route("/console/compliance", get(views::compliance))
        .layer(Extension(console))
}

/// A console failure: a sign-in is needed, or an error shown as a page with its status.
pub enum ConsoleError {
    SignIn,
    Api(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<charter_core::DomainError> for ConsoleError {
    fn from(e: charter_core::DomainError) -> Self {
        Self::Api(e.into())
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/console/sign-in").into_response(),
            Self::Api(e) => views::error_page(e),
        }
    }
}

/// The signed-in person behind a console request.
pub struct Viewer {
    pub principal: Principal,
    pub session: Session,
    pub console: Arc<Console>,
    /// The session cookie's value (what sign-out ends).
    cookie: String,
}

impl Viewer {
    pub fn is(&self, role: Role) -> bool {
        self.principal.has_role(role)
    }

    /// Admins, or a holder of one of `roles`.
    pub fn may(&self, roles: &[Role]) -> bool {
        self.is(Role::Admin) || roles.iter().any(|r| self.is(*r))
    }

    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.may(roles) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs another role".into()))
        }
    }

    /// Checks the form's CSRF token against the session's.
    fn check_csrf(&self, form: &Form) -> Result<(), ApiError> {
        match form.one("csrf") {
            Some(t) if same_secret(t, &self.session.csrf) => Ok(()),
            _ => Err(ApiError::Forbidden(
                "the form's CSRF token is missing or wrong; reload the page and try again".into(),
            )),
        }
    }
}

fn console_of(parts: &Parts) -> Result<Arc<Console>, ApiError> {
    parts
        .extensions
        .get::<Arc<Console>>()
        .cloned()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("console state missing")))
}

impl FromRequestParts<Shared> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ConsoleError> {
        let console = console_of(parts)?;
        let Some(cookie) = cookies(&parts.headers).and_then(|c| cookie_value(c, COOKIE)) else {
            return Err(ConsoleError::SignIn);
        };
        let now = state.now();
        let Ok(session) = console.sessions.touch(cookie, now) else {
            return Err(ConsoleError::SignIn);
        };
        // The session lives only while its token is the principal's current one and the
        // principal may act: rotation or disabling ends it at once.
        let principal = match auth::principal_by_token_hash(state, &session.token_hash).await? {
            Some(p) if p.id.as_str() == session.principal && auth::unusable(&p, now).is_none() => p,
            _ => {
                console.sessions.end(cookie);
                return Err(ConsoleError::SignIn);
            }
        };
        Ok(Viewer {
            principal,
            session,
            console,
            cookie: cookie.to_owned(),
        })
    }
}

/// A form posted by a signed-in person, its CSRF token checked: the one way a console
/// action reads its input.
pub struct Posted {
    pub viewer: Viewer,
    pub form: Form,
}

impl FromRequest<Shared> for Posted {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, ConsoleError> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let body = axum::body::to_bytes(body, crate::MAX_BODY)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        let form = Form::parse(&parts.headers, &body)?;
        viewer.check_csrf(&form)?;
        Ok(Self { viewer, form })
    }
}

fn cookies(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

/// A posted form (`application/x-www-form-urlencoded`), fields in order, repeats kept.
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, ApiError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return Err(ApiError::UnsupportedMediaType(
                "console forms are application/x-www-form-urlencoded".into(),
            ));
        }
        serde_urlencoded::from_bytes(body)
            .map(Self)
            .map_err(|e| ApiError::Malformed(format!("form: {e}")))
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
            .collect()
    }

    /// A required text field, parsed as a [`Name`] (trimmed, bounded, no control characters).
    fn name(&self, field: &str) -> Result<Name, ApiError> {
        let v = self.one(field).map(str::trim).unwrap_or("");
        if v.is_empty() {
            return Err(ApiError::Invalid(format!("{field} is required")));
        }
        Name::parse(v).map_err(|e| ApiError::Invalid(format!("{field}: {e}")))
    }

    fn optional_name(&self, field: &str) -> Result<Option<Name>, ApiError> {
        match self.one(field).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => Name::parse(v)
                .map(Some)
                .map_err(|e| ApiError::Invalid(format!("{field}: {e}"))),
        }
    }
}

/// A response that sends the browser on with `303 See Other`.
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `GET /console/sign-in`: the form, with a fresh sign-in CSRF token in a cookie and field.
async fn sign_in_form(Extension(console): Extension<Arc<Console>>) -> ConsoleResult<Response> {
    let csrf = session::random_token();
    let mut resp = views::respond(&views::SignInPage {
        csrf: csrf.clone(),
        message: None,
    })?;
    set_header_cookie(
        &mut resp,
        &set_cookie(PRE_COOKIE, &csrf, console.secure, None),
    );
    Ok(resp)
}

fn set_header_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `POST /console/sign-in` with `token` and `csrf`.
async fn sign_in(
    State(state): State<Shared>,
    Extension(console): Extension<Arc<Console>>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> ConsoleResult<Response> {
    let form = Form::parse(&parts.headers, &body)?;
    let expected = cookies(&parts.headers).and_then(|c| cookie_value(c, PRE_COOKIE));
    match (form.one("csrf"), expected) {
        (Some(got), Some(want)) if same_secret(got, want) => {}
        _ => {
            return Err(ApiError::Forbidden(
                "the sign-in form expired; reload the page and try again".into(),
            )
            .into());
        }
    }
    // Only failures count against the address: a correct token always signs in.
    let ip = auth::source_ip(&parts);
    let token = form.one("token").map(str::trim).unwrap_or("");
    let principal = if token.is_empty() {
        None
    } else {
        auth::principal_by_token_hash(&state, &auth::token_hash(token)).await?
    };
    let now = state.now();
    let principal = match principal {
        Some(p) => match auth::unusable(&p, now) {
            None => p,
            Some(why) => return Err(failed_sign_in(&state, ip, why).await),
        },
        None => return Err(failed_sign_in(&state, ip, "unknown token").await),
    };
    let Some((cookie, _)) =
        console
            .sessions
            .start(principal.id.as_str(), &auth::token_hash(token), now)
    else {
        return Err(
            ApiError::Unavailable("too many console sessions; try again later".into()).into(),
        );
    };
    audit_session(&state, &principal, action::CONSOLE_SIGN_IN).await?;
    let mut resp = see_other("/console");
    set_header_cookie(
        &mut resp,
        &set_cookie(COOKIE, &cookie, console.secure, None),
    );
    set_header_cookie(
        &mut resp,
        &set_cookie(PRE_COOKIE, "", console.secure, Some(0)),
    );
    Ok(resp)
}

async fn failed_sign_in(state: &AppState, ip: std::net::IpAddr, why: &str) -> ConsoleError {
    // Audited and counted like a failed bearer token (429 past the quota); the page says no
    // more than the API.
    match auth::reject(state, ip, why).await {
        ApiError::RateLimited(wait) => ConsoleError::Api(ApiError::RateLimited(wait)),
        _ => ConsoleError::Api(ApiError::Unauthorized(
            "sign-in failed: the token is unknown, expired or disabled".into(),
        )),
    }
}

async fn audit_session(state: &AppState, principal: &Principal, act: &str) -> Result<(), ApiError> {
    let rec = state.repo.record(
        principal.id.as_str(),
        act,
        principal.id.as_str(),
        None,
        json!({ "via": "console" }),
    );
    state
        .repo
        .write(charter_store::Unit {
            ops: vec![],
            audit: vec![rec],
        })
        .await?;
    Ok(())
}

/// `POST /console/sign-out`.
async fn sign_out(
    State(state): State<Shared>,
    Posted { viewer, .. }: Posted,
) -> ConsoleResult<Response> {
    viewer.console.sessions.end(&viewer.cookie);
    audit_session(&state, &viewer.principal, action::CONSOLE_SIGN_OUT).await?;
    let mut resp = see_other("/console/sign-in");
    set_header_cookie(
        &mut resp,
        &set_cookie(COOKIE, "", viewer.console.secure, Some(0)),
    );
    Ok(resp)
}

/// `POST /console/grants/{id}/{approve|reject|suspend|resume|revoke}`.
async fn grant_action(
    State(state): State<Shared>,
    Path((id, verb)): Path<(String, String)>,
    Posted { viewer, form }: Posted,
) -> ConsoleResult<Response> {
    let me = &viewer.principal.id;
    let done = match verb.as_str() {
        "approve" | "reject" => {
            viewer.require(&[Role::Approver])?;
            let input = ApprovalInput {
                decision: if verb == "approve" {
                    ApprovalDecision::Approve
                } else {
                    ApprovalDecision::Reject
                },
                justification: form.name("justification")?,
                ticket: form.optional_name("ticket")?,
                data_exception: form.optional_name("data_exception")?,
            };
            grants::decide(&state.repo, me, &id, input).await?;
            if verb == "approve" {
                "approved"
            } else {
                "rejected"
            }
        }
        "suspend" | "resume" | "revoke" => {
            viewer.require(&[Role::Steward])?;
            let which = match verb.as_str() {
                "suspend" => Lifecycle::Suspend,
                "resume" => Lifecycle::Resume,
                _ => Lifecycle::Revoke,
            };
            grants::lifecycle(&state.repo, me, &id, form.name("reason")?, which).await?;
            match which {
                Lifecycle::Suspend => "suspended",
                Lifecycle::Resume => "resumed",
                Lifecycle::Revoke => "revoked",
            }
        }
        _ => return Err(ApiError::NotFound("no such action".into()).into()),
    };
    Ok(see_other(&format!(
        "/console/grants/{}?done={done}",
        views::path_id(&id)?
    )))
}

/// `POST /console/partners/{id}/offboard` with `reason` and `confirm` (the partner's name,
/// typed).
async fn offboard(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted,
) -> ConsoleResult<Response> {
    viewer.require(&[Role::Steward])?;
    let partner = state.repo.load::<Partner>(&id, "partner").await?.value;
    if form.one("confirm").map(str::trim) != Some(partner.name.as_str()) {
        return Err(ApiError::Invalid(
            "type the partner's name exactly to confirm the offboarding".into(),
        )
        .into());
    }
    let reason = form.name("reason")?;
    let policy = crate::services::offboarding::Policy {
        require_gateway: state.settings.offboarding_require_gateway,
    };
    crate::services::offboarding::offboard(
        &state.tokens(),
        policy,
        auth::probe_token(),
        &viewer.principal.id,
        &id,
        reason,
    )
    .await?;
    Ok(see_other(&format!(
        "/console/partners/{}?done=offboarded#offboarding",
        views::path_id(&id)?
    )))
}

/// `POST /console/partners/{id}/breakglass`: a steward opens emergency access for an
/// incident (`api`, `scope`…, `incident`, `hours` ≤ 4).
async fn breakglass(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted,
) -> ConsoleResult<Response> {
    viewer.require(&[Role::Steward])?;
    let req = views::breakglass_request(&state, &id, &form).await?;
    let grant = grants::request(&state.repo, &viewer.principal.id, req).await?;
    Ok(see_other(&format!(
        "/console/grants/{}?done=opened",
        grant.id.as_str()
    )))
}

/// `POST /console/reviews/{id}/items/{item}/attest` with `decision` (keep, reduce, revoke),
/// `justification` and, for reduce, the `scope`s to keep.
async fn attest(
    State(state): State<Shared>,
    Path((id, item)): Path<(String, String)>,
    Posted { viewer, form }: Posted,
) -> ConsoleResult<Response> {
    viewer.require(&[Role::Approver])?;
    let input = views::attestation(&form, viewer.principal.id.clone())?;
    crate::services::reviews::attest(&state.repo, &id, &item, input).await?;
    Ok(see_other("/console/reviews?done=attested"))
}

/// Query parameters of pages that show what was just done.
pub type Done = Query<HashMap<String, String>>;

/// Grants the viewer may see, with the same rule as `GET /v1/grants/{id}`.
pub async fn visible_grant(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
) -> Result<charter_core::Grant, ApiError> {
    Visibility::of(&viewer.principal)?
        .load(&state.repo, id)
        .await
}
