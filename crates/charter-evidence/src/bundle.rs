//! Evidence bundles (`charter-evidence/2`): signing and offline verification.
//!
//! A bundle states, for one grant or one partner, who requested and approved access, what
//! it could reach, its credentials, usage, reviews and removal. Each statement cites audit
//! events; the bundle carries the whole lifecycle sub-chain of each subject it speaks of
//! (every record linked to the previous record of the same subject by
//! `details.subject_prev`), headed by the `evidence.issue` record its making appended, which
//! commits the other sub-chains' heads and each grant's usage summary (a Merkle root over
//! its usage records, [`crate::usage`]). It also carries the chain hash at each checkpoint
//! of its span, every evidence public key, names for people, and a detached JWS (EdDSA) over
//! the RFC 8785 canonical form of the bundle without its `signature`. The format is
//! specified in `docs/evidence-bundle.md`.
//!
//! [`sign`] is the server's half; [`verify`] checks a bundle offline, in the order of the
//! specification, and names the first wrong place; [`check_checkpoints`] and
//! [`check_extends`] compare a verified bundle with the auditor's checkpoints and with an
//! earlier bundle. [`parse`] reads bundle text and rejects duplicate object members, which
//! other JSON readers resolve differently.

use crate::action;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_lc_rs::signature::{ED25519, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::canonical::{CanonicalError, canonical_json};
use crate::chain::{AuditRecord, ChainHead, SUBJECT_PREV, record_hash};
use crate::usage::UsageSummary;

/// The `format` of the bundles this module signs and verifies.
pub const FORMAT: &str = "charter-evidence/2";

/// The only JWS algorithm of this format.
pub const ALG: &str = "EdDSA";

/// The members of a bundle, all required, no others allowed.
const MEMBERS: [&str; 10] = [
    "format",
    "subject",
    "issuer",
    "generated_at",
    "names",
    "statements",
    "events",
    "checkpoints",
    "keys",
    "signature",
];

/// Why a bundle does not verify. The `Display` form names the first wrong place, e.g.
/// `signature: does not verify`, `event 57: hash mismatch`, `sub-chain of grt_…: record 41 follows record 5e1c…, which
/// the bundle does not carry …`,
/// `statement st-4: facts.actor differs from event 57`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The text is not JSON at all (only from [`parse`]).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The bundle's shape: `format`, a missing or unknown member, a member of the wrong type.
    #[error("{place}: {reason}")]
    Shape { place: String, reason: String },
    /// The JWS: its form, header, key, or the signature itself.
    #[error("signature: {0}")]
    Signature(String),
    /// The public keys.
    #[error("keys: {0}")]
    Keys(String),
    /// The events as a list (order, duplicates).
    #[error("events: {0}")]
    Events(String),
    /// One event: its hash, body, or place in the chain.
    #[error("event {seq}: {reason}")]
    Event { seq: u64, reason: String },
    /// A subject's sub-chain: a missing, foreign or unstated lifecycle record.
    #[error("sub-chain of {subject}: {reason}")]
    SubChain { subject: String, reason: String },
    /// The bundle disagrees with one of the auditor's checkpoints (its seq).
    #[error("checkpoint {seq}: {reason}")]
    Checkpoint { seq: u64, reason: String },
    /// `--checkpoint` gave no checkpoint within the bundle's span: nothing to hold it to.
    #[error(
        "checkpoints: none of the {given} given lies within the bundle's span (records {first}..{head}): nothing to hold the bundle to; use checkpoints made after the subject's first record"
    )]
    NoCheckpointInSpan { first: u64, head: u64, given: usize },
    /// The bundle does not extend an earlier bundle of its subject.
    #[error("previous bundle: {0}")]
    Previous(String),
    /// One statement: its cited events or facts.
    #[error("statement {id}: {reason}")]
    Statement { id: String, reason: String },
    /// The bundle has no RFC 8785 canonical form (an integer beyond ±2^53).
    #[error("bundle: no canonical form: {0}")]
    Canonical(String),
}

impl From<CanonicalError> for BundleError {
    fn from(e: CanonicalError) -> Self {
        Self::Canonical(e.to_string())
    }
}

fn shape(place: impl Into<String>, reason: impl Into<String>) -> BundleError {
    BundleError::Shape {
        place: place.into(),
        reason: reason.into(),
    }
}

fn sig_err(reason: impl Into<String>) -> BundleError {
    BundleError::Signature(reason.into())
}

fn event_err(seq: u64, reason: impl Into<String>) -> BundleError {
    BundleError::Event {
        seq,
        reason: reason.into(),
    }
}

fn statement_err(id: &str, reason: impl Into<String>) -> BundleError {
    BundleError::Statement {
        id: id.to_owned(),
        reason: reason.into(),
    }
}

/// What a valid bundle is about, as [`verify`] found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// `grant` or `partner`.
    pub subject_type: String,
    pub subject_id: String,
    /// How many statements of each kind.
    pub statements_by_kind: BTreeMap<String, usize>,
    /// How many audit events the bundle carries.
    pub events: usize,
    /// The bundle's head: its `evidence.issue` record.
    pub head: ChainHead,
    /// The seqs of each sub-chain the bundle carries, by subject id, ascending.
    pub subchains: BTreeMap<String, Vec<u64>>,
    /// The committed usage summary of each grant.
    pub usage: BTreeMap<String, UsageSummary>,
    /// The evidence key that signed the bundle.
    pub kid: String,
    pub generated_at: String,
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Parses bundle text into a JSON value, rejecting duplicate object members anywhere
/// (RFC 8785 requires I-JSON: a bundle with duplicates could mean one thing to the verifier
/// and another to the reader's JSON tool).
///
/// # Errors
///
/// [`BundleError::NotJson`] for text that is not JSON, [`BundleError::Shape`] (place
/// `bundle`) for a duplicate member.
pub fn parse(text: &str) -> Result<Value, BundleError> {
    match serde_json::from_str::<Strict>(text) {
        Ok(Strict(v)) => Ok(v),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(shape("bundle", e.to_string()))
        }
        Err(e) => Err(BundleError::NotJson(e.to_string())),
    }
}

/// A JSON value whose objects have no duplicate members.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate member {key:?}")));
            }
            let Strict(v) = map.next_value()?;
            members.insert(key, v);
        }
        Ok(Value::Object(members))
    }
}

// ---------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------

/// The exact text that is signed: `<header_b64>.<base64url(payload)>`, where the payload is
/// the RFC 8785 canonical form of `bundle` without its `signature` member (if it has one).
///
/// # Errors
///
/// [`BundleError::Shape`] if `bundle` is not an object, [`BundleError::Canonical`] if it has
/// no canonical form.
pub fn signing_input(bundle: &Value, header_b64: &str) -> Result<String, BundleError> {
    let mut members = bundle
        .as_object()
        .ok_or_else(|| shape("bundle", "not a JSON object"))?
        .clone();
    members.remove("signature");
    let payload = canonical_json(&Value::Object(members))?;
    Ok(format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(payload)))
}

/// Signs `bundle` (its `signature` member, if any, is left out): builds the protected header
/// `{"alg":"EdDSA","kid":kid,"b64":true}`, calls `sign` with the bytes of the
/// [`signing_input`] and returns the detached compact JWS `<header_b64>..<signature_b64>`,
/// the value of the bundle's `signature`. `sign` must return a raw Ed25519 signature made
/// with the key `kid` names.
///
/// # Errors
///
/// As for [`signing_input`].
pub fn sign(
    bundle: &Value,
    kid: &str,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<String, BundleError> {
    let header = canonical_json(&serde_json::json!({ "alg": ALG, "kid": kid, "b64": true }))?;
    let header_b64 = URL_SAFE_NO_PAD.encode(header);
    let input = signing_input(bundle, &header_b64)?;
    let signature = sign(input.as_bytes());
    Ok(format!(
        "{header_b64}..{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

/// Verifies a bundle offline, in the order of `docs/evidence-bundle.md`:
///
/// 1. `format` is `charter-evidence/2` and the bundle has exactly the members of the format;
/// 2. the signature verifies with the key in `keys` the JWS header names (`alg` `EdDSA`);
/// 3. every event's hash is the SHA-256 of its body, which is a canonical audit record with
///    that `seq`; events ascend by `seq`;
/// 4. the last event is the bundle's `evidence.issue` record about its subject; from it, and
///    from every head it commits, each sub-chain links back (`details.subject_prev`) through
///    events the bundle carries to its subject's creation record;
/// 5. every statement's cited events are in the bundle and its `facts` match them; every
///    lifecycle event on a sub-chain is stated; each usage statement is the committed
///    summary.
///
/// # Errors
///
/// The first failure, naming its place (see [`BundleError`]).
pub fn verify(bundle: &Value) -> Result<Summary, BundleError> {
    let members = check_members(bundle)?;
    let subject: Subject = member(members, "subject")?;
    if subject.kind != "grant" && subject.kind != "partner" {
        return Err(shape(
            "subject",
            format!("type is {:?}, not grant or partner", subject.kind),
        ));
    }
    let generated_at = string_member(members, "generated_at")?;
    check_names(members)?;
    check_checkpoint_list(members)?;
    let kid = check_signature(bundle, members)?;
    let events = check_events(members)?;
    let chains = check_subchains(&subject.id, &events)?;
    let statements_by_kind = check_statements(members, &events, &chains)?;
    Ok(Summary {
        subject_type: subject.kind,
        subject_id: subject.id,
        statements_by_kind,
        events: events.len(),
        head: chains.head.clone(),
        subchains: chains.seqs_by_subject(),
        usage: chains.usage,
        kid,
        generated_at,
    })
}

/// Step 1: the format and the set of members.
fn check_members(bundle: &Value) -> Result<&Map<String, Value>, BundleError> {
    let members = bundle
        .as_object()
        .ok_or_else(|| shape("bundle", "not a JSON object"))?;
    match members.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(Value::String(f)) => {
            return Err(shape("format", format!("{f:?} is not {FORMAT:?}")));
        }
        Some(_) => return Err(shape("format", "not a string")),
        None => return Err(shape("format", "missing")),
    }
    if let Some(unknown) = members.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(shape("bundle", format!("unknown member {unknown:?}")));
    }
    if let Some(missing) = MEMBERS.iter().find(|k| !members.contains_key(**k)) {
        return Err(shape(*missing, "missing"));
    }
    for name in ["issuer", "generated_at", "signature"] {
        if !members.get(name).is_some_and(Value::is_string) {
            return Err(shape(name, "not a string"));
        }
    }
    for name in ["statements", "events", "checkpoints", "keys"] {
        if !members.get(name).is_some_and(Value::is_array) {
            return Err(shape(name, "not an array"));
        }
    }
    Ok(members)
}

fn string_member(members: &Map<String, Value>, name: &str) -> Result<String, BundleError> {
    members
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| shape(name, "not a string"))
}

fn member<T: serde::de::DeserializeOwned>(
    members: &Map<String, Value>,
    name: &str,
) -> Result<T, BundleError> {
    let value = members.get(name).unwrap_or(&Value::Null);
    T::deserialize(value).map_err(|e| shape(name, e.to_string()))
}

fn array<'a>(members: &'a Map<String, Value>, name: &str) -> &'a [Value] {
    members
        .get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// Step 2: the detached JWS. Returns the kid that signed.
fn check_signature(bundle: &Value, members: &Map<String, Value>) -> Result<String, BundleError> {
    let jws = string_member(members, "signature")?;
    verify_detached(bundle, &jws, array(members, "keys"))
}

/// Verifies a detached EdDSA JWS (`<header>..<signature>`, as [`sign`] makes it) over the
/// canonical form of `value` without its `signature` member, with the key of `keys` (public
/// JWKs) that the header's `kid` names. Returns that kid. Shared by bundles and audit
/// checkpoints.
///
/// # Errors
///
/// [`BundleError::Signature`] or [`BundleError::Keys`] naming what is wrong.
pub fn verify_detached(value: &Value, jws: &str, keys: &[Value]) -> Result<String, BundleError> {
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(payload), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(sig_err(
            "not a compact JWS with a detached payload (header..signature)",
        ));
    };
    if !payload.is_empty() {
        return Err(sig_err("the payload part is not empty (it is detached)"));
    }
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| sig_err("the header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&header_bytes).map_err(|_| sig_err("the header is not JSON"))?;
    let header = header
        .as_object()
        .ok_or_else(|| sig_err("the header is not a JSON object"))?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALG => {}
        Some(other) => return Err(sig_err(format!("alg is {other}, not \"{ALG}\""))),
        None => return Err(sig_err("the header has no alg")),
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| sig_err("the header has no kid"))?;
    if header.get("b64").is_some_and(|b| b != &Value::Bool(true)) {
        return Err(sig_err("b64 must be true"));
    }
    if let Some(crit) = header.get("crit") {
        let understood = crit
            .as_array()
            .is_some_and(|c| c.iter().all(|p| p.as_str() == Some("b64")));
        if !understood {
            return Err(sig_err(format!(
                "unsupported critical header parameters {crit}"
            )));
        }
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| sig_err("the signature part is not base64url"))?;
    let public_key = find_key(keys, kid)?;
    let input = signing_input(value, header_b64)?;
    UnparsedPublicKey::new(&ED25519, &public_key)
        .verify(input.as_bytes(), &signature)
        .map_err(|_| sig_err("does not verify"))?;
    Ok(kid.to_owned())
}

/// The raw Ed25519 public key of the JWK in `keys` with this kid.
fn find_key(keys: &[Value], kid: &str) -> Result<Vec<u8>, BundleError> {
    let mut found: Option<&Map<String, Value>> = None;
    for (i, key) in keys.iter().enumerate() {
        let (key_kid, key) = key_with_kid(i, key)?;
        if key_kid == kid {
            if found.is_some() {
                return Err(BundleError::Keys(format!("kid {kid:?} appears twice")));
            }
            found = Some(key);
        }
    }
    let key = found.ok_or_else(|| sig_err(format!("no key in keys has kid {kid:?}")))?;
    ed25519_public_key(kid, key)
}

/// Checks a whole list of evidence public keys as [`verify_detached`] reads each one: a JSON
/// object with a `kid`, no `kid` twice, every key an Ed25519 public key, its signing period
/// (`not_before`, `not_after`, when present) RFC 3339 and in order. For a set of keys an
/// auditor pins (`--keys`), so a bad key file is refused before anything is verified with it.
///
/// # Errors
///
/// [`BundleError::Keys`] naming the first bad key.
pub fn check_keys(keys: &[Value]) -> Result<(), BundleError> {
    let mut seen = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        let (kid, key) = key_with_kid(i, key)?;
        if !seen.insert(kid) {
            return Err(BundleError::Keys(format!("kid {kid:?} appears twice")));
        }
        ed25519_public_key(kid, key)?;
        key_period(kid, key)?;
    }
    Ok(())
}

/// Reads the evidence public keys an auditor pins: the body of
/// `/.well-known/charter-evidence-keys` (`{"keys": […]}`), or a bare array of JWKs, each
/// checked by [`check_keys`].
///
/// # Errors
///
/// [`BundleError::Keys`] naming the first thing wrong.
pub fn parse_pinned_keys(value: &Value) -> Result<Vec<Value>, BundleError> {
    let wrong = || BundleError::Keys("expected {\"keys\": [...]} or an array of JWKs".into());
    let list = match value {
        Value::Array(list) => list,
        Value::Object(o) => o.get("keys").and_then(Value::as_array).ok_or_else(wrong)?,
        _ => return Err(wrong()),
    };
    check_keys(list)?;
    Ok(list.clone())
}

/// The period a published evidence key signs in: from `not_before` to `not_after`, both
/// inclusive, RFC 3339. `not_after` is `null` (or absent) for the key that signs now; a
/// key without `not_before` has no lower bound (a key an auditor pinned by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPeriod {
    pub not_before: Option<jiff::Timestamp>,
    pub not_after: Option<jiff::Timestamp>,
}

impl KeyPeriod {
    fn holds(&self, at: jiff::Timestamp) -> bool {
        self.not_before.is_none_or(|t| t <= at) && self.not_after.is_none_or(|t| at <= t)
    }
}

impl fmt::Display for KeyPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.not_before {
            Some(t) => write!(f, "{t}")?,
            None => f.write_str("the beginning")?,
        }
        match self.not_after {
            Some(t) => write!(f, " to {t}"),
            None => f.write_str(" to now (the current key)"),
        }
    }
}

/// The signing period a key of a key list carries (`not_before`, `not_after`).
fn key_period(kid: &str, key: &Map<String, Value>) -> Result<KeyPeriod, BundleError> {
    let bound = |name: &str| -> Result<Option<jiff::Timestamp>, BundleError> {
        match key.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => t.parse().map(Some).map_err(|_| {
                BundleError::Keys(format!("key {kid}: {name} is not an RFC 3339 timestamp"))
            }),
            Some(_) => Err(BundleError::Keys(format!(
                "key {kid}: {name} is not a string"
            ))),
        }
    };
    let period = KeyPeriod {
        not_before: bound("not_before")?,
        not_after: bound("not_after")?,
    };
    if let (Some(from), Some(to)) = (period.not_before, period.not_after)
        && to < from
    {
        return Err(BundleError::Keys(format!(
            "key {kid}: not_after is before not_before"
        )));
    }
    Ok(period)
}

/// Checks that the key `kid` of `keys` signed at `at` (RFC 3339) within its period. Shared
/// by bundles (`generated_at`) and checkpoints (`at`).
///
/// # Errors
///
/// A sentence saying why not (for a [`BundleError::Signature`]).
pub fn check_signed_in_period(keys: &[Value], kid: &str, at: &str) -> Result<KeyPeriod, String> {
    let key = keys
        .iter()
        .filter_map(Value::as_object)
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or_else(|| format!("no key in keys has kid {kid:?}"))?;
    let period = key_period(kid, key).map_err(|e| e.to_string())?;
    if period.not_before.is_none() && period.not_after.is_none() {
        return Ok(period);
    }
    let when: jiff::Timestamp = at
        .parse()
        .map_err(|_| format!("signed at {at:?}, which is not an RFC 3339 timestamp"))?;
    if period.holds(when) {
        Ok(period)
    } else {
        Err(format!(
            "{kid} signed at {at}, outside its signing period ({period})"
        ))
    }
}

/// [`verify`], and then authenticates the signer against keys the auditor pinned (as
/// [`parse_pinned_keys`] reads them; the saved `/.well-known/charter-evidence-keys`):
///
/// 6. the signature verifies with the pinned key of its kid (matched by kid *and* key
///    material — the bundle's own copy of the key is not trusted);
/// 7. every key the bundle brings is pinned, with the same key material;
/// 8. `generated_at` lies within the signing key's period (`not_before`..`not_after`).
///
/// Without this, [`verify`] proves only that whoever holds the embedded key signed: anyone
/// can make a bundle that passes.
///
/// # Errors
///
/// The first failure: [`verify`]'s, then [`BundleError::Signature`] or
/// [`BundleError::Keys`] naming the key.
pub fn verify_pinned(bundle: &Value, pinned: &[Value]) -> Result<Summary, BundleError> {
    check_keys(pinned)?;
    let summary = verify(bundle)?;
    let members = check_members(bundle)?;
    let kid = summary.kid.as_str();
    if find_key(pinned, kid).is_err() {
        return Err(sig_err(format!(
            "signed by {kid:?}, which is not a pinned key"
        )));
    }
    let jws = string_member(members, "signature")?;
    verify_detached(bundle, &jws, pinned).map_err(|e| match e {
        BundleError::Signature(why) => sig_err(format!("{why} with the pinned key {kid:?}")),
        other => other,
    })?;
    for (i, key) in array(members, "keys").iter().enumerate() {
        let (key_kid, key) = key_with_kid(i, key)?;
        let material = ed25519_public_key(key_kid, key)?;
        match find_key(pinned, key_kid) {
            Ok(pinned_material) if pinned_material == material => {}
            Ok(_) => {
                return Err(BundleError::Keys(format!(
                    "key {key_kid} in the bundle is not the pinned key of that kid"
                )));
            }
            Err(_) => {
                return Err(BundleError::Keys(format!(
                    "key {key_kid} in the bundle is not pinned"
                )));
            }
        }
    }
    check_signed_in_period(pinned, kid, &summary.generated_at).map_err(sig_err)?;
    Ok(summary)
}

/// The `i`-th (0-based) key of a list as an object, with its `kid`.
fn key_with_kid(i: usize, key: &Value) -> Result<(&str, &Map<String, Value>), BundleError> {
    let key = key
        .as_object()
        .ok_or_else(|| BundleError::Keys(format!("key {} is not a JSON object", i + 1)))?;
    let kid = key
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| BundleError::Keys(format!("key {} has no kid", i + 1)))?;
    Ok((kid, key))
}

/// The raw Ed25519 public key of the JWK `key` (whose kid is `kid`).
fn ed25519_public_key(kid: &str, key: &Map<String, Value>) -> Result<Vec<u8>, BundleError> {
    let bad = |reason: &str| BundleError::Keys(format!("key {kid}: {reason}"));
    if key.get("kty").and_then(Value::as_str) != Some("OKP")
        || key.get("crv").and_then(Value::as_str) != Some("Ed25519")
    {
        return Err(bad("not an Ed25519 key (kty OKP, crv Ed25519)"));
    }
    if key.get("alg").is_some_and(|a| a.as_str() != Some(ALG)) {
        return Err(bad("alg is not EdDSA"));
    }
    let x = key
        .get("x")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no x"))?;
    let x = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|_| bad("x is not base64url"))?;
    let Ok(point) = <[u8; 32]>::try_from(x.as_slice()) else {
        return Err(bad("x is not 32 bytes"));
    };
    let mut y = point;
    y[31] &= 0x7f;
    // A non-canonical encoding (y >= p = 2^255 - 19; RFC 8032 §5.1.3).
    let y_at_least_p = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed;
    if y_at_least_p {
        return Err(bad("x is not a point on Ed25519"));
    }
    if SMALL_ORDER_Y.contains(&y) {
        return Err(bad(
            "x is a small-order point, which would accept forged signatures",
        ));
    }
    if ParsedPublicKey::new(&ED25519, point).is_err() {
        return Err(bad("x is not a point on Ed25519"));
    }
    Ok(x)
}

/// The y-coordinates (sign bit cleared) of the Ed25519 points of small order: 1, 2, 4 and 8.
/// A public key among them lets anyone forge signatures, and aws-lc does not refuse them. The
/// same table guards keys from outside in `charter-auth` (`jwk.rs`), which this crate may not
/// depend on.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    },
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    {
        // p - 1 = 2^255 - 20
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        p_minus_1
    },
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventEntry {
    seq: u64,
    hash: String,
    body: String,
}

/// A verified event: its stored hash and parsed record.
struct Event {
    hash: String,
    rec: AuditRecord,
}

/// Step 3: every event is an intact, canonical audit record; ascending, no duplicates.
fn check_events(members: &Map<String, Value>) -> Result<BTreeMap<u64, Event>, BundleError> {
    let mut events: BTreeMap<u64, Event> = BTreeMap::new();
    let mut last: Option<u64> = None;
    for (i, raw) in array(members, "events").iter().enumerate() {
        let entry = EventEntry::deserialize(raw)
            .map_err(|e| shape(format!("events[{i}]"), e.to_string()))?;
        let seq = entry.seq;
        if let Some(last) = last.filter(|l| *l >= seq) {
            return Err(BundleError::Events(if last == seq {
                format!("event {seq} appears twice")
            } else {
                format!("event {seq} is out of order (after event {last}; events ascend by seq)")
            }));
        }
        last = Some(seq);
        if record_hash(&entry.body) != entry.hash {
            return Err(event_err(seq, "hash mismatch"));
        }
        let rec: AuditRecord = serde_json::from_str(&entry.body)
            .map_err(|e| event_err(seq, format!("body is not a valid audit record: {e}")))?;
        let canonical = rec
            .canonical()
            .map_err(|e| event_err(seq, format!("body has no canonical form: {e}")))?;
        if canonical != entry.body {
            return Err(event_err(seq, "body is not in canonical form"));
        }
        if rec.seq != seq {
            return Err(event_err(seq, format!("body seq is {}", rec.seq)));
        }
        events.insert(
            seq,
            Event {
                hash: entry.hash,
                rec,
            },
        );
    }
    Ok(events)
}

/// `names`: an object of id → name, for people; not checked against events.
fn check_names(members: &Map<String, Value>) -> Result<(), BundleError> {
    let names = members
        .get("names")
        .and_then(Value::as_object)
        .ok_or_else(|| shape("names", "not an object"))?;
    if let Some((id, _)) = names.iter().find(|(_, v)| !v.is_string()) {
        return Err(shape(
            "names",
            format!("the name of {id:?} is not a string"),
        ));
    }
    Ok(())
}

/// One entry of `checkpoints`: the chain hash the server's database held at a checkpoint's
/// seq when the bundle was made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainAt {
    seq: u64,
    hash: String,
}

fn checkpoint_list(members: &Map<String, Value>) -> Result<Vec<ChainAt>, BundleError> {
    let mut out: Vec<ChainAt> = Vec::new();
    for (i, raw) in array(members, "checkpoints").iter().enumerate() {
        let at = ChainAt::deserialize(raw)
            .map_err(|e| shape(format!("checkpoints[{i}]"), e.to_string()))?;
        if out.last().is_some_and(|l| l.seq >= at.seq) {
            return Err(shape(
                format!("checkpoints[{i}]"),
                "entries ascend by seq, no seq twice",
            ));
        }
        out.push(at);
    }
    Ok(out)
}

/// Step 1 (shape of `checkpoints`).
fn check_checkpoint_list(members: &Map<String, Value>) -> Result<(), BundleError> {
    checkpoint_list(members).map(|_| ())
}

/// The first action of each kind of subject's sub-chain.
const CREATIONS: &[&str] = &[
    action::GRANT_REQUEST,
    action::GRANT_EMERGENCY_OPEN,
    action::PARTNER_CREATE,
    action::CREDENTIAL_ISSUE,
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadRef {
    seq: u64,
    hash: String,
}

/// `details` of the `evidence.issue` record that heads a bundle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueDetails {
    /// The heads of the other sub-chains the bundle carries (credentials, the partner, the
    /// grants of a partner bundle), by subject id.
    heads: BTreeMap<String, HeadRef>,
    /// The committed usage summary of each grant the bundle is about.
    usage: BTreeMap<String, UsageSummary>,
    #[allow(dead_code)]
    subject_prev: Option<String>,
}

/// The sub-chains of a bundle, as step 4 walked them.
struct Chains {
    /// The `evidence.issue` record.
    head: ChainHead,
    /// seq → subject, for every event on a sub-chain.
    on_chain: BTreeMap<u64, String>,
    /// The committed usage summaries.
    usage: BTreeMap<String, UsageSummary>,
}

impl Chains {
    fn seqs_by_subject(&self) -> BTreeMap<String, Vec<u64>> {
        let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (seq, subject) in &self.on_chain {
            out.entry(subject.clone()).or_default().push(*seq);
        }
        out
    }
}

fn chain_err(subject: &str, reason: impl Into<String>) -> BundleError {
    BundleError::SubChain {
        subject: subject.to_owned(),
        reason: reason.into(),
    }
}

/// Step 4: the bundle's head is its `evidence.issue` record about the subject; every
/// sub-chain it commits (its own, and `details.heads`) links back, event by event, to its
/// subject's creation record; no lifecycle event of those subjects lies off its sub-chain.
fn check_subchains(subject: &str, events: &BTreeMap<u64, Event>) -> Result<Chains, BundleError> {
    let Some((&issue_seq, issue)) = events.iter().next_back() else {
        return Err(chain_err(subject, "the bundle carries no events"));
    };
    if issue.rec.action != action::EVIDENCE_ISSUE || issue.rec.target != subject {
        return Err(chain_err(
            subject,
            format!(
                "the last event ({issue_seq}, {} about {:?}) is not the bundle's evidence.issue record about its subject",
                issue.rec.action, issue.rec.target
            ),
        ));
    }
    let details = IssueDetails::deserialize(&issue.rec.details)
        .map_err(|e| event_err(issue_seq, format!("details of evidence.issue: {e}")))?;
    let by_hash: BTreeMap<&str, u64> = events
        .iter()
        .map(|(seq, e)| (e.hash.as_str(), *seq))
        .collect();
    let mut heads: Vec<(String, u64, String)> =
        vec![(subject.to_owned(), issue_seq, issue.hash.clone())];
    for (id, h) in &details.heads {
        if id == subject {
            return Err(event_err(
                issue_seq,
                "details.heads names the bundle's own subject",
            ));
        }
        heads.push((id.clone(), h.seq, h.hash.clone()));
    }
    let mut on_chain: BTreeMap<u64, String> = BTreeMap::new();
    for (id, seq, hash) in &heads {
        let head = events.get(seq).filter(|e| &e.hash == hash).ok_or_else(|| {
            chain_err(
                id,
                format!("its head, record {seq}, is not in the bundle (or has another hash)"),
            )
        })?;
        let mut cur = (*seq, head);
        loop {
            let (seq, event) = cur;
            if event.rec.target != *id || !action::on_subject_chain(&event.rec.action, id) {
                return Err(chain_err(
                    id,
                    format!(
                        "record {seq} ({} about {:?}) is not a lifecycle record of this subject",
                        event.rec.action, event.rec.target
                    ),
                ));
            }
            if on_chain.insert(seq, id.clone()).is_some() {
                return Err(chain_err(id, format!("record {seq} is on two sub-chains")));
            }
            let link = event.rec.details.get(SUBJECT_PREV).ok_or_else(|| {
                chain_err(
                    id,
                    format!(
                        "record {seq} carries no details.subject_prev (written before sub-chains?)"
                    ),
                )
            })?;
            match link {
                Value::Null => {
                    if !CREATIONS.contains(&event.rec.action.as_str()) {
                        return Err(chain_err(
                            id,
                            format!(
                                "starts at record {seq} ({}), not at the subject's creation record",
                                event.rec.action
                            ),
                        ));
                    }
                    break;
                }
                Value::String(prev) => {
                    let short: String = prev.chars().take(12).collect();
                    let prev_seq = *by_hash.get(prev.as_str()).ok_or_else(|| {
                        chain_err(
                            id,
                            format!(
                                "record {seq} follows record {short}…, which the bundle does not carry: an event of the subject was left out"
                            ),
                        )
                    })?;
                    if prev_seq >= seq {
                        return Err(chain_err(
                            id,
                            format!("record {seq} links forward to record {prev_seq}"),
                        ));
                    }
                    let prev_event = events.get(&prev_seq).ok_or_else(|| {
                        chain_err(id, format!("record {prev_seq} is not in the bundle"))
                    })?;
                    cur = (prev_seq, prev_event);
                }
                _ => {
                    return Err(chain_err(
                        id,
                        format!("record {seq}: details.subject_prev is neither a hash nor null"),
                    ));
                }
            }
        }
    }
    // Every lifecycle record of these subjects that the bundle carries is on its sub-chain.
    let subjects: BTreeSet<&str> = heads.iter().map(|(id, _, _)| id.as_str()).collect();
    for (seq, event) in events {
        let about = event.rec.target.as_str();
        if subjects.contains(about)
            && action::on_subject_chain(&event.rec.action, about)
            && !on_chain.contains_key(seq)
        {
            return Err(chain_err(
                about,
                format!(
                    "record {seq} ({}) is not on the subject's sub-chain",
                    event.rec.action
                ),
            ));
        }
    }
    Ok(Chains {
        head: ChainHead {
            seq: issue_seq,
            hash: issue.hash.clone(),
        },
        on_chain,
        usage: details.usage,
    })
}

// ---------------------------------------------------------------------------------------
// Against the auditor's checkpoints, and an earlier bundle
// ---------------------------------------------------------------------------------------

/// What [`check_checkpoints`] compared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointAgreement {
    /// Seqs of the auditor's checkpoints the bundle agrees with.
    pub agreed: Vec<u64>,
    /// Checkpoints outside the bundle's span (before its subject's first record or after
    /// its head): nothing to compare.
    pub outside: usize,
}

/// Checks a verified bundle against the auditor's own checkpoints (`--checkpoint FILE`):
/// for every checkpoint whose seq lies from the subject's first record to the bundle's head,
/// the bundle must record the chain hash at that seq, equal to the checkpoint's (and an
/// event at that seq must have that hash). A chain rewritten after the checkpoint holds
/// another hash there; one that no longer announces the checkpoint leaves it out. The
/// checkpoints' own signatures are checked by the caller.
///
/// # Errors
///
/// [`BundleError::Checkpoint`] naming the first checkpoint the bundle does not agree with.
pub fn check_checkpoints(
    bundle: &Value,
    summary: &Summary,
    checkpoints: &[crate::checkpoint::Checkpoint],
) -> Result<CheckpointAgreement, BundleError> {
    let members = bundle
        .as_object()
        .ok_or_else(|| shape("bundle", "not a JSON object"))?;
    let recorded = checkpoint_list(members)?;
    let first = summary
        .subchains
        .get(&summary.subject_id)
        .and_then(|s| s.first())
        .copied()
        .unwrap_or(summary.head.seq);
    let events: BTreeMap<u64, String> = array(members, "events")
        .iter()
        .filter_map(|e| Some((e.get("seq")?.as_u64()?, e.get("hash")?.as_str()?.to_owned())))
        .collect();
    let mut agreed = Vec::new();
    let mut outside = 0;
    for cp in checkpoints {
        if cp.seq < first || cp.seq > summary.head.seq {
            outside += 1;
            continue;
        }
        let err = |reason: &str| BundleError::Checkpoint {
            seq: cp.seq,
            reason: reason.to_owned(),
        };
        let at = recorded.iter().find(|r| r.seq == cp.seq).ok_or_else(|| {
            err("the bundle does not record the chain there: the log it was made from no longer announces this checkpoint")
        })?;
        if at.hash != cp.hash || events.get(&cp.seq).is_some_and(|h| *h != cp.hash) {
            return Err(err(
                "the bundle's chain holds another hash there: the log was rewritten after this checkpoint",
            ));
        }
        agreed.push(cp.seq);
    }
    // A check with nothing to check is not a pass: the auditor asked to hold the bundle to
    // checkpoints, and none of them reaches its span.
    if agreed.is_empty() {
        return Err(BundleError::NoCheckpointInSpan {
            first,
            head: summary.head.seq,
            given: checkpoints.len(),
        });
    }
    Ok(CheckpointAgreement { agreed, outside })
}

/// Checks that a verified bundle extends an earlier verified bundle of the same subject:
/// the earlier bundle's head (its `evidence.issue` record) is on the new bundle's sub-chain
/// of the subject, with the same hash. A later bundle that dropped or rewrote an event the
/// earlier one carried cannot link back through it.
///
/// # Errors
///
/// [`BundleError::Previous`] saying why not.
pub fn check_extends(
    new: &Value,
    new_summary: &Summary,
    previous: &Summary,
) -> Result<(), BundleError> {
    let err = |reason: String| BundleError::Previous(reason);
    if (
        new_summary.subject_type.as_str(),
        new_summary.subject_id.as_str(),
    ) != (previous.subject_type.as_str(), previous.subject_id.as_str())
    {
        return Err(err(format!(
            "it is about {} {}, this bundle about {} {}",
            previous.subject_type,
            previous.subject_id,
            new_summary.subject_type,
            new_summary.subject_id
        )));
    }
    let on_chain = new_summary
        .subchains
        .get(&new_summary.subject_id)
        .is_some_and(|s| s.contains(&previous.head.seq));
    let same_hash = array(new.as_object().unwrap_or(&Map::new()), "events")
        .iter()
        .any(|e| {
            e.get("seq").and_then(Value::as_u64) == Some(previous.head.seq)
                && e.get("hash").and_then(Value::as_str) == Some(previous.head.hash.as_str())
        });
    if !(on_chain && same_hash) {
        return Err(err(format!(
            "its head, record {}, is not on this bundle's sub-chain of {}: this bundle does not extend it",
            previous.head.seq, previous.subject_id
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement {
    id: String,
    kind: String,
    grant: String,
    /// For people; the verifier checks `facts`, not this text.
    #[allow(dead_code)]
    text: String,
    facts: Map<String, Value>,
    events: Vec<u64>,
}

/// Step 5: every statement's cited events exist and its facts match them. Returns the
/// number of statements of each kind.
fn check_statements(
    members: &Map<String, Value>,
    events: &BTreeMap<u64, Event>,
    chains: &Chains,
) -> Result<BTreeMap<String, usize>, BundleError> {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    // (seq, kind) of every citation, for the coverage check; grants whose usage is stated.
    let mut stated: BTreeSet<(u64, &'static str)> = BTreeSet::new();
    let mut usage_stated: BTreeSet<String> = BTreeSet::new();
    for (i, raw) in array(members, "statements").iter().enumerate() {
        let place = raw.get("id").and_then(Value::as_str).map_or_else(
            || format!("statements[{i}]"),
            |id| format!("statement {id}"),
        );
        let st = Statement::deserialize(raw).map_err(|e| shape(place, e.to_string()))?;
        if !ids.insert(st.id.clone()) {
            return Err(statement_err(&st.id, "duplicate id"));
        }
        let kind = Kind::parse(&st.kind)
            .ok_or_else(|| statement_err(&st.id, format!("unknown kind {:?}", st.kind)))?;
        let mut cited: Vec<(u64, &Event)> = Vec::with_capacity(st.events.len());
        let mut seen = BTreeSet::new();
        for &seq in &st.events {
            if !seen.insert(seq) {
                return Err(statement_err(&st.id, format!("cites event {seq} twice")));
            }
            let event = events.get(&seq).ok_or_else(|| {
                statement_err(
                    &st.id,
                    format!("cites event {seq}, which is not in the bundle"),
                )
            })?;
            cited.push((seq, event));
        }
        if kind == Kind::Usage {
            check_usage(&st, chains)?;
            if !usage_stated.insert(st.grant.clone()) {
                return Err(statement_err(
                    &st.id,
                    format!("a second usage statement of {:?}", st.grant),
                ));
            }
        } else {
            check_single(&st, kind, &cited)?;
        }
        for (seq, _) in &cited {
            stated.insert((*seq, kind.name()));
        }
        *by_kind.entry(st.kind).or_default() += 1;
    }
    // Every lifecycle event on a sub-chain is stated, by a statement of its kind.
    for (seq, subject) in &chains.on_chain {
        let Some(event) = events.get(seq) else {
            continue;
        };
        if let Some(kind) = Kind::stating(&event.rec.action)
            && !stated.contains(&(*seq, kind.name()))
        {
            return Err(BundleError::SubChain {
                subject: subject.clone(),
                reason: format!(
                    "record {seq} ({}) is stated by no {} statement",
                    event.rec.action,
                    kind.name()
                ),
            });
        }
    }
    if let Some(grant) = chains.usage.keys().find(|g| !usage_stated.contains(*g)) {
        return Err(BundleError::SubChain {
            subject: grant.clone(),
            reason: "its committed usage is stated by no usage statement".into(),
        });
    }
    Ok(by_kind)
}

/// A `usage` statement: its facts are exactly the summary committed for its grant by the
/// bundle's `evidence.issue` record, which is the one event it cites.
fn check_usage(st: &Statement, chains: &Chains) -> Result<(), BundleError> {
    if st.events != [chains.head.seq] {
        return Err(statement_err(
            &st.id,
            format!(
                "a usage statement cites the evidence.issue record {} alone",
                chains.head.seq
            ),
        ));
    }
    let committed = chains
        .usage
        .get(&st.grant)
        .ok_or_else(|| statement_err(&st.id, format!("no usage of {:?} is committed", st.grant)))?;
    let committed =
        serde_json::to_value(committed).map_err(|e| statement_err(&st.id, e.to_string()))?;
    if Value::Object(st.facts.clone()) != committed {
        return Err(statement_err(
            &st.id,
            format!(
                "facts differ from the usage committed by event {}",
                chains.head.seq
            ),
        ));
    }
    Ok(())
}

/// The statement kinds of `charter-evidence/2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requested,
    Approved,
    Rejected,
    Reach,
    ApiDefinition,
    Credential,
    Usage,
    Review,
    Emergency,
    Removed,
    Offboarding,
}

/// Where a fact's value is in a cited event.
#[derive(Debug, Clone, Copy)]
enum Source {
    Actor,
    At,
    Action,
    Reason,
    Target,
    /// A path into `details`; a missing member is `null`.
    Details(&'static [&'static str]),
    /// How many of `details.checks` have `passed: true`.
    ChecksPassed,
    /// How many of `details.checks` do not.
    ChecksFailed,
}

impl Kind {
    fn parse(kind: &str) -> Option<Self> {
        Some(match kind {
            "requested" => Self::Requested,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "reach" => Self::Reach,
            "api_definition" => Self::ApiDefinition,
            "credential" => Self::Credential,
            "usage" => Self::Usage,
            "review" => Self::Review,
            "emergency" => Self::Emergency,
            "removed" => Self::Removed,
            "offboarding" => Self::Offboarding,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Reach => "reach",
            Self::ApiDefinition => "api_definition",
            Self::Credential => "credential",
            Self::Usage => "usage",
            Self::Review => "review",
            Self::Emergency => "emergency",
            Self::Removed => "removed",
            Self::Offboarding => "offboarding",
        }
    }

    /// The kind of statement a lifecycle event of this action must be cited by.
    fn stating(action: &str) -> Option<Self> {
        Some(match action {
            action::GRANT_REQUEST | action::GRANT_EMERGENCY_OPEN => Self::Requested,
            action::GRANT_APPROVE => Self::Approved,
            action::GRANT_REJECT => Self::Rejected,
            action::REVIEW_ATTEST => Self::Review,
            action::GRANT_REVOKE | action::GRANT_EXPIRE | action::GRANT_EMERGENCY_END => {
                Self::Removed
            }
            action::CREDENTIAL_ISSUE
            | action::CREDENTIAL_ROTATE
            | action::CREDENTIAL_REVOKE
            | action::CREDENTIAL_EXPIRE => Self::Credential,
            action::PARTNER_OFFBOARD => Self::Offboarding,
            _ => return None,
        })
    }

    /// The actions a cited event may have; `None`: any (the grant's state is in `details.after`).
    fn actions(self) -> Option<&'static [&'static str]> {
        Some(match self {
            Self::Requested => &[action::GRANT_REQUEST, action::GRANT_EMERGENCY_OPEN],
            Self::Approved => &[action::GRANT_APPROVE],
            Self::Rejected => &[action::GRANT_REJECT],
            Self::Reach => return None,
            Self::ApiDefinition => &[action::API_PUBLISH, action::API_REPUBLISH],
            Self::Credential => &[
                action::CREDENTIAL_ISSUE,
                action::CREDENTIAL_ROTATE,
                action::CREDENTIAL_REVOKE,
                action::CREDENTIAL_EXPIRE,
            ],
            Self::Usage => &[action::EVIDENCE_ISSUE],
            Self::Review => &[action::REVIEW_ATTEST],
            Self::Emergency => &[action::GRANT_EMERGENCY_OPEN, action::GRANT_EMERGENCY_END],
            Self::Removed => &[
                action::GRANT_REVOKE,
                action::GRANT_EXPIRE,
                action::GRANT_EMERGENCY_END,
            ],
            Self::Offboarding => &[action::PARTNER_OFFBOARD],
        })
    }

    /// The facts of a single-event kind and where each is in the cited event.
    fn facts(self) -> &'static [(&'static str, Source)] {
        use Source::{Action, Actor, At, ChecksFailed, ChecksPassed, Details, Reason, Target};
        match self {
            Self::Requested => &[("actor", Actor), ("at", At), ("action", Action)],
            Self::Approved | Self::Rejected => &[
                ("actor", Actor),
                ("at", At),
                ("justification", Details(&["justification"])),
                ("ticket", Details(&["ticket"])),
            ],
            Self::Reach => &[
                ("scopes", Details(&["after", "scopes"])),
                (
                    "data_class_ceiling",
                    Details(&["after", "data_class_ceiling"]),
                ),
                ("regions", Details(&["after", "regions"])),
                ("environments", Details(&["after", "environments"])),
                ("time_window", Details(&["after", "time_window"])),
                ("transfer_basis", Details(&["after", "transfer_basis"])),
            ],
            Self::ApiDefinition => &[
                ("revision", Details(&["after", "revision"])),
                ("operations", Details(&["after", "operations"])),
            ],
            Self::Credential => &[("credential", Target), ("action", Action), ("at", At)],
            Self::Review => &[
                ("actor", Actor),
                ("at", At),
                ("decision", Details(&["decision"])),
                ("justification", Details(&["justification"])),
            ],
            Self::Emergency => &[
                ("incident", Details(&["after", "emergency", "incident"])),
                ("at", At),
            ],
            Self::Removed => &[
                ("actor", Actor),
                ("at", At),
                ("action", Action),
                ("reason", Reason),
            ],
            Self::Offboarding => &[
                ("status", Details(&["status"])),
                ("checks_passed", ChecksPassed),
                ("checks_failed", ChecksFailed),
                ("at", At),
            ],
            Self::Usage => &[],
        }
    }
}

fn value_of(rec: &AuditRecord, source: Source) -> Value {
    let checks = rec.details.get("checks").and_then(Value::as_array);
    let passed = |checks: &[Value]| {
        checks
            .iter()
            .filter(|c| c.get("passed") == Some(&Value::Bool(true)))
            .count()
    };
    match source {
        Source::Actor => Value::String(rec.actor.clone()),
        Source::At => Value::String(rec.at.clone()),
        Source::Action => Value::String(rec.action.clone()),
        Source::Reason => rec.reason.clone().map_or(Value::Null, Value::String),
        Source::Target => Value::String(rec.target.clone()),
        Source::Details(path) => path
            .iter()
            .try_fold(&rec.details, |v, k| v.get(k))
            .cloned()
            .unwrap_or(Value::Null),
        Source::ChecksPassed => checks.map_or(Value::Null, |c| passed(c).into()),
        Source::ChecksFailed => checks.map_or(Value::Null, |c| (c.len() - passed(c)).into()),
    }
}

fn check_actions(st: &Statement, kind: Kind, cited: &[(u64, &Event)]) -> Result<(), BundleError> {
    let Some(allowed) = kind.actions() else {
        return Ok(());
    };
    for (seq, event) in cited {
        if !allowed.contains(&event.rec.action.as_str()) {
            return Err(statement_err(
                &st.id,
                format!(
                    "event {seq} is {}, not {}",
                    event.rec.action,
                    allowed.join(" or ")
                ),
            ));
        }
    }
    Ok(())
}

/// The facts of a single-event kind: every listed fact present, no others, each equal to
/// the cited event's value (the event `facts.seq` names, or the only cited one).
fn check_single(st: &Statement, kind: Kind, cited: &[(u64, &Event)]) -> Result<(), BundleError> {
    if cited.is_empty() {
        return Err(statement_err(&st.id, "cites no events"));
    }
    check_actions(st, kind, cited)?;
    let table = kind.facts();
    check_fact_names(st, table.iter().map(|(name, _)| *name), true)?;
    let (seq, event) = match st.facts.get("seq") {
        Some(named) => {
            let named = named
                .as_u64()
                .ok_or_else(|| statement_err(&st.id, "facts.seq is not a sequence number"))?;
            *cited.iter().find(|(s, _)| *s == named).ok_or_else(|| {
                statement_err(
                    &st.id,
                    format!("facts.seq {named} is not one of the cited events"),
                )
            })?
        }
        None => match cited {
            [only] => *only,
            _ => {
                return Err(statement_err(
                    &st.id,
                    format!(
                        "cites {} events; facts.seq must name the one the facts are from",
                        cited.len()
                    ),
                ));
            }
        },
    };
    if kind == Kind::Reach && event.rec.target != st.grant {
        return Err(statement_err(
            &st.id,
            format!(
                "event {seq} is about {:?}, not grant {:?}",
                event.rec.target, st.grant
            ),
        ));
    }
    for (name, source) in table {
        let value = st.facts.get(*name).unwrap_or(&Value::Null);
        if *value != value_of(&event.rec, *source) {
            return Err(statement_err(
                &st.id,
                format!("facts.{name} differs from event {seq}"),
            ));
        }
    }
    Ok(())
}

/// Every fact of the kind is present, and no other (`seq` allowed where `allow_seq`).
fn check_fact_names<'a>(
    st: &Statement,
    names: impl Iterator<Item = &'a str> + Clone,
    allow_seq: bool,
) -> Result<(), BundleError> {
    for name in names.clone() {
        if !st.facts.contains_key(name) {
            return Err(statement_err(&st.id, format!("facts.{name} missing")));
        }
    }
    for key in st.facts.keys() {
        let known = names.clone().any(|n| n == key) || (allow_seq && key == "seq");
        if !known {
            return Err(statement_err(
                &st.id,
                format!("facts.{key} is not a fact of a {} statement", st.kind),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod key_period_tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use serde_json::json;

    fn key(not_before: Value, not_after: Value) -> Value {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[3; 32]).unwrap();
        json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "evk_a", "alg": "EdDSA",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            "not_before": not_before, "not_after": not_after,
        })
    }

    #[test]
    fn a_key_signs_only_within_its_period() {
        let retired = vec![key(
            json!("2026-11-01T00:00:00Z"),
            json!("2026-11-30T00:00:00Z"),
        )];
        check_keys(&retired).unwrap();
        for inside in [
            "2026-11-01T00:00:00Z",
            "2026-11-15T12:00:00Z",
            "2026-11-30T00:00:00Z",
        ] {
            assert!(
                check_signed_in_period(&retired, "evk_a", inside).is_ok(),
                "{inside}"
            );
        }
        for outside in ["2026-10-31T23:59:59Z", "2026-11-30T00:00:01Z"] {
            let why = check_signed_in_period(&retired, "evk_a", outside).unwrap_err();
            assert!(why.contains("outside its signing period"), "{why}");
        }
        assert!(check_signed_in_period(&retired, "evk_a", "yesterday").is_err());
        assert!(check_signed_in_period(&retired, "evk_b", "2026-11-15T12:00:00Z").is_err());
        let current = vec![key(json!("2026-11-01T00:00:00Z"), Value::Null)];
        assert!(check_signed_in_period(&current, "evk_a", "2036-01-01T00:00:00Z").is_ok());
    }

    #[test]
    fn a_malformed_period_is_refused_with_the_keys() {
        for (nb, na, why) in [
            (
                json!("soon"),
                Value::Null,
                "not_before is not an RFC 3339 timestamp",
            ),
            (json!(5), Value::Null, "not_before is not a string"),
            (
                json!("2026-11-30T00:00:00Z"),
                json!("2026-11-01T00:00:00Z"),
                "not_after is before not_before",
            ),
        ] {
            let err = check_keys(&[key(nb, na)]).unwrap_err().to_string();
            assert_eq!(err, format!("keys: key evk_a: {why}"));
        }
    }
}
