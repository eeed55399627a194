//! Evidence bundles (`charter-evidence/1`): signing and offline verification.
//!
//! A bundle states, for one grant or one partner, who requested and approved access, what
//! it could reach, its credentials, usage, reviews and removal. Each statement cites audit
//! events; the bundle carries those events verbatim, the chain links that tie them to the
//! log up to its head, every evidence public key, and a detached JWS (EdDSA) over the RFC
//! 8785 canonical form of the bundle without its `signature`. The format is specified in
//! `docs/evidence-bundle.md`.
//!
//! [`sign`] is the server's half; [`verify`] checks a bundle offline, in the order of the
//! specification, and names the first wrong place. [`parse`] reads bundle text and rejects
//! duplicate object members, which other JSON readers resolve differently.

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
use crate::chain::{AuditRecord, ChainHead, GENESIS_HASH, record_hash};

/// The `format` of the bundles this module signs and verifies.
pub const FORMAT: &str = "charter-evidence/1";

/// The only JWS algorithm of this format.
pub const ALG: &str = "EdDSA";

/// The members of a bundle, all required, no others allowed.
const MEMBERS: [&str; 10] = [
    "format",
    "subject",
    "issuer",
    "generated_at",
    "statements",
    "events",
    "links",
    "head",
    "keys",
    "signature",
];

/// Why a bundle does not verify. The `Display` form names the first wrong place, e.g.
/// `signature: does not verify`, `event 57: hash mismatch`, `links: gap at seq 41`,
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
    /// The chain links and head.
    #[error("links: {0}")]
    Links(String),
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
    /// The chain head the bundle was linked to.
    pub head: ChainHead,
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
/// 1. `format` is `charter-evidence/1` and the bundle has exactly the members of the format;
/// 2. the signature verifies with the key in `keys` the JWS header names (`alg` `EdDSA`);
/// 3. every event's hash is the SHA-256 of its body, which is a canonical audit record with
///    that `seq`; events ascend by `seq`;
/// 4. links are contiguous, cover the events and end at `head`; each event's `prev` and
///    hash match the links;
/// 5. every statement's cited events are in the bundle and its `facts` match them.
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
    let kid = check_signature(bundle, members)?;
    let events = check_events(members)?;
    let head = check_links(members, &events)?;
    let statements_by_kind = check_statements(members, &events)?;
    Ok(Summary {
        subject_type: subject.kind,
        subject_id: subject.id,
        statements_by_kind,
        events: events.len(),
        head,
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
    for name in ["statements", "events", "links", "keys"] {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    seq: u64,
    hash: String,
}

/// Step 4: links contiguous from the first event's predecessor to `head`, and every event
/// in its place. Returns the head.
fn check_links(
    members: &Map<String, Value>,
    events: &BTreeMap<u64, Event>,
) -> Result<ChainHead, BundleError> {
    let head: Link = member(members, "head")?;
    let mut links: Vec<Link> = Vec::new();
    for (i, raw) in array(members, "links").iter().enumerate() {
        let link =
            Link::deserialize(raw).map_err(|e| shape(format!("links[{i}]"), e.to_string()))?;
        if link.seq == 0 {
            return Err(BundleError::Links(
                "seq 0 is not a record (the genesis hash is known)".into(),
            ));
        }
        if let Some(prev) = links.last() {
            let expected = prev.seq.saturating_add(1);
            if link.seq > expected {
                return Err(BundleError::Links(format!("gap at seq {expected}")));
            }
            if link.seq < expected {
                return Err(BundleError::Links(format!(
                    "seq {} after seq {} (links ascend by one)",
                    link.seq, prev.seq
                )));
            }
        }
        links.push(link);
    }
    let (Some(first), Some(last)) = (links.first(), links.last()) else {
        return Err(BundleError::Links(format!(
            "none; they must end at head (seq {})",
            head.seq
        )));
    };
    if last.seq != head.seq {
        return Err(BundleError::Links(format!(
            "end at seq {}, but head is seq {}",
            last.seq, head.seq
        )));
    }
    if last.hash != head.hash {
        return Err(BundleError::Links(format!(
            "hash at seq {} differs from head",
            last.seq
        )));
    }
    if let Some(&lowest) = events.keys().next() {
        let needed = lowest.saturating_sub(1).max(1);
        if first.seq > needed {
            return Err(BundleError::Links(format!(
                "start at seq {}; event {lowest} needs the link at seq {needed}",
                first.seq
            )));
        }
    }
    let link_at = |seq: u64| -> Option<&Link> {
        let index = usize::try_from(seq.checked_sub(first.seq)?).ok()?;
        links.get(index)
    };
    for (&seq, event) in events {
        if seq > head.seq {
            return Err(event_err(seq, format!("after head (seq {})", head.seq)));
        }
        if seq == 1 {
            if event.rec.prev != GENESIS_HASH {
                return Err(event_err(seq, "prev is not the genesis hash"));
            }
        } else {
            let prev = link_at(seq - 1)
                .ok_or_else(|| event_err(seq, format!("no link at seq {}", seq - 1)))?;
            if event.rec.prev != prev.hash {
                return Err(event_err(
                    seq,
                    format!("prev differs from link {}", seq - 1),
                ));
            }
        }
        let own = link_at(seq).ok_or_else(|| event_err(seq, format!("no link at seq {seq}")))?;
        if event.hash != own.hash {
            return Err(event_err(seq, format!("hash differs from link {seq}")));
        }
    }
    Ok(ChainHead {
        seq: head.seq,
        hash: head.hash,
    })
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
) -> Result<BTreeMap<String, usize>, BundleError> {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
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
        if kind.is_aggregate() {
            check_aggregate(&st, kind, &cited)?;
        } else {
            check_single(&st, kind, &cited)?;
        }
        *by_kind.entry(st.kind).or_default() += 1;
    }
    Ok(by_kind)
}

/// The statement kinds of `charter-evidence/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requested,
    Approved,
    Rejected,
    Reach,
    ApiDefinition,
    Credential,
    TokenIssued,
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
            "token_issued" => Self::TokenIssued,
            "usage" => Self::Usage,
            "review" => Self::Review,
            "emergency" => Self::Emergency,
            "removed" => Self::Removed,
            "offboarding" => Self::Offboarding,
            _ => return None,
        })
    }

    fn is_aggregate(self) -> bool {
        matches!(self, Self::TokenIssued | Self::Usage)
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
            Self::TokenIssued => &[action::TOKEN_ISSUE],
            Self::Usage => &[action::ACCESS_DECISION],
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
            Self::TokenIssued | Self::Usage => &[],
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

/// `token_issued` and `usage`: counts over the cited events, and their earliest and latest
/// `at`; every cited event is about the statement's grant.
fn check_aggregate(st: &Statement, kind: Kind, cited: &[(u64, &Event)]) -> Result<(), BundleError> {
    check_actions(st, kind, cited)?;
    let counts: &[&str] = if kind == Kind::Usage {
        &["allowed", "denied"]
    } else {
        &["count"]
    };
    let names = counts.iter().copied().chain(["first_at", "last_at"]);
    check_fact_names(st, names, false)?;

    let mut allowed = 0_usize;
    let mut denied = 0_usize;
    let mut first: Option<(jiff::Timestamp, &str)> = None;
    let mut last: Option<(jiff::Timestamp, &str)> = None;
    for (seq, event) in cited {
        let rec = &event.rec;
        if rec.target != st.grant {
            return Err(statement_err(
                &st.id,
                format!(
                    "event {seq} is about {:?}, not grant {:?}",
                    rec.target, st.grant
                ),
            ));
        }
        if kind == Kind::Usage {
            match rec.details.get("decision").and_then(Value::as_str) {
                Some("allow") => allowed += 1,
                Some("deny") => denied += 1,
                _ => {
                    return Err(statement_err(
                        &st.id,
                        format!("event {seq}: details.decision is neither allow nor deny"),
                    ));
                }
            }
        }
        let at: jiff::Timestamp = rec.at.parse().map_err(|_| {
            statement_err(
                &st.id,
                format!("event {seq}: at is not an RFC 3339 timestamp"),
            )
        })?;
        if first.is_none_or(|(t, _)| at < t) {
            first = Some((at, rec.at.as_str()));
        }
        if last.is_none_or(|(t, _)| at >= t) {
            last = Some((at, rec.at.as_str()));
        }
    }
    let expected_counts: Vec<(&str, usize)> = if kind == Kind::Usage {
        vec![("allowed", allowed), ("denied", denied)]
    } else {
        vec![("count", cited.len())]
    };
    for (name, n) in expected_counts {
        let stated = st.facts.get(name).unwrap_or(&Value::Null);
        if stated.as_u64() != u64::try_from(n).ok() {
            return Err(statement_err(
                &st.id,
                format!("facts.{name} is {stated}, the cited events give {n}"),
            ));
        }
    }
    for (name, bound) in [("first_at", first), ("last_at", last)] {
        let expected = bound.map_or(Value::Null, |(_, text)| Value::String(text.to_owned()));
        if st.facts.get(name).unwrap_or(&Value::Null) != &expected {
            let what = if name == "first_at" {
                "earliest"
            } else {
                "latest"
            };
            return Err(statement_err(
                &st.id,
                format!("facts.{name} is not the {what} at of the cited events ({expected})"),
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
