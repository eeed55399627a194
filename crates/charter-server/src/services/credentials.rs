//! Credentials of a grant: issue, rotate with a bounded overlap, revoke. A client secret
//! appears once, in the [`Issued`] value that creates it; only its keyed hash is kept.
//! Revoking a credential bumps its grant's epoch, so every token it obtained dies with it.

use charter_auth::jwk::PublicJwk;
use charter_core::credential::MAX_OVERLAP_SECONDS;
use charter_core::{
    Credential, CredentialId, CredentialKind, Grant, GrantStatus, Name, PrincipalId,
};
use charter_evidence::action;
use charter_store::{CredentialRecord, Op, Unit, Verifier, Versioned};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::keyring::KeyRing;
use crate::repo::{Repo, to_value};

/// A credential just created or rotated: the only place its secret ever appears.
pub struct Issued {
    pub credential: Credential,
    pub version: u32,
    pub client_secret: Option<String>,
}

fn new_client_id() -> String {
    let b: [u8; 16] = rand::random();
    format!("chc_{}", hex::encode(b))
}

/// A verifier for `kind`: a fresh secret (returned) and its hash, or the parsed public JWK.
fn verifier(
    keys: &KeyRing,
    kind: CredentialKind,
    public_jwk: Option<Value>,
    version: u32,
) -> ApiResult<(Verifier, Option<String>, Option<String>)> {
    match (kind, public_jwk) {
        (CredentialKind::ClientSecret, None) => {
            let secret = charter_auth::secret::generate_client_secret();
            let hash = keys.secrets.hash(secret.expose());
            Ok((
                Verifier {
                    version,
                    secret_hash: Some(hash),
                    public_jwk: None,
                },
                Some(secret.expose().clone()),
                None,
            ))
        }
        (CredentialKind::ClientSecret, Some(_)) => Err(ApiError::Invalid(
            "a client_secret credential takes no public_jwk".into(),
        )),
        (CredentialKind::PrivateKeyJwt, Some(jwk)) => {
            let parsed = PublicJwk::parse(&jwk)
                .map_err(|e| ApiError::Invalid(format!("public_jwk: {e}")))?;
            let thumbprint = parsed.thumbprint();
            let text =
                serde_json::to_string(&parsed).map_err(|e| ApiError::Unexpected(e.into()))?;
            Ok((
                Verifier {
                    version,
                    secret_hash: None,
                    public_jwk: Some(text),
                },
                None,
                Some(thumbprint),
            ))
        }
        (CredentialKind::PrivateKeyJwt, None) => Err(ApiError::Invalid(
            "a private_key_jwt credential needs public_jwk".into(),
        )),
    }
}

/// What a steward asks for when issuing a credential.
pub struct Request {
    pub kind: CredentialKind,
    /// The partner's public JWK, for `private_key_jwt`.
    pub public_jwk: Option<Value>,
    /// May only lower the deployment's maximum age.
    pub max_age_days: Option<u32>,
}

/// Issues a credential for an active grant; `max_age_limit` is the deployment's maximum age.
pub async fn issue(
    repo: &Repo,
    keys: &KeyRing,
    actor: &PrincipalId,
    grant_id: &str,
    request: Request,
    max_age_limit: u32,
) -> ApiResult<Issued> {
    let Request {
        kind,
        public_jwk,
        max_age_days,
    } = request;
    let grant = repo.load::<Grant>(grant_id, "grant").await?.value;
    if grant.status != GrantStatus::Active {
        return Err(ApiError::Conflict(format!(
            "credentials are issued for active grants; this one is {}",
            grant.status.as_str()
        )));
    }
    let max_age = match max_age_days {
        None => max_age_limit,
        Some(d) if (1..=max_age_limit).contains(&d) => d,
        Some(_) => {
            return Err(ApiError::Invalid(format!(
                "max_age_days must be between 1 and {max_age_limit}"
            )));
        }
    };
    let (verifier, secret, thumbprint) = verifier(keys, kind, public_jwk, 1)?;
    let (ms, rnd) = repo.id_seed();
    let credential = Credential::new(
        CredentialId::generate(ms, rnd),
        &grant,
        new_client_id(),
        kind,
        max_age,
        thumbprint,
        repo.now(),
    )?;
    let record = CredentialRecord {
        credential: credential.clone(),
        verifiers: vec![verifier],
    };
    let rec = repo.record(
        actor.as_str(),
        action::CREDENTIAL_ISSUE,
        credential.id.as_str(),
        None,
        json!({ "after": to_value(&credential), "grant": grant.id, "partner": grant.partner }),
    );
    repo.write(Unit {
        ops: vec![Op::Insert(Versioned::new_doc(&record, None))],
        audit: vec![rec],
    })
    .await?;
    Ok(Issued {
        credential,
        version: 1,
        client_secret: secret,
    })
}

/// Rotates a credential: a new secret (or the new public JWK) as the next version; the
/// current version keeps working for `overlap` seconds.
pub async fn rotate(
    repo: &Repo,
    keys: &KeyRing,
    actor: &PrincipalId,
    id: &str,
    public_jwk: Option<Value>,
    overlap: u32,
) -> ApiResult<Issued> {
    if overlap > MAX_OVERLAP_SECONDS {
        return Err(ApiError::Invalid(format!(
            "overlap_seconds is at most {MAX_OVERLAP_SECONDS}"
        )));
    }
    let old = repo.load::<CredentialRecord>(id, "credential").await?;
    let mut record = old.value.clone();
    let next_version = record
        .credential
        .versions
        .iter()
        .map(|v| v.version)
        .max()
        .unwrap_or(0)
        + 1;
    let (verifier, secret, thumbprint) =
        verifier(keys, record.credential.kind, public_jwk, next_version)?;
    let version = record.credential.rotate(overlap, thumbprint, repo.now())?;
    let live: Vec<u32> = record
        .credential
        .versions
        .iter()
        .map(|v| v.version)
        .collect();
    record.verifiers.retain(|v| live.contains(&v.version));
    record.verifiers.push(Verifier {
        version,
        ..verifier
    });
    let rec = repo.record(
        actor.as_str(),
        action::CREDENTIAL_ROTATE,
        id,
        None,
        json!({ "after": to_value(&record.credential), "version": version, "overlap_seconds": overlap,
                "grant": record.credential.grant, "partner": record.credential.partner }),
    );
    repo.write(Unit {
        ops: vec![Op::Update(old.next_doc(&record))],
        audit: vec![rec],
    })
    .await?;
    Ok(Issued {
        credential: record.credential,
        version,
        client_secret: secret,
    })
}

/// Revokes a credential at once and bumps its grant's epoch (unless the grant has ended), in
/// one audited unit.
pub async fn revoke(
    repo: &Repo,
    actor: &PrincipalId,
    id: &str,
    reason: Name,
) -> ApiResult<Credential> {
    let old = repo.load::<CredentialRecord>(id, "credential").await?;
    let mut record = old.value.clone();
    let now = repo.now();
    record.credential.revoke(reason.clone(), now)?;
    let mut ops = vec![Op::Update(old.next_doc(&record))];
    let grant = repo
        .load::<Grant>(record.credential.grant.as_str(), "grant")
        .await?;
    let mut epoch = None;
    if !grant.value.status.is_final() {
        let mut g = grant.value.clone();
        g.epoch += 1;
        epoch = Some(g.epoch);
        ops.push(Op::Update(grant.next_doc(&g)));
    }
    let rec = repo.record(
        actor.as_str(),
        action::CREDENTIAL_REVOKE,
        id,
        Some(reason.to_string()),
        json!({ "after": to_value(&record.credential), "grant": record.credential.grant,
                "partner": record.credential.partner, "grant_epoch": epoch }),
    );
    repo.write(Unit {
        ops,
        audit: vec![rec],
    })
    .await?;
    Ok(record.credential)
}
