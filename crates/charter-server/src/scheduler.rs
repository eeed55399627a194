//! The lifecycle scheduler: access that is granted ends. On every tick it expires grants at
//! their `expires_at` (emergency grants included) and suspends grants whose recertification
//! is overdue (fail closed). Each change is an audited write, applied to the live view at
//! once and announced to other nodes by the change feed. Time comes from the injected clock;
//! tests call [`tick`] after moving it.
//!
//! With PostgreSQL, several nodes may run the scheduler: a unit's optimistic version check
//! makes a second node's identical change a harmless conflict.

use charter_evidence::action;
use std::time::Duration;

use charter_core::{Grant, GrantStatus};
use charter_store::{Kind, ListFilter, Versioned};
use serde_json::json;

use crate::error::ApiResult;
use crate::state::AppState;

/// What one tick changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub expired: Vec<String>,
    pub suspended_overdue: Vec<String>,
    pub credentials_expired: Vec<String>,
}

async fn grants_in(state: &AppState, status: GrantStatus) -> ApiResult<Vec<Versioned<Grant>>> {
    state
        .repo
        .list_all(ListFilter {
            parent: None,
            status: Some(status.as_str().to_owned()),
        })
        .await
}

/// Runs the lifecycle rules once at the clock's current time.
pub async fn tick(state: &AppState) -> ApiResult<TickReport> {
    let now = state.now();
    let mut report = TickReport::default();
    for status in [
        GrantStatus::Pending,
        GrantStatus::Active,
        GrantStatus::Suspended,
    ] {
        for old in grants_in(state, status).await? {
            let mut g = old.value.clone();
            if now >= g.expires_at {
                if g.expire(now).is_ok() {
                    let extra = json!({ "emergency": g.emergency.as_ref().map(|e| e.incident.to_string()) });
                    let action = if g.emergency.is_some() {
                        action::GRANT_EMERGENCY_END
                    } else {
                        action::GRANT_EXPIRE
                    };
                    if state
                        .repo
                        .update(
                            &old,
                            &g,
                            "system",
                            action,
                            Some("reached expires_at".into()),
                            Some(extra),
                        )
                        .await
                        .is_ok()
                    {
                        report.expired.push(g.id.to_string());
                    }
                }
            } else if g.suspend_overdue(now).is_ok()
                && state
                    .repo
                    .update(
                        &old,
                        &g,
                        "system",
                        action::GRANT_SUSPEND_OVERDUE,
                        Some("recertification overdue".into()),
                        None,
                    )
                    .await
                    .is_ok()
            {
                report.suspended_overdue.push(g.id.to_string());
            }
        }
    }
    expire_credentials(state, now, &mut report).await?;
    Ok(report)
}

/// Records credentials that passed their maximum age (they stopped working at that second).
async fn expire_credentials(
    state: &AppState,
    now: jiff::Timestamp,
    report: &mut TickReport,
) -> ApiResult<()> {
    let mut after: Option<String> = None;
    loop {
        let filter = ListFilter {
            parent: None,
            status: Some("active".into()),
        };
        let page = state
            .repo
            .store
            .list(Kind::Credential, &filter, after.as_deref(), 500)
            .await?;
        for doc in &page {
            let old = Versioned::<charter_store::CredentialRecord>::from_doc(doc)?;
            let mut rec = old.value.clone();
            if rec.credential.expire(now).is_ok() {
                let r = state.repo.record(
                    "system",
                    action::CREDENTIAL_EXPIRE,
                    rec.credential.id.as_str(),
                    Some("maximum age reached".into()),
                    json!({ "grant": rec.credential.grant, "partner": rec.credential.partner,
                            "client_id": rec.credential.client_id, "expires_at": rec.credential.expires_at }),
                );
                let unit = charter_store::Unit {
                    ops: vec![charter_store::Op::Update(old.next_doc(&rec))],
                    audit: vec![r],
                };
                if state.repo.write(unit).await.is_ok() {
                    report
                        .credentials_expired
                        .push(rec.credential.id.to_string());
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    Ok(())
}

/// Ticks every `every` until the process ends, while this node leads (exactly one node
/// does when several share PostgreSQL; the others keep trying to take over).
pub async fn run(state: crate::Shared, every: Duration) {
    let mut interval = tokio::time::interval(every);
    let mut leadership: Option<charter_store::Leadership> = None;
    loop {
        interval.tick().await;
        let leading = match &mut leadership {
            Some(l) => l.alive().await,
            None => false,
        };
        if !leading {
            leadership = match state.repo.store.try_lead().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take scheduler leadership");
                    None
                }
            };
            if leadership.is_none() {
                continue;
            }
            tracing::info!("this node runs the lifecycle scheduler");
        }
        match tick(&state).await {
            Ok(r) if r != TickReport::default() => {
                tracing::info!(
                    expired = r.expired.len(),
                    suspended = r.suspended_overdue.len(),
                    "lifecycle tick"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "lifecycle tick failed"),
        }
    }
}
