//! Typed objects over the document table: which kind a domain type is stored as, and the
//! columns derived from it.

use charter_core::{Api, Credential, Grant, Partner, Principal};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Doc, StoreError};

/// The kinds of stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Principal,
    Api,
    Partner,
    Grant,
    Credential,
    SigningKey,
    RevokedToken,
    Gateway,
    Offboarding,
    Review,
    EvidenceKey,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Api => "api",
            Self::Partner => "partner",
            Self::Grant => "grant",
            Self::Credential => "credential",
            Self::SigningKey => "signing_key",
            Self::RevokedToken => "revoked_token",
            Self::Gateway => "gateway",
            Self::Offboarding => "offboarding",
            Self::Review => "review",
            Self::EvidenceKey => "evidence_key",
        }
    }

    /// The kind with its article, for messages: "an API", "a partner".
    pub fn noun(self) -> &'static str {
        match self {
            Self::Principal => "a principal",
            Self::Api => "an API",
            Self::Partner => "a partner",
            Self::Grant => "a grant",
            Self::Credential => "a credential",
            Self::SigningKey => "a signing key",
            Self::RevokedToken => "a revoked token",
            Self::Gateway => "a gateway",
            Self::Offboarding => "an offboarding",
            Self::Review => "a review",
            Self::EvidenceKey => "an evidence key",
        }
    }

    /// What makes an object of this kind unique besides its id, for a conflict message.
    pub fn unique_keys(self) -> &'static str {
        match self {
            Self::Api => "name or audience",
            Self::Credential => "client id",
            _ => "name",
        }
    }

    pub const ALL: [Kind; 11] = [
        Kind::Principal,
        Kind::Api,
        Kind::Partner,
        Kind::Grant,
        Kind::Credential,
        Kind::SigningKey,
        Kind::RevokedToken,
        Kind::Gateway,
        Kind::Offboarding,
        Kind::Review,
        Kind::EvidenceKey,
    ];
}

/// A domain type kept in the store.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const KIND: Kind;
    fn id(&self) -> &str;
    fn name(&self) -> Option<String> {
        None
    }
    /// The second unique key when it derives from the value (an API's audience).
    fn lookup(&self) -> Option<String> {
        None
    }
    fn parent(&self) -> Option<String> {
        None
    }
    fn status(&self) -> Option<String> {
        None
    }
}

/// An object with the version it was read at (for optimistic concurrency).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
    /// The stored second key, kept across updates unless replaced.
    pub lookup: Option<String>,
}

impl<T: Record> Versioned<T> {
    pub fn from_doc(doc: &Doc) -> Result<Self, StoreError> {
        let value = serde_json::from_str(&doc.body).map_err(|source| StoreError::Corrupt {
            id: doc.id.clone(),
            source,
        })?;
        Ok(Self {
            value,
            version: doc.version,
            lookup: doc.lookup.clone(),
        })
    }

    /// The document for a first write of `value`.
    pub fn new_doc(value: &T, lookup: Option<String>) -> Doc {
        let lookup = lookup.or_else(|| value.lookup());
        doc_of(value, lookup, 1)
    }

    /// The document replacing this version with `value`, keeping the stored lookup key
    /// unless the value derives its own.
    pub fn next_doc(&self, value: &T) -> Doc {
        doc_of(
            value,
            value.lookup().or_else(|| self.lookup.clone()),
            self.version + 1,
        )
    }

    /// Like [`Self::next_doc`], with a new lookup key (a rotated token's hash).
    pub fn next_doc_with_lookup(&self, value: &T, lookup: String) -> Doc {
        doc_of(value, Some(lookup), self.version + 1)
    }
}

fn doc_of<T: Record>(value: &T, lookup: Option<String>, version: i64) -> Doc {
    Doc {
        kind: T::KIND,
        id: value.id().to_owned(),
        name: value.name(),
        lookup,
        parent: value.parent(),
        status: value.status(),
        // Serialising these plain data types cannot fail.
        body: serde_json::to_string(value).unwrap_or_default(),
        version,
    }
}

fn status_str<T: Serialize>(status: &T) -> Option<String> {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

impl Record for Principal {
    const KIND: Kind = Kind::Principal;
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn name(&self) -> Option<String> {
        Some(self.name.to_string())
    }
}

impl Record for Api {
    const KIND: Kind = Kind::Api;
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn lookup(&self) -> Option<String> {
        Some(self.audience.to_string())
    }
    fn name(&self) -> Option<String> {
        Some(self.name.to_string())
    }
    fn parent(&self) -> Option<String> {
        Some(self.owner.to_string())
    }
}

impl Record for Partner {
    const KIND: Kind = Kind::Partner;
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn name(&self) -> Option<String> {
        Some(self.name.to_string())
    }
    fn status(&self) -> Option<String> {
        status_str(&self.status)
    }
}

impl Record for Grant {
    const KIND: Kind = Kind::Grant;
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn parent(&self) -> Option<String> {
        Some(self.partner.to_string())
    }
    fn status(&self) -> Option<String> {
        Some(self.status.as_str().to_owned())
    }
}

/// How one credential version is checked: the keyed hash of a secret, or a public JWK.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verifier {
    pub version: u32,
    pub secret_hash: Option<String>,
    /// The registered public JWK, as JSON text.
    pub public_jwk: Option<String>,
}

/// A credential as stored: its public record and, beside it, its verifiers (never part of a
/// reply or an audit record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CredentialRecord {
    pub credential: Credential,
    pub verifiers: Vec<Verifier>,
}

impl CredentialRecord {
    /// The verifiers of the versions that may be tried now.
    pub fn live_verifiers(&self, now: jiff::Timestamp) -> impl Iterator<Item = &Verifier> {
        let live: Vec<u32> = self
            .credential
            .live_versions(now)
            .map(|v| v.version)
            .collect();
        self.verifiers
            .iter()
            .filter(move |v| live.contains(&v.version))
    }
}

impl Record for CredentialRecord {
    const KIND: Kind = Kind::Credential;
    fn id(&self) -> &str {
        self.credential.id.as_str()
    }
    fn lookup(&self) -> Option<String> {
        Some(self.credential.client_id.clone())
    }
    fn parent(&self) -> Option<String> {
        Some(self.credential.grant.to_string())
    }
    fn status(&self) -> Option<String> {
        status_str(&self.credential.status)
    }
}

impl Record for charter_core::offboarding::Offboarding {
    const KIND: Kind = Kind::Offboarding;
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn parent(&self) -> Option<String> {
        Some(self.partner.to_string())
    }
    fn status(&self) -> Option<String> {
        status_str(&self.status)
    }
}

/// A review is found by what it covers (a partner, an API, or the grant of a post-incident
/// review) and by whether it is still open.
impl Record for charter_core::review::Review {
    const KIND: Kind = Kind::Review;
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn parent(&self) -> Option<String> {
        Some(self.subject.id().to_owned())
    }
    fn status(&self) -> Option<String> {
        Some(self.status.as_str().to_owned())
    }
}
