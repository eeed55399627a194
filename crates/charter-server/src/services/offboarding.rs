//! Offboarding a partner: revoke everything it holds, then verify that removal holds
//! everywhere it must — with what Charter can hold itself (it keeps no bearer tokens or
//! secrets): a canary token per grant minted at the grant's epoch before revocation, the token
//! endpoint's own client authentication, introspection, and every registered gateway's check
//! endpoint. The workflow runs in phases: start → mint canaries → revoke → verify → finish.

use std::time::Duration;

use axum::body::Body;
use charter_auth::token::{AccessClaims, mint, new_jti};
use charter_core::offboarding::{Canary, Check, Offboarding, OffboardingStatus};
use charter_core::{Api, Grant, Name, OffboardingId, Partner, PrincipalId, Scope};
use charter_evidence::action;
use charter_gateway::registry::GatewayRecord;
use charter_store::{CredentialRecord, ListFilter, Op, Unit, Versioned};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::repo::{Repo, to_value};
use crate::services::issuance::{ClientAuth, ClientRefusal, Tokens};

/// A gateway that has not sent a heartbeat for this long is no longer running.
const GATEWAY_ALIVE_SECONDS: i64 = 60;
const CANARY_TTL_SECONDS: i64 = 300;
/// How long one gateway probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A concrete request path for the first operation a grant's scopes reach.
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

/// A canary token, never handed out: only its `jti` is recorded.
struct Minted {
    canary: Canary,
    token: String,
    probe: Option<(String, String)>,
}

/// One offboarding in progress.
struct Run<'a> {
    tokens: &'a Tokens<'a>,
    actor: &'a PrincipalId,
    id: OffboardingId,
    reason: Name,
    /// Added to every record this offboarding writes.
    note: Value,
}

impl Run<'_> {
    fn repo(&self) -> &Repo {
        self.tokens.repo
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

    /// A canary per live grant, at its current epoch.
    fn mint_canaries(&self, grants: &[Versioned<Grant>]) -> ApiResult<Vec<Minted>> {
        let repo = self.repo();
        let keys = self.tokens.keys.current()?;
        let now_s = repo.now().as_second();
        let mut minted = Vec::new();
        for g in grants.iter().filter(|g| !g.value.status.is_final()) {
            let Some(api) = repo.live.api(g.value.api.as_str()) else {
                continue;
            };
            let jti = new_jti();
            let claims = AccessClaims {
                iss: self.tokens.issuer.to_owned(),
                sub: format!("canary:{}", g.value.id),
                aud: api.audience.to_string(),
                client_id: "charter-offboarding-canary".into(),
                scope: g
                    .value
                    .scopes
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                jti: jti.clone(),
                iat: now_s,
                nbf: now_s,
                exp: now_s + CANARY_TTL_SECONDS,
                grant: g.value.id.to_string(),
                epoch: g.value.epoch,
                cnf: None,
            };
            let token = mint(&keys.signing, &claims)
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("minting a canary: {e}")))?;
            minted.push(Minted {
                canary: Canary {
                    grant: g.value.id.to_string(),
                    jti,
                },
                token,
                probe: probe_target(&api, &g.value),
            });
        }
        Ok(minted)
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

    /// Every check: the token endpoint refuses each client id as revoked, introspection
    /// judges each canary inactive, every live gateway denies each canary.
    async fn verify(
        &self,
        credentials: &[Versioned<CredentialRecord>],
        minted: &[Minted],
    ) -> ApiResult<Vec<Check>> {
        let repo = self.repo();
        let mut checks = Vec::new();
        for c in credentials {
            let client_id = c.value.credential.client_id.clone();
            let probe = ClientAuth::Secret {
                client_id: client_id.clone(),
                secret: "offboarding-probe".into(),
                basic: false,
            };
            let (passed, detail) = match self.tokens.authenticate(&probe) {
                Err(ClientRefusal::CredentialRevoked) => (
                    true,
                    "refused as revoked before any secret was compared".to_owned(),
                ),
                Err(other) => (
                    false,
                    format!("refused, but as {}, not as revoked", other.as_str()),
                ),
                Ok(_) => (false, "the client authenticated".to_owned()),
            };
            checks.push(Check {
                name: "token_endpoint_refuses".into(),
                target: client_id,
                passed,
                at: repo.now(),
                detail,
            });
        }
        for m in minted {
            let (passed, detail) = match self.tokens.check_raw_token(&m.token) {
                Err(reason) => (true, format!("inactive: {reason}")),
                Ok(_) => (false, "introspection says active".to_owned()),
            };
            checks.push(Check {
                name: "introspection_inactive".into(),
                target: m.canary.jti.clone(),
                passed,
                at: repo.now(),
                detail,
            });
        }
        let gateways: Vec<Versioned<GatewayRecord>> = repo.list_all(ListFilter::default()).await?;
        let now_s = repo.now().as_second();
        let alive: Vec<&GatewayRecord> = gateways
            .iter()
            .map(|g| &g.value)
            .filter(|g| now_s - g.heartbeat_at.as_second() <= GATEWAY_ALIVE_SECONDS)
            .collect();
        let client = charter_gateway::proxy::Upstream::new().map_err(ApiError::Unexpected)?;
        for gw in &alive {
            for m in minted {
                let Some((method, uri)) = &m.probe else {
                    continue;
                };
                let (passed, detail) = probe_gateway(&client, gw, method, uri, &m.token).await;
                checks.push(Check {
                    name: "gateway_denies".into(),
                    target: format!("{} {}", gw.id, m.canary.jti),
                    passed,
                    at: repo.now(),
                    detail,
                });
            }
        }
        Ok(checks)
    }
}

/// Offboards a partner: revokes every grant and credential, then verifies removal at every
/// enforcement point Charter can reach. `completed` (the partner becomes `offboarded`) only
/// if every check passed; otherwise `failed`, and the partner stays `offboarding`.
pub async fn offboard(
    tokens: &Tokens<'_>,
    actor: &PrincipalId,
    partner_id: &str,
    reason: Name,
) -> ApiResult<Offboarding> {
    let repo = tokens.repo;
    let started_at = repo.now();
    let (ms, rnd) = repo.id_seed();
    let id = OffboardingId::generate(ms, rnd);
    let run = Run {
        tokens,
        actor,
        note: json!({ "offboarding": id }),
        id,
        reason,
    };
    let partner = run.start(partner_id).await?;
    let grants: Vec<Versioned<Grant>> = repo
        .list_all(ListFilter {
            parent: Some(partner.id.to_string()),
            status: None,
        })
        .await?;
    let minted = run.mint_canaries(&grants)?;
    let (revoked_grants, revoked_credentials, credentials) = run.revoke_all(&grants).await?;
    let checks = run.verify(&credentials, &minted).await?;

    let status = Offboarding::verdict(&checks);
    let finished_at = repo.now();
    let record = Offboarding {
        id: run.id.clone(),
        partner: partner.id.clone(),
        status,
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

async fn probe_gateway(
    client: &charter_gateway::proxy::Upstream,
    gw: &GatewayRecord,
    method: &str,
    uri: &str,
    token: &str,
) -> (bool, String) {
    let req = axum::http::Request::builder()
        .method("GET")
        .uri(&gw.check_url)
        .header("x-original-method", method)
        .header("x-original-uri", uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty());
    let Ok(req) = req else {
        return (false, format!("bad check URL {}", gw.check_url));
    };
    match client.send(req, PROBE_TIMEOUT).await {
        Ok(resp) => {
            let status = resp.status();
            let reason = resp
                .headers()
                .get("x-charter-reason")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let denied = status.as_u16() == 401 || status.as_u16() == 403;
            (denied, format!("{} {reason}", status.as_u16()))
        }
        Err((_, why)) => (false, format!("gateway unreachable: {why}")),
    }
}
