//! Offboarding a partner: revoke everything it holds, then *prove* that removal holds at
//! every enforcement point — with what Charter can hold itself (it keeps no bearer tokens
//! or secrets): a canary token per grant minted at the grant's epoch, shown accepted before
//! revocation and refused for the revocation after it.
//!
//! Every probe is an HTTP request to a registered node's advertised URL (the registry in
//! `charter_gateway::registry`), never an in-process call: the token endpoint and
//! introspection of every live control node, and the check endpoint of every live gateway.
//! Phases: acceptance probes → start (partner `offboarding`) → revoke → removal probes →
//! verdict (`charter_core::offboarding::Offboarding::verdict`) → record.
//!
//! Rules of proof:
//! - *Accepted* before revocation: introspection answers `active: true`; a gateway answers 200,
//!   or 403 with a policy reason (token-level checks come first in the decision order, so a
//!   policy refusal shows the token itself was accepted).
//! - *Refused for the revocation* after it: introspection answers `active: false`; a gateway
//!   answers 401 with `token_revoked`, `grant_revoked`, `credential_revoked` or
//!   `partner_offboarded`; the token endpoint answers `invalid_client` described as revoked
//!   to a wrong secret. Anything else — a 403, a 5xx, no answer — is not proof.
//! - A retry cannot show acceptance again (the grants are revoked): it re-mints the canaries
//!   of earlier attempts from their recorded claims, carries their passed acceptance checks,
//!   and re-probes every removal check. A canary never shown accepted fails the offboarding.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use charter_auth::token::{AccessClaims, mint, new_jti};
use charter_core::decision::{Reason, check_grant};
use charter_core::offboarding::{Canary, Check, Coverage, Offboarding, OffboardingStatus, check};
use charter_core::{Api, Grant, Name, OffboardingId, Partner, Principal, PrincipalId, Role, Scope};
use charter_evidence::action;
use charter_gateway::proxy::Upstream;
use charter_gateway::registry::{NodeKind, NodeRecord};
use charter_store::{CredentialRecord, ListFilter, Op, Unit, Versioned};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::repo::{Repo, to_value};
use crate::services::issuance::{INTROSPECT_PATH, REVOKED_CLIENT, TOKEN_PATH, Tokens};

/// A node that has not sent a heartbeat for this long is no longer running (nodes beat
/// every 10 seconds).
pub const NODE_ALIVE_SECONDS: i64 = 60;
/// Canaries live long enough for a retry days later; they are never handed out, and once
/// the grant is revoked no enforcement point accepts them.
const CANARY_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a removal probe is repeated while the node has not yet applied the revocation
/// (its change feed delivers within the staleness bound, or it refuses everything).
const PROPAGATION: Duration = Duration::from_secs(5);
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// The most of an answer's body a probe reads.
const MAX_ANSWER: usize = 64 * 1024;
/// The `client_id` claim of every canary (no credential has it).
const CANARY_CLIENT: &str = "charter-offboarding-canary";

/// What the deployment declared about offboarding (`offboarding.require_gateway`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub require_gateway: bool,
}

/// A bearer token for a short-lived principal with role `gateway`, created by this
/// offboarding to call introspection at every control node and disabled when it ends. The
/// caller generates it (with its hash, as principal tokens are stored); only the hash is
/// written.
pub struct ProbeToken {
    pub token: String,
    pub hash: String,
}

/// A concrete request for the first operation a grant's scopes reach.
fn probe_target(api: &Api, grant: &Grant) -> Option<(String, String)> {
    let op = api
        .operations
        .iter()
        .find(|op| grant.scopes.contains(&op.scope))?;
    let path: Vec<&str> = op
        .path
        .as_str()
        .split('/')
        .map(|seg| if seg.starts_with('{') { "canary" } else { seg })
        .collect();
    Some((
        op.method.as_str().to_owned(),
        format!("/{}{}", api.name, path.join("/")),
    ))
}

/// A canary with its signed token (held in memory only) and the call a gateway is asked about.
struct Minted {
    canary: Canary,
    token: String,
    probe: Option<(String, String)>,
}

/// The live nodes, by kind.
struct Nodes {
    control: Vec<NodeRecord>,
    gateways: Vec<NodeRecord>,
}

/// One offboarding in progress.
struct Run<'a> {
    tokens: &'a Tokens<'a>,
    actor: &'a PrincipalId,
    id: OffboardingId,
    reason: Name,
    /// Added to every record this offboarding writes.
    note: Value,
    http: Upstream,
}

impl Run<'_> {
    fn repo(&self) -> &Repo {
        self.tokens.repo
    }

    fn check(&self, name: &str, target: String, (passed, detail): (bool, String)) -> Check {
        Check {
            name: name.into(),
            target,
            passed,
            at: self.repo().now(),
            detail,
        }
    }

    /// The partner goes to `offboarding` (audited).
    async fn start(&self, partner_id: &str) -> ApiResult<Partner> {
        let repo = self.repo();
        let old = repo.load::<Partner>(partner_id, "partner").await?;
        let mut partner = old.value.clone();
        partner.start_offboarding()?;
        partner.updated_at = repo.now();
        repo.update(
            &old,
            &partner,
            self.actor.as_str(),
            action::PARTNER_OFFBOARD_START,
            Some(self.reason.to_string()),
            Some(self.note.clone()),
        )
        .await?;
        Ok(partner)
    }

    /// Every registered node that sent a heartbeat recently.
    async fn live_nodes(&self) -> ApiResult<Nodes> {
        let repo = self.repo();
        let all: Vec<Versioned<NodeRecord>> = repo.list_all(ListFilter::default()).await?;
        let now = repo.now();
        let (control, gateways) = all
            .into_iter()
            .map(|n| n.value)
            .filter(|n| n.is_alive(now, NODE_ALIVE_SECONDS))
            .partition(|n| n.kind == NodeKind::Control);
        Ok(Nodes { control, gateways })
    }

    /// The principal introspection probes authenticate as (audited; disabled at the end).
    async fn create_prober(&self, probe: &ProbeToken) -> ApiResult<Principal> {
        let repo = self.repo();
        let now = repo.now();
        let (ms, rnd) = repo.id_seed();
        let principal = Principal {
            id: PrincipalId::generate(ms, rnd),
            name: Name::parse(&format!("offboarding-probe {}", self.id))?,
            roles: vec![Role::Gateway],
            created_at: now,
            token_expires_at: now + jiff::SignedDuration::from_mins(15),
            disabled: false,
        };
        repo.create(
            &principal,
            Some(probe.hash.clone()),
            self.actor.as_str(),
            action::PRINCIPAL_CREATE,
            Some(format!("introspection probes of offboarding {}", self.id)),
        )
        .await?;
        Ok(principal)
    }

    async fn disable_prober(&self, principal: &Principal) -> ApiResult<()> {
        let repo = self.repo();
        let old = repo
            .load::<Principal>(principal.id.as_str(), "principal")
            .await?;
        let mut done = old.value.clone();
        done.disabled = true;
        repo.update(
            &old,
            &done,
            self.actor.as_str(),
            action::PRINCIPAL_DISABLE,
            Some(format!("offboarding {} finished its probes", self.id)),
            Some(self.note.clone()),
        )
        .await
    }

    /// Claims for a new canary of `grant`, at its current epoch.
    fn new_canary(&self, grant: &Grant, api: &Api) -> Canary {
        let now_s = self.repo().now().as_second();
        Canary {
            grant: grant.id.to_string(),
            jti: new_jti(),
            epoch: grant.epoch,
            aud: api.audience.to_string(),
            scope: grant
                .scopes
                .iter()
                .map(Scope::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            iat: now_s,
            exp: now_s + CANARY_TTL_SECONDS,
        }
    }

    /// Signs a canary's claims with the current key (a retry signs the same claims again).
    fn sign(&self, canary: Canary) -> ApiResult<Minted> {
        let keys = self.tokens.keys.current()?;
        let claims = AccessClaims {
            iss: self.tokens.issuer.to_owned(),
            sub: format!("canary:{}", canary.grant),
            aud: canary.aud.clone(),
            client_id: CANARY_CLIENT.into(),
            scope: canary.scope.clone(),
            jti: canary.jti.clone(),
            iat: canary.iat,
            nbf: canary.iat,
            exp: canary.exp,
            grant: canary.grant.clone(),
            epoch: canary.epoch,
            cnf: None,
        };
        let token = mint(&keys.signing, &claims)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("minting a canary: {e}")))?;
        let live = &self.repo().live;
        let probe = live.grant(&canary.grant).and_then(|g| {
            let api = live.api(g.api.as_str())?;
            probe_target(&api, &g)
        });
        Ok(Minted {
            canary,
            token,
            probe,
        })
    }

    /// Revokes every grant and every credential (each an audited write); returns the ids
    /// revoked and every credential of the partner.
    async fn revoke_all(
        &self,
        grants: &[Versioned<Grant>],
    ) -> ApiResult<(Vec<String>, Vec<String>, Vec<Versioned<CredentialRecord>>)> {
        let repo = self.repo();
        let actor = self.actor.as_str();
        let reason = Some(self.reason.to_string());
        let mut revoked_grants = Vec::new();
        for g in grants {
            let mut grant = g.value.clone();
            if grant.revoke(self.reason.clone(), repo.now()).is_ok() {
                repo.update(
                    g,
                    &grant,
                    actor,
                    action::GRANT_REVOKE,
                    reason.clone(),
                    Some(self.note.clone()),
                )
                .await?;
                revoked_grants.push(grant.id.to_string());
            }
        }
        let mut credentials: Vec<Versioned<CredentialRecord>> = Vec::new();
        for g in grants {
            credentials.extend(
                repo.list_all::<CredentialRecord>(ListFilter {
                    parent: Some(g.value.id.to_string()),
                    status: None,
                })
                .await?,
            );
        }
        let mut revoked_credentials = Vec::new();
        for c in &credentials {
            let mut rec = c.value.clone();
            if rec
                .credential
                .revoke(self.reason.clone(), repo.now())
                .is_ok()
            {
                let r = repo.record(
                    actor,
                    action::CREDENTIAL_REVOKE,
                    rec.credential.id.as_str(),
                    reason.clone(),
                    json!({ "after": to_value(&rec.credential), "offboarding": self.id,
                            "grant": rec.credential.grant }),
                );
                repo.write(Unit {
                    ops: vec![Op::Update(c.next_doc(&rec))],
                    audit: vec![r],
                })
                .await?;
                revoked_credentials.push(rec.credential.id.to_string());
            }
        }
        Ok((revoked_grants, revoked_credentials, credentials))
    }

    /// Before revocation: each new canary is shown accepted by introspection at every
    /// control node and by every gateway's check endpoint.
    async fn acceptance(&self, nodes: &Nodes, minted: &[Minted], probe: &ProbeToken) -> Vec<Check> {
        let mut checks = Vec::new();
        for m in minted {
            for node in &nodes.control {
                let url = format!("{}{INTROSPECT_PATH}", node.url);
                let jti = &m.canary.jti;
                let outcome = until_passed(|| async {
                    match introspect(&self.http, &url, &probe.token, &m.token).await {
                        Ok(true) => (true, format!("canary {jti}: active")),
                        Ok(false) => (
                            false,
                            format!(
                                "canary {jti}: inactive before revocation, so its refusal would prove nothing"
                            ),
                        ),
                        Err(why) => (false, format!("canary {jti}: {why}")),
                    }
                })
                .await;
                checks.push(self.check(
                    check::INTROSPECTION_ACCEPTS,
                    format!("{} {url} {}", node.id, m.canary.jti),
                    outcome,
                ));
            }
            let Some((method, uri)) = &m.probe else {
                continue;
            };
            for gw in &nodes.gateways {
                let url = gw.check_url();
                let jti = &m.canary.jti;
                let outcome = until_passed(|| async {
                    match gateway_check(&self.http, &url, method, uri, &m.token).await {
                        Ok((200, _)) => (true, format!("canary {jti}: 200")),
                        Ok((403, Some(r))) if !r.is_token_level() => (
                            true,
                            format!(
                                "canary {jti}: 403 {r} (a policy refusal: the token itself was accepted)"
                            ),
                        ),
                        Ok((status, reason)) => (
                            false,
                            format!(
                                "canary {jti}: {status} {} — not accepted before revocation",
                                reason.map_or("", Reason::as_str)
                            ),
                        ),
                        Err(why) => (false, format!("canary {jti}: {why}")),
                    }
                })
                .await;
                checks.push(self.check(
                    check::GATEWAY_ACCEPTS,
                    format!("{} {url} {}", gw.id, m.canary.jti),
                    outcome,
                ));
            }
        }
        checks
    }

    /// After revocation: every control node's token endpoint refuses each client id as
    /// revoked, its introspection says inactive for each canary, and every gateway refuses
    /// each canary with a revocation reason.
    async fn removal(
        &self,
        nodes: &Nodes,
        credentials: &[Versioned<CredentialRecord>],
        minted: &[Minted],
        probe: &ProbeToken,
    ) -> Vec<Check> {
        let mut checks = Vec::new();
        for node in &nodes.control {
            let url = format!("{}{TOKEN_PATH}", node.url);
            for c in credentials {
                let client_id = &c.value.credential.client_id;
                let outcome = until_passed(|| token_refusal(&self.http, &url, client_id)).await;
                checks.push(self.check(
                    check::TOKEN_ENDPOINT_REFUSES,
                    format!("{} {url} {client_id}", node.id),
                    outcome,
                ));
            }
            let url = format!("{}{INTROSPECT_PATH}", node.url);
            for m in minted {
                let outcome = until_passed(|| async {
                    match introspect(&self.http, &url, &probe.token, &m.token).await {
                        Ok(false) => (true, format!("canary {}: inactive", m.canary.jti)),
                        Ok(true) => (false, format!("canary {}: still active", m.canary.jti)),
                        Err(why) => (false, format!("canary {}: {why}", m.canary.jti)),
                    }
                })
                .await;
                checks.push(self.check(
                    check::INTROSPECTION_INACTIVE,
                    format!("{} {url} {}", node.id, m.canary.jti),
                    outcome,
                ));
            }
        }
        for gw in &nodes.gateways {
            let url = gw.check_url();
            for m in minted {
                let Some((method, uri)) = &m.probe else {
                    continue;
                };
                let outcome = until_passed(|| async {
                    let jti = &m.canary.jti;
                    match gateway_check(&self.http, &url, method, uri, &m.token).await {
                        Ok((401, Some(r))) if r.is_revocation() => {
                            (true, format!("canary {jti}: 401 {r}"))
                        }
                        Ok((status, reason)) => (
                            false,
                            format!(
                                "canary {jti}: {status} {} — not a refusal for the revocation",
                                reason.map_or("", Reason::as_str)
                            ),
                        ),
                        Err(why) => (false, format!("canary {jti}: {why}")),
                    }
                })
                .await;
                checks.push(self.check(
                    check::GATEWAY_DENIES,
                    format!("{} {url} {}", gw.id, m.canary.jti),
                    outcome,
                ));
            }
        }
        checks
    }
}

/// Offboards a partner: revokes every grant and credential, then proves removal at every
/// enforcement point over HTTP. `completed` (the partner becomes `offboarded`) only if every
/// check passed and every enforcement point was probed; otherwise `failed` or `incomplete`,
/// and the partner stays `offboarding` (an offboarding may be retried).
pub async fn offboard(
    tokens: &Tokens<'_>,
    policy: Policy,
    probe: ProbeToken,
    actor: &PrincipalId,
    partner_id: &str,
    reason: Name,
) -> ApiResult<Offboarding> {
    let repo = tokens.repo;
    let started_at = repo.now();
    let partner = repo.load::<Partner>(partner_id, "partner").await?.value;
    // Refuse an illegal transition before probing anything.
    partner.clone().start_offboarding()?;
    let (ms, rnd) = repo.id_seed();
    let id = OffboardingId::generate(ms, rnd);
    // The gateway's HTTP client (plain or rustls, no redirects followed).
    let http = Upstream::new().map_err(ApiError::Unexpected)?;
    let run = Run {
        tokens,
        actor,
        note: json!({ "offboarding": id }),
        id,
        reason,
        http,
    };
    let earlier: Vec<Offboarding> = repo
        .list_all::<Offboarding>(ListFilter {
            parent: Some(partner.id.to_string()),
            status: None,
        })
        .await?
        .into_iter()
        .map(|v| v.value)
        .collect();
    let grants: Vec<Versioned<Grant>> = repo
        .list_all(ListFilter {
            parent: Some(partner.id.to_string()),
            status: None,
        })
        .await?;
    let nodes = run.live_nodes().await?;
    let prober = run.create_prober(&probe).await?;

    // Canaries of earlier attempts (re-signed from their claims), then one per grant that
    // can hold access now.
    let mut canaries: Vec<Canary> = Vec::new();
    for c in earlier.iter().flat_map(|o| o.canaries.iter()) {
        if !canaries.iter().any(|k| k.jti == c.jti) {
            canaries.push(c.clone());
        }
    }
    let carried = canaries.len();
    let now = repo.now();
    for g in &grants {
        let Some(api) = repo.live.api(g.value.api.as_str()) else {
            continue;
        };
        if check_grant(&g.value, Some(&partner), now).is_ok() {
            canaries.push(run.new_canary(&g.value, &api));
        }
    }
    let minted = canaries
        .into_iter()
        .map(|c| run.sign(c))
        .collect::<ApiResult<Vec<_>>>()?;

    let mut checks: Vec<Check> = Vec::new();
    // Acceptance shown by earlier attempts stays the evidence for their canaries.
    for c in earlier.iter().flat_map(|o| o.checks.iter()) {
        if !c.is_removal()
            && c.passed
            && c.name != check::CANARY_ACCEPTED
            && !checks
                .iter()
                .any(|k| k.name == c.name && k.target == c.target)
        {
            checks.push(c.clone());
        }
    }
    checks.extend(run.acceptance(&nodes, &minted[carried..], &probe).await);

    run.start(partner_id).await?;
    let (revoked_grants, revoked_credentials, credentials) = run.revoke_all(&grants).await?;
    checks.extend(run.removal(&nodes, &credentials, &minted, &probe).await);
    for m in &minted {
        let shown = checks.iter().any(|c| {
            c.passed
                && matches!(
                    c.name.as_str(),
                    check::INTROSPECTION_ACCEPTS | check::GATEWAY_ACCEPTS
                )
                && c.target.ends_with(&format!(" {}", m.canary.jti))
        });
        if !shown {
            let c = run.check(
                check::CANARY_ACCEPTED,
                m.canary.jti.clone(),
                (
                    false,
                    format!(
                        "canary of grant {} was never shown accepted before revocation",
                        m.canary.grant
                    ),
                ),
            );
            checks.push(c);
        }
    }
    run.disable_prober(&prober).await?;

    let coverage = Coverage {
        control_nodes: nodes.control.len(),
        gateways: nodes.gateways.len(),
        require_gateway: policy.require_gateway,
        earlier_removal_checks: earlier
            .iter()
            .map(|o| o.checks.iter().filter(|c| c.is_removal()).count())
            .max()
            .unwrap_or(0),
    };
    let (status, incomplete_reason) = Offboarding::verdict(&checks, coverage);
    let finished_at = repo.now();
    let record = Offboarding {
        id: run.id.clone(),
        partner: partner.id.clone(),
        status,
        incomplete_reason,
        requested_by: actor.clone(),
        reason: run.reason.clone(),
        revoked_grants,
        revoked_credentials,
        canaries: minted.iter().map(|m| m.canary.clone()).collect(),
        checks,
        started_at,
        finished_at,
    };
    let mut ops = vec![Op::Insert(Versioned::new_doc(&record, None))];
    if status == OffboardingStatus::Completed {
        let current = repo.load::<Partner>(partner.id.as_str(), "partner").await?;
        let mut done = current.value.clone();
        done.finish_offboarding()?;
        done.updated_at = finished_at;
        ops.push(Op::Update(current.next_doc(&done)));
    }
    let r = repo.record(
        actor.as_str(),
        action::PARTNER_OFFBOARD,
        partner.id.as_str(),
        Some(run.reason.to_string()),
        to_value(&record),
    );
    repo.write(Unit {
        ops,
        audit: vec![r],
    })
    .await?;
    Ok(record)
}

/// Repeats a probe while it does not pass, for as long as a node may take to apply a change
/// made at another node (its change feed delivers within the staleness bound); answers the
/// last outcome, noting how many probes it took.
async fn until_passed<F, Fut>(mut probe: F) -> (bool, String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, String)>,
{
    let deadline = Instant::now() + PROPAGATION;
    let mut tries = 1;
    loop {
        let (passed, detail) = probe().await;
        if passed || Instant::now() >= deadline {
            let detail = if tries > 1 {
                format!("{detail} (after {tries} probes)")
            } else {
                detail
            };
            return (passed, detail);
        }
        tries += 1;
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// An HTTP answer: status, `X-Charter-Reason`, and the body as JSON (`Null` if it is not).
struct Answer {
    status: u16,
    reason: Option<Reason>,
    body: Value,
}

/// Sends one probe; `Err` says why there was no answer.
async fn send(
    http: &Upstream,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    form: Option<String>,
) -> Result<Answer, String> {
    let mut req = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Body::from(form.unwrap_or_default()))
        .map_err(|_| format!("{url} is not a usable URL"))?;
    let resp = http
        .send(req, PROBE_TIMEOUT)
        .await
        .map_err(|(_, why)| format!("unreachable ({why})"))?;
    let status = resp.status().as_u16();
    let reason = resp
        .headers()
        .get("x-charter-reason")
        .and_then(|v| v.to_str().ok())
        .and_then(Reason::parse);
    let bytes = tokio::time::timeout(
        PROBE_TIMEOUT,
        axum::body::to_bytes(resp.into_body(), MAX_ANSWER),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        reason,
        body,
    })
}

/// A form body.
fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// RFC 7662 introspection over HTTP: `Ok(active)`, or why there was no usable answer.
async fn introspect(http: &Upstream, url: &str, bearer: &str, token: &str) -> Result<bool, String> {
    let a = send(
        http,
        Method::POST,
        url,
        &[("authorization", format!("Bearer {bearer}"))],
        Some(form(&[("token", token)])),
    )
    .await?;
    if a.status != 200 {
        return Err(format!("introspection answered {}", a.status));
    }
    a.body
        .get("active")
        .and_then(Value::as_bool)
        .ok_or_else(|| "introspection answered without `active`".to_owned())
}

/// A gateway check request for `method uri` with the canary: its status and reason.
async fn gateway_check(
    http: &Upstream,
    url: &str,
    method: &str,
    uri: &str,
    token: &str,
) -> Result<(u16, Option<Reason>), String> {
    let a = send(
        http,
        Method::GET,
        url,
        &[
            ("x-original-method", method.to_owned()),
            ("x-original-uri", uri.to_owned()),
            ("authorization", format!("Bearer {token}")),
        ],
        None,
    )
    .await
    .map_err(|why| format!("gateway {why}"))?;
    Ok((a.status, a.reason))
}

/// The token endpoint asked with a wrong secret: it passes only if the client is refused as
/// revoked (`invalid_client` described as [`REVOKED_CLIENT`]), which it says before any
/// secret is compared.
async fn token_refusal(http: &Upstream, url: &str, client_id: &str) -> (bool, String) {
    let not_a_secret = format!("offboarding-probe-{}", new_jti());
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", not_a_secret.as_str()),
    ]);
    let a = match send(http, Method::POST, url, &[], Some(body)).await {
        Ok(a) => a,
        Err(why) => return (false, why),
    };
    let error = a.body.get("error").and_then(Value::as_str).unwrap_or("");
    let description = a
        .body
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or("");
    if a.status == 401 && error == "invalid_client" && description == REVOKED_CLIENT {
        (true, format!("401 invalid_client: {REVOKED_CLIENT}"))
    } else {
        (
            false,
            format!("{} {error} — not refused as revoked", a.status),
        )
    }
}
