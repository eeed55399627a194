//! Signing keys for access tokens: Ed25519, sealed at rest under the master key, and rotated
//! so that verifiers always know a key before it signs and after it stops signing. At any
//! time there is one `active` key (signs), one `next` key (published, signs after the next
//! rotation) and any `retired` keys still published until every token they signed has
//! expired.

use charter_evidence::action;
use std::sync::{Arc, RwLock};

use charter_auth::jwk::PublicJwk;
use charter_auth::keys::{MasterKey, SealedKey, SigningKey};
use charter_auth::secret::SecretHasher;
use charter_core::grant::MAX_TOKEN_TTL_SECONDS;
use charter_store::{Kind, ListFilter, Op, Record, Unit, Versioned};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::repo::Repo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Next,
    Active,
    Retired,
}

/// A signing key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub status: KeyStatus,
    pub sealed: SealedKey,
    pub public_jwk: PublicJwk,
    pub created_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    /// A retired key stays in the JWKS until then.
    pub publish_until: Option<Timestamp>,
}

impl Record for KeyRecord {
    const KIND: Kind = Kind::SigningKey;
    fn id(&self) -> &str {
        &self.kid
    }
    fn status(&self) -> Option<String> {
        Some(
            match self.status {
                KeyStatus::Next => "next",
                KeyStatus::Active => "active",
                KeyStatus::Retired => "retired",
            }
            .to_owned(),
        )
    }
}

/// The keys in use now (verification keys live in the live view, built from the same
/// records).
pub struct KeyState {
    pub signing: SigningKey,
    pub records: Vec<Versioned<KeyRecord>>,
}

pub struct KeyRing {
    master: MasterKey,
    pub secrets: SecretHasher,
    current: RwLock<Option<Arc<KeyState>>>,
    evidence_state: RwLock<Option<Arc<EvidenceState>>>,
}

fn new_kid() -> String {
    let b: [u8; 13] = rand::random();
    format!("key_{}", hex::encode(b))
}

impl KeyRing {
    pub fn new(master: MasterKey) -> Self {
        let secrets = SecretHasher::new(master.derive("charter client-secret hmac v1"));
        Self {
            master,
            secrets,
            current: RwLock::new(None),
            evidence_state: RwLock::new(None),
        }
    }

    /// The keys in use; fails closed (503) if none are loaded.
    pub fn current(&self) -> ApiResult<Arc<KeyState>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| ApiError::Unavailable("no signing key is loaded".into()))
    }

    fn fresh(&self, status: KeyStatus, now: Timestamp) -> ApiResult<KeyRecord> {
        let key = SigningKey::generate(new_kid())
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
        let sealed = key
            .seal(&self.master)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
        Ok(KeyRecord {
            kid: key.kid().to_owned(),
            status,
            sealed,
            public_jwk: key.public_jwk(),
            created_at: now,
            activated_at: (status == KeyStatus::Active).then_some(now),
            retired_at: None,
            publish_until: None,
        })
    }

    /// Loads the keys from the store, creating an active and a next key on first start.
    pub async fn load(&self, repo: &Repo) -> ApiResult<()> {
        let mut records = self.read_all(repo).await?;
        if !records.iter().any(|r| r.value.status == KeyStatus::Active) {
            let now = repo.now();
            let active = self.fresh(KeyStatus::Active, now)?;
            let next = self.fresh(KeyStatus::Next, now)?;
            let rec = repo.record(
                "system",
                action::KEY_CREATE,
                &active.kid,
                Some("first start".into()),
                json!({ "active": active.kid, "next": next.kid }),
            );
            repo.write(Unit {
                ops: vec![
                    Op::Insert(Versioned::new_doc(&active, None)),
                    Op::Insert(Versioned::new_doc(&next, None)),
                ],
                audit: vec![rec],
            })
            .await?;
            records = self.read_all(repo).await?;
        }
        self.install(repo, records)
    }

    async fn read_all(&self, repo: &Repo) -> ApiResult<Vec<Versioned<KeyRecord>>> {
        let docs = repo
            .store
            .list(Kind::SigningKey, &ListFilter::default(), None, 1000)
            .await?;
        docs.iter().map(|d| Ok(Versioned::from_doc(d)?)).collect()
    }

    fn install(&self, repo: &Repo, records: Vec<Versioned<KeyRecord>>) -> ApiResult<()> {
        let active = records
            .iter()
            .find(|r| r.value.status == KeyStatus::Active)
            .ok_or_else(|| ApiError::Unavailable("no active signing key".into()))?;
        let signing = SigningKey::unseal(&active.value.sealed, &self.master).map_err(|e| {
            ApiError::Unexpected(anyhow::anyhow!(
                "the active signing key cannot be unsealed (wrong master key?): {e}"
            ))
        })?;
        for r in &records {
            repo.live.apply(&Versioned::new_doc(&r.value, None));
        }
        repo.live.rebuild_keyset(Some(repo.now().as_second()));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(KeyState { signing, records }));
        Ok(())
    }

    /// Rotates: the next key starts signing, the active one retires (still published until
    /// every token it signed has expired), and a new next key is published.
    pub async fn rotate(&self, repo: &Repo, actor: &str) -> ApiResult<serde_json::Value> {
        let now = repo.now();
        let records = self.read_all(repo).await?;
        let mut ops = Vec::new();
        let mut retired = Vec::new();
        let mut promoted = None;
        for r in &records {
            match r.value.status {
                KeyStatus::Active => {
                    let mut v = r.value.clone();
                    v.status = KeyStatus::Retired;
                    v.retired_at = Some(now);
                    v.publish_until = Some(
                        now + SignedDuration::from_secs(i64::from(MAX_TOKEN_TTL_SECONDS) + 300),
                    );
                    retired.push(v.kid.clone());
                    ops.push(Op::Update(r.next_doc(&v)));
                }
                KeyStatus::Next if promoted.is_none() => {
                    let mut v = r.value.clone();
                    v.status = KeyStatus::Active;
                    v.activated_at = Some(now);
                    promoted = Some(v.kid.clone());
                    ops.push(Op::Update(r.next_doc(&v)));
                }
                _ => {}
            }
        }
        let Some(promoted) = promoted else {
            return Err(ApiError::Conflict("there is no next key to promote".into()));
        };
        let next = self.fresh(KeyStatus::Next, now)?;
        let details = json!({ "active": promoted, "retired": retired, "next": next.kid });
        ops.push(Op::Insert(Versioned::new_doc(&next, None)));
        let rec = repo.record(actor, action::KEY_ROTATE, &promoted, None, details.clone());
        repo.write(Unit {
            ops,
            audit: vec![rec],
        })
        .await?;
        self.install(repo, self.read_all(repo).await?)?;
        Ok(details)
    }

    /// Re-reads the keys (another node may have rotated them).
    pub async fn reload(&self, repo: &Repo) -> ApiResult<()> {
        self.install(repo, self.read_all(repo).await?)
    }
}

/// An evidence signing key as stored: signs evidence bundles and audit checkpoints. Every
/// evidence public key ever used stays published, so old bundles verify after rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceKeyRecord {
    pub kid: String,
    pub status: KeyStatus,
    pub sealed: SealedKey,
    pub public_jwk: PublicJwk,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl Record for EvidenceKeyRecord {
    const KIND: Kind = Kind::EvidenceKey;
    fn id(&self) -> &str {
        &self.kid
    }
}

/// The evidence key that signs now, and every evidence public key ever used.
pub struct EvidenceState {
    pub signing: SigningKey,
    /// Every evidence public key ever used, oldest first, as
    /// `/.well-known/charter-evidence-keys` lists them: the JWK with the period it signs in,
    /// `not_before` and `not_after` (RFC 3339; `null` for the key that signs now).
    pub published: Vec<serde_json::Value>,
}

/// A published evidence key: its public JWK and its signing period.
fn published_key(r: &EvidenceKeyRecord) -> ApiResult<serde_json::Value> {
    let mut jwk = serde_json::to_value(&r.public_jwk)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("evidence key {}: {e}", r.kid)))?;
    if let Some(members) = jwk.as_object_mut() {
        members.insert("not_before".into(), json!(r.created_at));
        members.insert("not_after".into(), json!(r.retired_at));
    }
    Ok(jwk)
}

impl EvidenceState {
    pub fn kid(&self) -> &str {
        self.signing.kid()
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message)
    }
}

impl KeyRing {
    /// The evidence key; fails closed (503) if none is loaded.
    pub fn evidence(&self) -> ApiResult<Arc<EvidenceState>> {
        self.evidence_state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| ApiError::Unavailable("no evidence key is loaded".into()))
    }

    async fn read_evidence(&self, repo: &Repo) -> ApiResult<Vec<Versioned<EvidenceKeyRecord>>> {
        let docs = repo
            .store
            .list(Kind::EvidenceKey, &ListFilter::default(), None, 1000)
            .await?;
        docs.iter().map(|d| Ok(Versioned::from_doc(d)?)).collect()
    }

    fn fresh_evidence(&self, now: Timestamp) -> ApiResult<EvidenceKeyRecord> {
        let b: [u8; 13] = rand::random();
        let key = SigningKey::generate(format!("evk_{}", hex::encode(b)))
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
        let sealed = key
            .seal(&self.master)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
        Ok(EvidenceKeyRecord {
            kid: key.kid().to_owned(),
            status: KeyStatus::Active,
            sealed,
            public_jwk: key.public_jwk(),
            created_at: now,
            retired_at: None,
        })
    }

    /// Loads the evidence keys, creating the first on first start.
    pub async fn load_evidence(&self, repo: &Repo) -> ApiResult<()> {
        let mut records = self.read_evidence(repo).await?;
        if !records.iter().any(|r| r.value.status == KeyStatus::Active) {
            let key = self.fresh_evidence(repo.now())?;
            let rec = repo.record(
                "system",
                action::EVIDENCE_KEY_CREATE,
                &key.kid,
                Some("first start".into()),
                json!({ "kid": key.kid }),
            );
            repo.write(Unit {
                ops: vec![Op::Insert(Versioned::new_doc(&key, None))],
                audit: vec![rec],
            })
            .await?;
            records = self.read_evidence(repo).await?;
        }
        self.install_evidence(records)
    }

    fn install_evidence(&self, records: Vec<Versioned<EvidenceKeyRecord>>) -> ApiResult<()> {
        let active = records
            .iter()
            .find(|r| r.value.status == KeyStatus::Active)
            .ok_or_else(|| ApiError::Unavailable("no active evidence key".into()))?;
        let signing = SigningKey::unseal(&active.value.sealed, &self.master).map_err(|e| {
            ApiError::Unexpected(anyhow::anyhow!(
                "the evidence key cannot be unsealed (wrong master key?): {e}"
            ))
        })?;
        let mut by_age: Vec<&EvidenceKeyRecord> = records.iter().map(|r| &r.value).collect();
        by_age.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let published = by_age
            .into_iter()
            .map(published_key)
            .collect::<ApiResult<Vec<_>>>()?;
        *self
            .evidence_state
            .write()
            .unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(EvidenceState { signing, published }));
        Ok(())
    }

    /// The evidence key that signs now, re-read from the store first when another node has
    /// rotated it (one small list read; for signing bundles and checkpoints, so no node keeps
    /// signing with a key whose period has ended).
    pub async fn evidence_current(&self, repo: &Repo) -> ApiResult<Arc<EvidenceState>> {
        let records = self.read_evidence(repo).await?;
        let stored_active = records
            .iter()
            .find(|r| r.value.status == KeyStatus::Active)
            .map(|r| r.value.kid.clone());
        let loaded = self.evidence().ok();
        let current = loaded.as_ref().is_some_and(|e| {
            Some(e.kid()) == stored_active.as_deref() && e.published.len() == records.len()
        });
        if !current {
            self.install_evidence(records)?;
        }
        self.evidence()
    }

    /// Retires the evidence key and starts a new one; the old public key stays published,
    /// its period closed at `now` (`not_after`), and the new key's opens there. Answers
    /// `{active, retired, key}`, `key` the new published key.
    pub async fn rotate_evidence(&self, repo: &Repo, actor: &str) -> ApiResult<serde_json::Value> {
        let now = repo.now();
        let mut ops = Vec::new();
        let mut retired = Vec::new();
        for r in self.read_evidence(repo).await? {
            if r.value.status == KeyStatus::Active {
                let mut v = r.value.clone();
                v.status = KeyStatus::Retired;
                v.retired_at = Some(now);
                retired.push(v.kid.clone());
                ops.push(Op::Update(r.next_doc(&v)));
            }
        }
        let key = self.fresh_evidence(now)?;
        let details = json!({ "active": key.kid, "retired": retired });
        let published = published_key(&key)?;
        ops.push(Op::Insert(Versioned::new_doc(&key, None)));
        let rec = repo.record(
            actor,
            action::EVIDENCE_KEY_ROTATE,
            &key.kid,
            None,
            details.clone(),
        );
        repo.write(Unit {
            ops,
            audit: vec![rec],
        })
        .await?;
        self.install_evidence(self.read_evidence(repo).await?)?;
        let mut reply = details;
        reply["key"] = published;
        Ok(reply)
    }
}
