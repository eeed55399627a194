//! The live view: APIs (with their compiled routers), partners, grants, credentials, revoked
//! token ids and the token verification keys, held in memory so the token endpoint,
//! introspection and the gateway decide without a database round trip. Loaded at start;
//! every write this process commits is applied before the writer's caller continues, so a
//! revocation is visible to the very next request; other nodes' writes arrive through the
//! change feed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use charter_auth::keys::KeySet;
use charter_core::{Api, Grant, Partner, Principal};

use crate::routing::CompiledApi;
use charter_store::{
    CredentialRecord, Doc, Kind, ListFilter, Record, Store, StoreError, Versioned,
};

/// A revoked token id and when its token would have expired anyway (then it is forgotten).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RevokedToken {
    pub id: String,
    pub jti: String,
    pub exp: i64,
}

impl Record for RevokedToken {
    const KIND: Kind = Kind::RevokedToken;
    fn id(&self) -> &str {
        &self.id
    }
    fn lookup(&self) -> Option<String> {
        Some(self.jti.clone())
    }
}

/// An API with its compiled router.
pub struct LiveApi {
    pub api: Arc<Api>,
    pub router: CompiledApi,
}

#[derive(Default)]
struct Maps {
    apis: HashMap<String, Arc<Api>>,
    api_by_audience: HashMap<String, String>,
    api_by_name: HashMap<String, Arc<LiveApi>>,
    partners: HashMap<String, Arc<Partner>>,
    grants: HashMap<String, Arc<Grant>>,
    credentials: HashMap<String, Arc<CredentialRecord>>,
    /// Admin-API principals by the hash of their current token.
    principals: HashMap<String, Arc<Principal>>,
    revoked: HashMap<String, i64>,
}

#[derive(Default)]
pub struct Live {
    maps: RwLock<Maps>,
    keys: RwLock<Arc<KeySet>>,
    signing_docs: RwLock<HashMap<String, serde_json::Value>>,
}

fn parse<T: Record>(doc: &Doc) -> Option<T> {
    match Versioned::<T>::from_doc(doc) {
        Ok(v) => Some(v.value),
        Err(e) => {
            tracing::error!(error = %e, "unreadable object skipped in the live view");
            None
        }
    }
}

impl Live {
    /// Reads every API, partner, grant, credential and revoked token id from the store.
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let live = Self::default();
        live.reload(store).await?;
        Ok(live)
    }

    /// Applies every stored object again (objects are never deleted, so this brings the
    /// view up to date with the store).
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let live = self;
        for kind in [
            Kind::Api,
            Kind::Partner,
            Kind::Grant,
            Kind::Credential,
            Kind::RevokedToken,
            Kind::SigningKey,
            Kind::Principal,
        ] {
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .list(kind, &ListFilter::default(), after.as_deref(), 1000)
                    .await?;
                for doc in &page {
                    live.apply(doc);
                }
                match page.last() {
                    Some(last) if page.len() == 1000 => after = Some(last.id.clone()),
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Applies a committed write.
    pub fn apply(&self, doc: &Doc) {
        let mut m = self.maps.write().unwrap_or_else(|p| p.into_inner());
        match doc.kind {
            Kind::Api => {
                if let Some(api) = parse::<Api>(doc) {
                    let api = Arc::new(api);
                    m.api_by_audience.retain(|_, id| id != api.id.as_str());
                    m.api_by_audience
                        .insert(api.audience.to_string(), api.id.to_string());
                    m.api_by_name.retain(|_, a| a.api.id != api.id);
                    match CompiledApi::compile(&api) {
                        Ok(router) => {
                            let entry = Arc::new(LiveApi {
                                api: api.clone(),
                                router,
                            });
                            m.api_by_name.insert(api.name.to_string(), entry);
                        }
                        Err(e) => {
                            tracing::error!(api = %api.id, error = %e, "API operations do not compile; it is unreachable");
                        }
                    }
                    m.apis.insert(doc.id.clone(), api);
                }
            }
            Kind::Partner => {
                if let Some(p) = parse::<Partner>(doc) {
                    m.partners.insert(doc.id.clone(), Arc::new(p));
                }
            }
            Kind::Grant => {
                if let Some(g) = parse::<Grant>(doc) {
                    m.grants.insert(doc.id.clone(), Arc::new(g));
                }
            }
            Kind::Credential => {
                if let Some(c) = parse::<CredentialRecord>(doc) {
                    m.credentials
                        .insert(c.credential.client_id.clone(), Arc::new(c));
                }
            }
            Kind::RevokedToken => {
                if let Some(r) = parse::<RevokedToken>(doc) {
                    m.revoked.insert(r.jti, r.exp);
                }
            }
            Kind::SigningKey => {
                drop(m);
                self.apply_signing_key(doc);
            }
            Kind::Principal => {
                if let Some(p) = parse::<Principal>(doc) {
                    // A rotated token's old hash goes; the new one (if any) comes.
                    m.principals.retain(|_, known| known.id != p.id);
                    if let Some(hash) = &doc.lookup {
                        m.principals.insert(hash.clone(), Arc::new(p));
                    }
                }
            }
            Kind::Gateway | Kind::Offboarding | Kind::Review | Kind::EvidenceKey => {}
        }
    }

    /// Signing-key documents carry the public JWK; the published set is every key that is
    /// not retired, or retired but still inside its publication window.
    fn apply_signing_key(&self, doc: &Doc) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&doc.body) else {
            return;
        };
        let mut published = self.signing_docs.write().unwrap_or_else(|p| p.into_inner());
        published.insert(doc.id.clone(), v);
        drop(published);
        self.rebuild_keyset(None);
    }

    /// Recomputes the published key set at `now` (unix seconds; `None` keeps retired keys
    /// whose window is unknown).
    pub fn rebuild_keyset(&self, now: Option<i64>) {
        let docs = self.signing_docs.read().unwrap_or_else(|p| p.into_inner());
        let jwks = docs.values().filter_map(|v| {
            let status = v.get("status")?.as_str()?;
            if status == "retired" {
                let until = v
                    .get("publish_until")?
                    .as_str()?
                    .parse::<jiff::Timestamp>()
                    .ok()?;
                if now.is_some_and(|n| until.as_second() <= n) {
                    return None;
                }
            }
            charter_auth::jwk::PublicJwk::parse(v.get("public_jwk")?).ok()
        });
        match KeySet::new(jwks) {
            Ok(set) => *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set),
            Err(e) => tracing::error!(error = %e, "signing keys could not be loaded"),
        }
    }

    /// The keys tokens are verified with.
    pub fn keyset(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The API a gateway path names, with its router.
    pub fn api_by_name(&self, name: &str) -> Option<Arc<LiveApi>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .api_by_name
            .get(name)
            .cloned()
    }

    /// The principal whose current token has this hash.
    pub fn principal_by_token_hash(&self, hash: &str) -> Option<Arc<Principal>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .principals
            .get(hash)
            .cloned()
    }

    pub fn api(&self, id: &str) -> Option<Arc<Api>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .apis
            .get(id)
            .cloned()
    }

    pub fn api_by_audience(&self, audience: &str) -> Option<Arc<Api>> {
        let m = self.maps.read().unwrap_or_else(|p| p.into_inner());
        m.api_by_audience
            .get(audience)
            .and_then(|id| m.apis.get(id))
            .cloned()
    }

    pub fn partner(&self, id: &str) -> Option<Arc<Partner>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .partners
            .get(id)
            .cloned()
    }

    pub fn grant(&self, id: &str) -> Option<Arc<Grant>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .grants
            .get(id)
            .cloned()
    }

    pub fn credential(&self, client_id: &str) -> Option<Arc<CredentialRecord>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .credentials
            .get(client_id)
            .cloned()
    }

    /// Every credential of a partner (for offboarding checks and tests).
    pub fn credentials_of_partner(&self, partner: &str) -> Vec<Arc<CredentialRecord>> {
        let m = self.maps.read().unwrap_or_else(|p| p.into_inner());
        m.credentials
            .values()
            .filter(|c| c.credential.partner.as_str() == partner)
            .cloned()
            .collect()
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .revoked
            .contains_key(jti)
    }

    /// Forgets revoked ids whose tokens have expired anyway.
    pub fn prune_revoked(&self, now: i64) {
        self.maps
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .revoked
            .retain(|_, exp| *exp > now - 300);
    }
}
