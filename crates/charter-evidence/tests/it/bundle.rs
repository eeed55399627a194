//! Evidence bundles: signing, offline verification, and tamper detection.
//!
//! The fixture is a synthetic audit log of 13 sealed records around one grant (request,
//! approval, a credential, two tokens, an allowed and a denied call, revocation), with
//! unrelated records before, between and after, and a bundle citing the grant's events,
//! signed with a fixed Ed25519 key (Ed25519 is deterministic, so the whole bundle is a
//! snapshot). Each tamper test changes one thing and expects the verifier to name the
//! place; unless the test is about the signature, the tampered bundle is re-signed with the
//! same key (as a dishonest or buggy signer would), because any edit of a signed bundle
//! otherwise stops at `signature: does not verify` — which each test checks first.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;

use charter_evidence::action::on_subject_chain;
use charter_evidence::bundle::{self, BundleError, FORMAT};
use charter_evidence::usage::UsageTree;
use charter_evidence::{AuditRecord, ChainHead, canonical_json, record_hash};
use serde_json::{Value, json};

const GRANT: &str = "grt_01JDELIVERYSYNC";
const PARTNER: &str = "prn_01JPARTNEROFFICE";
const API: &str = "api_01JORDERS";
const CREDENTIAL: &str = "crd_01JWORKLOAD";
const CLIENT: &str = "cli_01JWORKLOAD";
const KID: &str = "evk_2026a";
const OLD_KID: &str = "evk_2025a";

// -----------------------------------------------------------------------------------------
// Fixture: keys, log, bundle
// -----------------------------------------------------------------------------------------

/// A fixed evidence key (seed `seed` repeated).
fn fixed_key(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

/// A freshly generated key, as the server makes them.
fn generated_key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

/// The public JWK of a key, as `/.well-known/charter-evidence-keys` publishes it.
fn jwk(key: &Ed25519KeyPair, kid: &str) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

/// A sealed audit log, as the store holds it.
#[derive(Default)]
struct Log {
    head: ChainHead,
    /// (record, canonical body, hash), `rows[i]` is seq `i + 1`.
    rows: Vec<(AuditRecord, String, String)>,
    /// The head of each subject's sub-chain, as the writer keeps it.
    subjects: HashMap<String, String>,
}

impl Log {
    fn push(
        &mut self,
        at: &str,
        actor: &str,
        action: &str,
        target: &str,
        reason: Option<&str>,
        details: Value,
    ) -> u64 {
        let mut details = details;
        // Linked into its subject's sub-chain as the writer does it.
        let linked = on_subject_chain(action, target);
        if linked {
            details["subject_prev"] = self.subjects.get(target).map_or(Value::Null, |h| json!(h));
        }
        let mut rec = AuditRecord {
            seq: 0,
            at: at.to_owned(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason: reason.map(str::to_owned),
            details,
            prev: String::new(),
        };
        let (body, hash) = rec.seal(&self.head).unwrap();
        if linked {
            self.subjects.insert(target.to_owned(), hash.clone());
        }
        self.head = ChainHead {
            seq: rec.seq,
            hash: hash.clone(),
        };
        self.rows.push((rec, body, hash));
        self.head.seq
    }

    fn row(&self, seq: u64) -> &(AuditRecord, String, String) {
        &self.rows[usize::try_from(seq - 1).unwrap()]
    }

    fn record(&self, seq: u64) -> &AuditRecord {
        &self.row(seq).0
    }
}

/// The grant as `details.after` holds it.
fn grant_after(state: &str) -> Value {
    json!({
        "id": GRANT,
        "partner": PARTNER,
        "api": API,
        "use_case": "Delivery sync",
        "state": state,
        "scopes": ["orders:read", "deliveries:write"],
        "data_class_ceiling": "confidential",
        "regions": ["eu-west-1"],
        "environments": ["production"],
        "time_window": { "days": ["mon", "tue", "wed", "thu", "fri"], "from": "06:00", "to": "22:00" },
        "transfer_basis": null,
        "approvals": if state == "pending" { json!([]) } else { json!(["prn_01JAPPROVERBOB"]) },
    })
}

/// The synthetic log: 13 records, the grant's story from seq 3 to seq 12.
fn log() -> Log {
    let mut log = Log::default();
    log.push(
        "2026-11-02T08:00:00Z",
        "system",
        "evidence_key.create",
        KID,
        Some("first start"),
        json!({ "kid": KID }),
    );
    log.push(
        "2026-11-02T08:05:00Z",
        "prn_01JADMIN",
        "partner.create",
        PARTNER,
        None,
        json!({ "after": { "id": PARTNER, "name": "partner-office", "regions": ["eu-west-1"] } }),
    );
    // 3
    log.push(
        "2026-11-02T09:00:00Z",
        "prn_01JAPIOWNER",
        "api.publish",
        API,
        None,
        json!({ "after": { "id": API, "name": "Orders", "revision": 1, "operations": [
            { "scope": "orders:read", "method": "GET", "path": "/orders", "data_class": "confidential" },
            { "scope": "deliveries:write", "method": "POST", "path": "/deliveries", "data_class": "internal" },
        ] } }),
    );
    // 4
    log.push(
        "2026-11-03T10:00:00Z",
        "prn_01JSTEWARD",
        "grant.request",
        GRANT,
        None,
        json!({ "after": grant_after("pending") }),
    );
    // 5: unrelated, between cited events
    log.push(
        "2026-11-03T10:30:00Z",
        "prn_01JADMIN",
        "principal.create",
        "prn_01JAUDITOR",
        None,
        json!({ "after": { "id": "prn_01JAUDITOR", "roles": ["auditor"] } }),
    );
    // 6
    log.push(
        "2026-11-03T11:00:00Z",
        "prn_01JAPPROVERBOB",
        "grant.approve",
        GRANT,
        Some("Delivery partner onboarding, DPA signed"),
        json!({
            "changed": { "state": ["pending", "active"] },
            "after": grant_after("active"),
            "justification": "Delivery partner onboarding, DPA signed",
            "ticket": "CHG-1042",
            "data_exception": null,
        }),
    );
    // 7
    log.push(
        "2026-11-03T11:05:00Z",
        "prn_01JSTEWARD",
        "credential.issue",
        CREDENTIAL,
        None,
        json!({ "after": { "id": CREDENTIAL, "client_id": CLIENT, "kind": "private_key_jwt", "status": "active" },
                "grant": GRANT, "partner": PARTNER }),
    );
    // 8
    log.push(
        "2026-11-04T07:00:00Z",
        CLIENT,
        "token.issue",
        GRANT,
        None,
        json!({ "jti": "tok-1", "scopes": ["orders:read"], "expires_in": 300 }),
    );
    // 9
    log.push(
        "2026-11-04T07:00:01.250Z",
        CLIENT,
        "access.decision",
        GRANT,
        None,
        json!({ "decision": "allow", "reason": null, "method": "GET", "path": "/orders/orders", "grant": GRANT }),
    );
    // 10
    log.push(
        "2026-11-05T07:00:00Z",
        CLIENT,
        "token.issue",
        GRANT,
        None,
        json!({ "jti": "tok-2", "scopes": ["orders:read"], "expires_in": 300 }),
    );
    // 11
    log.push(
        "2026-11-05T07:00:02Z",
        CLIENT,
        "access.decision",
        GRANT,
        Some("scope_not_granted"),
        json!({ "decision": "deny", "reason": "scope_not_granted", "method": "DELETE", "path": "/orders/orders/7", "grant": GRANT }),
    );
    // 12
    log.push(
        "2026-11-28T16:00:00Z",
        "prn_01JSECURITY",
        "grant.revoke",
        GRANT,
        Some("Partner contract ended"),
        json!({ "changed": { "state": ["active", "revoked"] }, "after": grant_after("revoked") }),
    );
    // 13: the head, unrelated
    log.push(
        "2026-11-29T01:59:00Z",
        CLIENT,
        "access.decision",
        "",
        Some("unknown_client"),
        json!({ "decision": "deny", "reason": "unknown_client" }),
    );
    // 14: the bundle's own evidence.issue record, heading the grant's sub-chain and
    // committing the credential's and the partner's heads and the grant's usage.
    let heads = json!({
        CREDENTIAL: { "seq": 7, "hash": log.row(7).2 },
        PARTNER: { "seq": 2, "hash": log.row(2).2 },
    });
    let usage = json!({ GRANT: usage_of(&log) });
    log.push(
        "2026-11-29T02:00:00Z",
        "prn_01JAUDITOR",
        "evidence.issue",
        GRANT,
        None,
        json!({ "heads": heads, "usage": usage }),
    );
    log
}

/// The grant's usage summary over records 8–11.
fn usage_of(log: &Log) -> Value {
    let mut tree = UsageTree::new(GRANT);
    for seq in 8..=11 {
        let (rec, _, hash) = log.row(seq);
        tree.push(hash, rec).unwrap();
    }
    serde_json::to_value(tree.summary()).unwrap()
}

/// The seq of the fixture's evidence.issue record.
const ISSUE: u64 = 14;

fn statement(id: usize, kind: &str, text: &str, facts: Value, events: &[u64]) -> Value {
    json!({ "id": format!("st-{id}"), "kind": kind, "grant": GRANT, "text": text, "facts": facts, "events": events })
}

/// The statements about the grant, each citing its events.
fn statements(log: &Log) -> Vec<Value> {
    let at = |seq: u64| log.record(seq).at.clone();
    let after = |seq: u64| log.record(seq).details["after"].clone();
    vec![
        statement(
            1,
            "requested",
            "prn_01JSTEWARD requested access for \"Delivery sync\" on 2026-11-03T10:00:00Z",
            json!({ "actor": "prn_01JSTEWARD", "at": at(4), "action": "grant.request" }),
            &[4],
        ),
        statement(
            2,
            "approved",
            "prn_01JAPPROVERBOB approved on 2026-11-03T11:00:00Z: Delivery partner onboarding, DPA signed",
            json!({ "actor": "prn_01JAPPROVERBOB", "at": at(6),
                    "justification": "Delivery partner onboarding, DPA signed", "ticket": "CHG-1042" }),
            &[6],
        ),
        statement(
            3,
            "reach",
            "from 2026-11-03T11:00:00Z: scopes orders:read deliveries:write, data up to confidential",
            json!({
                "scopes": after(6)["scopes"], "data_class_ceiling": "confidential",
                "regions": ["eu-west-1"], "environments": ["production"],
                "time_window": after(6)["time_window"], "transfer_basis": null,
            }),
            &[6],
        ),
        statement(
            4,
            "api_definition",
            "API Orders revision 1 (from 2026-11-02T09:00:00Z)",
            json!({ "revision": 1, "operations": after(3)["operations"] }),
            &[3],
        ),
        statement(
            5,
            "credential",
            "credential crd_01JWORKLOAD issue on 2026-11-03T11:05:00Z",
            json!({ "credential": CREDENTIAL, "action": "credential.issue", "at": at(7) }),
            &[7],
        ),
        statement(
            6,
            "usage",
            "1 calls allowed and 1 denied between 2026-11-04T07:00:01.250Z and 2026-11-05T07:00:02Z; 2 access tokens issued",
            usage_of(log),
            &[ISSUE],
        ),
        statement(
            7,
            "removed",
            "access removed (grant.revoke) by prn_01JSECURITY on 2026-11-28T16:00:00Z",
            json!({ "actor": "prn_01JSECURITY", "at": at(12), "action": "grant.revoke",
                    "reason": "Partner contract ended" }),
            &[12],
        ),
    ]
}

/// An unsigned bundle over `statements`: every record of the grant's, the credential's and
/// the partner's sub-chains, the cited API event, no checkpoints, names, and `keys`.
fn assemble(log: &Log, statements: Vec<Value>, keys: Vec<Value>) -> Value {
    let mut carried: Vec<u64> = statements
        .iter()
        .flat_map(|s| {
            s["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_u64().unwrap())
        })
        .collect();
    carried.extend(
        log.rows
            .iter()
            .filter(|(rec, _, _)| on_subject_chain(&rec.action, &rec.target))
            .map(|(rec, _, _)| rec.seq),
    );
    carried.sort_unstable();
    carried.dedup();
    let events: Vec<Value> = carried
        .iter()
        .map(|&seq| {
            let (_, body, hash) = log.row(seq);
            json!({ "seq": seq, "hash": hash, "body": body })
        })
        .collect();
    json!({
        "format": FORMAT,
        "subject": { "type": "grant", "id": GRANT },
        "issuer": "https://charter.example.com",
        "generated_at": "2026-11-29T02:00:00Z",
        "names": { PARTNER: "partner-office", API: "Orders" },
        "statements": statements,
        "events": events,
        "checkpoints": [],
        "keys": keys,
    })
}

/// Signs (or re-signs) `bundle` in place with `key` under `kid`.
fn sign_with(bundle: &mut Value, key: &Ed25519KeyPair, kid: &str) {
    let jws = bundle::sign(bundle, kid, |m| key.sign(m).as_ref().to_vec()).unwrap();
    bundle["signature"] = json!(jws);
}

/// The fixture: signed with the current key; the older key is published too.
fn fixture() -> (Value, Ed25519KeyPair) {
    let key = fixed_key(7);
    let log = log();
    let keys = vec![jwk(&fixed_key(3), OLD_KID), jwk(&key, KID)];
    let mut bundle = assemble(&log, statements(&log), keys);
    sign_with(&mut bundle, &key, KID);
    (bundle, key)
}

fn verify_err(bundle: &Value) -> String {
    match bundle::verify(bundle) {
        Ok(summary) => panic!("verified, expected a failure: {summary:?}"),
        Err(e) => e.to_string(),
    }
}

/// Applies `tamper` to the signed fixture: the signature must no longer verify; re-signed
/// with the same key, the verifier must name `place`.
fn expect_tamper(place: &str, tamper: impl Fn(&mut Value)) {
    let (mut bundle, key) = fixture();
    tamper(&mut bundle);
    assert_eq!(verify_err(&bundle), "signature: does not verify");
    sign_with(&mut bundle, &key, KID);
    assert_eq!(verify_err(&bundle), place);
}

/// The index of event `seq` in the bundle's `events`.
fn event_index(bundle: &Value, seq: u64) -> usize {
    bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["seq"] == seq)
        .unwrap()
}

/// Replaces event `seq`'s body with `edit` applied to its record; re-hashes the event when
/// `rehash`.
fn edit_event(bundle: &mut Value, seq: u64, rehash: bool, edit: impl Fn(&mut AuditRecord)) {
    let i = event_index(bundle, seq);
    let mut rec: AuditRecord =
        serde_json::from_str(bundle["events"][i]["body"].as_str().unwrap()).unwrap();
    edit(&mut rec);
    let body = rec.canonical().unwrap();
    if rehash {
        bundle["events"][i]["hash"] = json!(record_hash(&body));
    }
    bundle["events"][i]["body"] = json!(body);
}

// -----------------------------------------------------------------------------------------
// Valid bundles
// -----------------------------------------------------------------------------------------

#[test]
fn the_fixture_verifies() {
    let (bundle, _) = fixture();
    let summary = bundle::verify(&bundle).unwrap();
    insta::assert_debug_snapshot!("fixture_summary", summary);
    // The sub-chains (partner 2; grant 4, 6, 12, 14; credential 7) and the cited API event.
    assert_eq!(summary.events, 7);
    assert_eq!(summary.subchains[GRANT], [4, 6, 12, ISSUE]);
    assert_eq!(summary.head.seq, ISSUE);
}

#[test]
fn the_fixture_is_stable() {
    // A fixed key signs deterministically: the whole bundle is pinned. If this changes, the
    // signed bytes changed.
    let (bundle, _) = fixture();
    insta::assert_snapshot!(
        "fixture_bundle",
        serde_json::to_string_pretty(&bundle).unwrap()
    );
}

#[test]
fn the_signing_input_is_header_dot_canonical_payload() {
    let (bundle, key) = fixture();
    let jws = bundle["signature"].as_str().unwrap();
    let (header_b64, rest) = jws.split_once('.').unwrap();
    let (payload, sig_b64) = rest.split_once('.').unwrap();
    assert_eq!(payload, "", "detached payload");

    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).unwrap()).unwrap();
    assert_eq!(header, json!({ "alg": "EdDSA", "kid": KID, "b64": true }));

    let mut unsigned = bundle.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    let canonical = canonical_json(&unsigned).unwrap();
    let input = bundle::signing_input(&bundle, header_b64).unwrap();
    assert_eq!(
        input,
        format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(&canonical))
    );
    // The same with or without the signature member.
    assert_eq!(bundle::signing_input(&unsigned, header_b64).unwrap(), input);
    // An independent check of the signature over those bytes.
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ED25519,
        key.public_key().as_ref(),
    )
    .verify(input.as_bytes(), &sig)
    .unwrap();
}

#[test]
fn a_bundle_survives_text_round_trips() {
    // Pretty-printed, compact, or with members reordered: the canonical form is the same.
    let (bundle, _) = fixture();
    for text in [
        serde_json::to_string_pretty(&bundle).unwrap(),
        serde_json::to_string(&bundle).unwrap(),
        canonical_json(&bundle).unwrap(),
    ] {
        let parsed = bundle::parse(&text).unwrap();
        assert!(bundle::verify(&parsed).is_ok());
    }
}

#[test]
fn a_bundle_signed_with_an_older_key_still_verifies() {
    // Key rotation: the bundle was signed before the rotation, `keys` holds both keys.
    let (mut bundle, _) = fixture();
    sign_with(&mut bundle, &fixed_key(3), OLD_KID);
    let summary = bundle::verify(&bundle).unwrap();
    assert_eq!(summary.kid, OLD_KID);
}

#[test]
fn a_generated_key_signs_and_verifies() {
    let key = generated_key();
    let log = log();
    let mut bundle = assemble(&log, statements(&log), vec![jwk(&key, "evk_fresh")]);
    sign_with(&mut bundle, &key, "evk_fresh");
    let summary = bundle::verify(&bundle).unwrap();
    assert_eq!(summary.kid, "evk_fresh");
    assert_eq!(summary.head, log.head);
}

#[test]
fn other_statement_kinds_check_their_facts() {
    // Review, break-glass and offboarding, on a log of their own.
    let mut log = Log::default();
    let open = log.push(
        "2026-12-01T03:00:00Z",
        "prn_01JONCALL",
        "grant.emergency_open",
        GRANT,
        Some("INC-77 outage"),
        json!({ "after": { "id": GRANT, "emergency": { "incident": "INC-77" } } }),
    );
    let review = log.push(
        "2026-12-01T09:00:00Z",
        "prn_01JREVIEWER",
        "review.attest",
        GRANT,
        Some("Used as expected"),
        json!({ "decision": "keep", "justification": "Used as expected", "after": { "id": GRANT } }),
    );
    let end = log.push(
        "2026-12-01T07:00:00Z",
        "system",
        "grant.emergency_end",
        GRANT,
        Some("reached expires_at"),
        json!({ "after": { "id": GRANT, "emergency": { "incident": "INC-77" } }, "emergency": "INC-77" }),
    );
    log.push(
        "2026-12-02T09:00:00Z",
        "prn_01JADMIN",
        "partner.create",
        PARTNER,
        None,
        json!({ "after": { "id": PARTNER, "name": "partner-office" } }),
    );
    let offboard = log.push(
        "2026-12-02T10:00:00Z",
        "prn_01JADMIN",
        "partner.offboard",
        PARTNER,
        Some("contract ended"),
        json!({ "status": "failed", "checks": [
            { "name": "tokens", "passed": true }, { "name": "gateway", "passed": false }, { "name": "canary", "passed": true },
        ] }),
    );
    log.push(
        "2026-12-02T11:00:00Z",
        "prn_01JAUDITOR",
        "evidence.issue",
        PARTNER,
        None,
        json!({ "heads": { GRANT: { "seq": end, "hash": log.row(end).2 } }, "usage": {} }),
    );
    let st = |id: usize, kind: &str, facts: Value, events: &[u64]| {
        statement(id, kind, "-", facts, events)
    };
    let statements = vec![
        st(
            1,
            "requested",
            json!({ "actor": "prn_01JONCALL", "at": "2026-12-01T03:00:00Z", "action": "grant.emergency_open" }),
            &[open],
        ),
        st(
            2,
            "emergency",
            json!({ "incident": "INC-77", "at": "2026-12-01T03:00:00Z", "seq": open }),
            &[open, end],
        ),
        st(
            3,
            "review",
            json!({ "actor": "prn_01JREVIEWER", "at": "2026-12-01T09:00:00Z", "decision": "keep", "justification": "Used as expected" }),
            &[review],
        ),
        st(
            4,
            "emergency",
            json!({ "incident": "INC-77", "at": "2026-12-01T07:00:00Z" }),
            &[end],
        ),
        st(
            5,
            "removed",
            json!({ "actor": "system", "at": "2026-12-01T07:00:00Z", "action": "grant.emergency_end", "reason": "reached expires_at" }),
            &[end],
        ),
        json!({ "id": "st-6", "kind": "offboarding", "grant": "", "text": "-",
                "facts": { "status": "failed", "checks_passed": 2, "checks_failed": 1, "at": "2026-12-02T10:00:00Z" },
                "events": [offboard] }),
    ];
    let key = fixed_key(7);
    let keys = vec![jwk(&key, KID)];
    let signed = |statements: Vec<Value>| {
        let mut b = assemble(&log, statements, keys.clone());
        b["subject"] = json!({ "type": "partner", "id": PARTNER });
        sign_with(&mut b, &key, KID);
        b
    };

    let summary = bundle::verify(&signed(statements.clone())).unwrap();
    assert_eq!(summary.subject_type, "partner");
    assert_eq!(summary.statements_by_kind["emergency"], 2);
    assert_eq!(summary.statements_by_kind["offboarding"], 1);

    let cases: Vec<(usize, &str, Value, &str)> = vec![
        (
            1,
            "/facts/seq",
            json!(end),
            "statement st-2: facts.at differs from event 3",
        ),
        (
            1,
            "/facts/seq",
            json!(offboard),
            "statement st-2: facts.seq 5 is not one of the cited events",
        ),
        (
            2,
            "/facts/decision",
            json!("revoke"),
            "statement st-3: facts.decision differs from event 2",
        ),
        (
            3,
            "/facts/incident",
            json!("INC-78"),
            "statement st-4: facts.incident differs from event 3",
        ),
        (
            4,
            "/facts/reason",
            json!(null),
            "statement st-5: facts.reason differs from event 3",
        ),
        (
            5,
            "/facts/checks_passed",
            json!(3),
            "statement st-6: facts.checks_passed differs from event 5",
        ),
        (
            5,
            "/facts/status",
            json!("completed"),
            "statement st-6: facts.status differs from event 5",
        ),
        (
            2,
            "/events",
            json!([open]),
            "statement st-3: event 1 is grant.emergency_open, not review.attest",
        ),
    ];
    for (index, pointer, value, expected) in cases {
        let mut statements = statements.clone();
        *statements[index].pointer_mut(pointer).unwrap() = value;
        assert_eq!(verify_err(&signed(statements)), expected);
    }

    // Several cited events and no facts.seq: which one the facts are from is ambiguous.
    let mut ambiguous = statements.clone();
    ambiguous[1]["facts"].as_object_mut().unwrap().remove("seq");
    assert_eq!(
        verify_err(&signed(ambiguous)),
        "statement st-2: cites 2 events; facts.seq must name the one the facts are from"
    );
}

// -----------------------------------------------------------------------------------------
// Tampering
// -----------------------------------------------------------------------------------------

#[test]
fn an_edited_event_body_is_a_hash_mismatch() {
    expect_tamper("event 6: hash mismatch", |b| {
        edit_event(b, 6, false, |rec| {
            rec.details["ticket"] = json!("CHG-9999");
        });
    });
}

#[test]
fn a_deleted_credential_event_is_a_missing_sub_chain_head() {
    expect_tamper(
        "sub-chain of crd_01JWORKLOAD: its head, record 7, is not in the bundle (or has another hash)",
        |b| {
            let i = event_index(b, 7);
            b["events"].as_array_mut().unwrap().remove(i);
        },
    );
}

#[test]
fn reordered_events_are_out_of_order() {
    expect_tamper(
        "events: event 6 is out of order (after event 7; events ascend by seq)",
        |b| {
            let (i, j) = (event_index(b, 6), event_index(b, 7));
            b["events"].as_array_mut().unwrap().swap(i, j);
        },
    );
}

#[test]
fn a_duplicated_event_is_named() {
    expect_tamper("events: event 6 appears twice", |b| {
        let i = event_index(b, 6);
        let copy = b["events"][i].clone();
        b["events"].as_array_mut().unwrap().insert(i, copy);
    });
}

#[test]
fn a_swapped_approver_in_the_facts_differs_from_the_event() {
    expect_tamper("statement st-2: facts.actor differs from event 6", |b| {
        b["statements"][1]["facts"]["actor"] = json!("prn_01JMALLORY");
    });
}

#[test]
fn a_swapped_approver_in_the_event_breaks_the_sub_chain() {
    // The body is edited and its hash recomputed: the next record of the grant links to the
    // original, which the bundle no longer carries.
    expect_tamper(
        "sub-chain of grt_01JDELIVERYSYNC: record 12 follows record 04a801c3e1b4…, which the bundle does not carry: an event of the subject was left out",
        |b| {
            edit_event(b, 6, true, |rec| rec.actor = "prn_01JMALLORY".into());
        },
    );
}

#[test]
fn a_non_canonical_body_is_named() {
    expect_tamper("event 7: body is not in canonical form", |b| {
        let i = event_index(b, 7);
        let body = b["events"][i]["body"]
            .as_str()
            .unwrap()
            .replacen(':', ": ", 1);
        b["events"][i]["hash"] = json!(record_hash(&body));
        b["events"][i]["body"] = json!(body);
    });
}

#[test]
fn an_unknown_statement_kind_is_an_error() {
    expect_tamper("statement st-7: unknown kind \"waived\"", |b| {
        b["statements"][6]["kind"] = json!("waived");
    });
}

#[test]
fn unknown_or_missing_facts_are_errors() {
    expect_tamper("statement st-2: facts.ticket missing", |b| {
        b["statements"][1]["facts"]
            .as_object_mut()
            .unwrap()
            .remove("ticket");
    });
    expect_tamper(
        "statement st-2: facts.approved_by_cfo is not a fact of a approved statement",
        |b| {
            b["statements"][1]["facts"]["approved_by_cfo"] = json!(true);
        },
    );
}

#[test]
fn a_statement_citing_the_wrong_kind_of_event_is_named() {
    expect_tamper(
        "statement st-2: event 12 is grant.revoke, not grant.approve",
        |b| {
            b["statements"][1]["events"] = json!([12]);
        },
    );
}

#[test]
fn reach_must_match_the_grant_after_the_cited_event() {
    expect_tamper("statement st-3: facts.scopes differs from event 6", |b| {
        b["statements"][2]["facts"]["scopes"] = json!(["orders:read", "orders:delete"]);
    });
}

#[test]
fn an_unknown_member_is_an_error() {
    // Unchecked content next to checked content would be read as verified: the shape is
    // checked before the signature.
    let (mut bundle, _) = fixture();
    bundle["verified"] = json!(true);
    assert_eq!(verify_err(&bundle), "bundle: unknown member \"verified\"");
}

// -----------------------------------------------------------------------------------------
// Signature
// -----------------------------------------------------------------------------------------

#[test]
fn a_signature_by_another_key_with_the_same_kid_does_not_verify() {
    let (mut bundle, _) = fixture();
    sign_with(&mut bundle, &generated_key(), KID);
    assert_eq!(verify_err(&bundle), "signature: does not verify");
}

#[test]
fn garbage_signatures_are_named() {
    let (bundle, _) = fixture();
    let jws = bundle["signature"].as_str().unwrap().to_owned();
    let (header_b64, _) = jws.split_once("..").unwrap();
    let header = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let cases = [
        (
            "garbage".to_owned(),
            "signature: not a compact JWS with a detached payload (header..signature)",
        ),
        (
            String::new(),
            "signature: not a compact JWS with a detached payload (header..signature)",
        ),
        (format!("{header_b64}..AAAA"), "signature: does not verify"),
        (
            format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode([0u8; 64])),
            "signature: does not verify",
        ),
        (
            format!("{header_b64}..not base64!"),
            "signature: the signature part is not base64url",
        ),
        (
            format!("{header_b64}.e30.AAAA"),
            "signature: the payload part is not empty (it is detached)",
        ),
        (
            "%%%..AAAA".to_owned(),
            "signature: the header is not base64url",
        ),
        (
            format!("{}..AAAA", header(json!({ "alg": "HS256", "kid": KID }))),
            "signature: alg is \"HS256\", not \"EdDSA\"",
        ),
        (
            format!("{}..AAAA", header(json!({ "alg": "EdDSA" }))),
            "signature: the header has no kid",
        ),
        (
            format!(
                "{}..AAAA",
                header(json!({ "alg": "EdDSA", "kid": KID, "b64": false, "crit": ["b64"] }))
            ),
            "signature: b64 must be true",
        ),
        (
            format!(
                "{}..AAAA",
                header(json!({ "alg": "EdDSA", "kid": KID, "crit": ["exp"] }))
            ),
            "signature: unsupported critical header parameters [\"exp\"]",
        ),
        (
            format!(
                "{}..AAAA",
                header(json!({ "alg": "EdDSA", "kid": "evk_unknown" }))
            ),
            "signature: no key in keys has kid \"evk_unknown\"",
        ),
    ];
    for (jws, expected) in cases {
        let mut b = bundle.clone();
        b["signature"] = json!(jws);
        assert_eq!(verify_err(&b), expected, "{jws}");
    }
}

#[test]
fn a_bundle_signed_by_a_key_missing_from_keys_is_named() {
    let (mut bundle, _) = fixture();
    let key = generated_key();
    sign_with(&mut bundle, &key, "evk_rogue");
    assert_eq!(
        verify_err(&bundle),
        "signature: no key in keys has kid \"evk_rogue\""
    );
}

#[test]
fn keys_must_be_ed25519() {
    let (mut bundle, key) = fixture();
    bundle["keys"][1]["crv"] = json!("P-256");
    sign_with(&mut bundle, &key, KID);
    assert_eq!(
        verify_err(&bundle),
        "keys: key evk_2026a: not an Ed25519 key (kty OKP, crv Ed25519)"
    );
    bundle["keys"][0]["kid"] = json!(KID);
    sign_with(&mut bundle, &key, KID);
    assert_eq!(verify_err(&bundle), "keys: kid \"evk_2026a\" appears twice");
}

// -----------------------------------------------------------------------------------------
// Reading and shape
// -----------------------------------------------------------------------------------------

#[test]
fn the_format_comes_first() {
    let (mut bundle, _) = fixture();
    bundle["format"] = json!("charter-evidence/1");
    assert_eq!(
        verify_err(&bundle),
        "format: \"charter-evidence/1\" is not \"charter-evidence/2\""
    );
    assert_eq!(verify_err(&json!([])), "bundle: not a JSON object");
    assert_eq!(verify_err(&json!({})), "format: missing");
    let (mut bundle, _) = fixture();
    bundle.as_object_mut().unwrap().remove("checkpoints");
    assert_eq!(verify_err(&bundle), "checkpoints: missing");
}

#[test]
fn parse_rejects_duplicate_members_and_non_json() {
    let (bundle, _) = fixture();
    let text = serde_json::to_string(&bundle).unwrap();
    // A second `format` member: some readers take the first, some the last.
    let duplicated = text.replacen('{', "{\"format\":\"other\",", 1);
    match bundle::parse(&duplicated) {
        Err(BundleError::Shape { place, reason }) => {
            assert_eq!(place, "bundle");
            assert!(
                reason.starts_with("duplicate member \"format\""),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        bundle::parse("{\"format\":"),
        Err(BundleError::NotJson(_))
    ));
    assert!(matches!(
        bundle::parse("not json"),
        Err(BundleError::NotJson(_))
    ));
    assert!(matches!(
        bundle::parse("{} {}"),
        Err(BundleError::NotJson(_))
    ));
}

#[test]
fn the_verifier_has_no_store_or_server_dependencies() {
    // Auditors run the verifier offline: it must not pull in the store, the server, an
    // async runtime or a database driver.
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let manifest: toml_lite::Manifest = toml_lite::parse(&manifest);
    for forbidden in [
        "charter-store",
        "charter-server",
        "charter-gateway",
        "charter-auth",
        "tokio",
        "sqlx",
        "axum",
        "hyper",
        "reqwest",
    ] {
        assert!(
            !manifest.dependencies.iter().any(|d| d == forbidden),
            "charter-evidence depends on {forbidden}"
        );
    }
    assert!(manifest.dependencies.iter().any(|d| d == "aws-lc-rs"));
}

/// Just enough TOML to list the names in `[dependencies]`.
mod toml_lite {
    pub struct Manifest {
        pub dependencies: Vec<String>,
    }

    pub fn parse(text: &str) -> Manifest {
        let mut section = String::new();
        let mut dependencies = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_owned();
            } else if section == "dependencies"
                && let Some((name, _)) = line.split_once('=')
                && !line.starts_with('#')
            {
                dependencies.push(name.trim().to_owned());
            }
        }
        Manifest { dependencies }
    }
}

// -----------------------------------------------------------------------------------------
// Completeness: sub-chains, committed usage, checkpoints, earlier bundles
// -----------------------------------------------------------------------------------------

/// Removes event `seq` and every statement citing it, then re-signs with the real key.
fn without_event(seq: u64) -> Value {
    let (mut b, key) = fixture();
    let i = event_index(&b, seq);
    b["events"].as_array_mut().unwrap().remove(i);
    b["statements"]
        .as_array_mut()
        .unwrap()
        .retain(|st| !st["events"].as_array().unwrap().contains(&json!(seq)));
    sign_with(&mut b, &key, KID);
    b
}

#[test]
fn a_removed_revocation_breaks_the_grants_sub_chain() {
    // The attack: drop the grant.revoke event and its `removed` statement, re-sign with the
    // real evidence key. The evidence.issue record still links to the revocation.
    let err = verify_err(&without_event(12));
    assert!(
        err.starts_with(&format!("sub-chain of {GRANT}: record 14 follows record ")),
        "{err}"
    );
    assert!(
        err.ends_with("which the bundle does not carry: an event of the subject was left out"),
        "{err}"
    );
    // Without the approval: the revocation links to it.
    let err = verify_err(&without_event(6));
    assert!(
        err.starts_with(&format!("sub-chain of {GRANT}: record 12 follows record ")),
        "{err}"
    );
    // Without the credential's only record: its committed head is missing.
    assert_eq!(
        verify_err(&without_event(7)),
        format!(
            "sub-chain of {CREDENTIAL}: its head, record 7, is not in the bundle (or has another hash)"
        )
    );
}

#[test]
fn an_event_kept_but_left_unstated_is_named() {
    let (mut b, key) = fixture();
    b["statements"]
        .as_array_mut()
        .unwrap()
        .retain(|st| st["kind"] != "removed");
    sign_with(&mut b, &key, KID);
    assert_eq!(
        verify_err(&b),
        format!("sub-chain of {GRANT}: record 12 (grant.revoke) is stated by no removed statement")
    );
}

#[test]
fn a_bundle_must_end_at_its_evidence_issue_record() {
    let (mut b, key) = fixture();
    let i = event_index(&b, ISSUE);
    b["events"].as_array_mut().unwrap().remove(i);
    b["statements"]
        .as_array_mut()
        .unwrap()
        .retain(|st| st["kind"] != "usage");
    sign_with(&mut b, &key, KID);
    assert_eq!(
        verify_err(&b),
        format!(
            "sub-chain of {GRANT}: the last event (12, grant.revoke about \"{GRANT}\") is not the bundle's evidence.issue record about its subject"
        )
    );
}

#[test]
fn usage_facts_must_be_the_committed_summary() {
    expect_tamper(
        "statement st-6: facts differ from the usage committed by event 14",
        |b| {
            b["statements"][5]["facts"]["denied"] = json!(0);
        },
    );
    expect_tamper(
        "statement st-6: a usage statement cites the evidence.issue record 14 alone",
        |b| {
            b["statements"][5]["events"] = json!([ISSUE, 12]);
        },
    );
}

#[test]
fn usage_records_prove_inclusion_in_the_committed_root() {
    use charter_evidence::usage::{ProofRecord, UsageProof, verify_proof};
    let log = log();
    let (bundle, _) = fixture();
    let summary = bundle::verify(&bundle).unwrap();
    let committed = &summary.usage[GRANT];
    assert_eq!(
        (
            committed.records,
            committed.allowed,
            committed.denied,
            committed.tokens_issued
        ),
        (4, 1, 1, 2)
    );
    let mut tree = UsageTree::new(GRANT);
    for seq in 8..=11 {
        tree.push(&log.row(seq).2, &log.row(seq).0).unwrap();
    }
    for seq in 8..=11 {
        let index = tree.index_of(seq).unwrap();
        let (_, body, hash) = log.row(seq);
        let proof = UsageProof {
            grant: GRANT.into(),
            index: index as u64,
            size: 4,
            root: committed.root.clone(),
            record: ProofRecord {
                seq,
                hash: hash.clone(),
                body: body.clone(),
            },
            path: tree.path(index).unwrap(),
        };
        assert_eq!(verify_proof(committed, &proof).unwrap().seq, seq);
        // A tampered record (a denied call shown as allowed, re-hashed) does not prove.
        let mut forged = proof.clone();
        forged.record.body = body.replace("\"deny\"", "\"allow\"");
        forged.record.hash = record_hash(&forged.record.body);
        if forged.record.body != *body {
            let err = verify_proof(committed, &forged).unwrap_err();
            assert!(err.contains("does not lead to the committed root"), "{err}");
        }
        // Another position, or a record of another grant, does not prove either.
        let mut moved = proof.clone();
        moved.index = (moved.index + 1) % 4;
        assert!(verify_proof(committed, &moved).is_err());
    }
    let unrelated = log.row(13);
    let proof = UsageProof {
        grant: GRANT.into(),
        index: 0,
        size: 4,
        root: committed.root.clone(),
        record: ProofRecord {
            seq: 13,
            hash: unrelated.2.clone(),
            body: unrelated.1.clone(),
        },
        path: tree.path(0).unwrap(),
    };
    assert!(
        verify_proof(committed, &proof)
            .unwrap_err()
            .contains("not a usage record")
    );
}

fn checkpoint_at(log: &Log, seq: u64) -> charter_evidence::checkpoint::Checkpoint {
    let key = fixed_key(7);
    charter_evidence::checkpoint::Checkpoint::sign(
        &ChainHead {
            seq,
            hash: log.row(seq).2.clone(),
        },
        "2026-11-10T00:00:00Z".into(),
        KID,
        |m| key.sign(m).as_ref().to_vec(),
    )
    .unwrap()
}

#[test]
fn a_bundle_agrees_with_the_auditors_checkpoints_or_names_the_one_it_does_not() {
    let log = log();
    let (mut b, key) = fixture();
    b["checkpoints"] = json!([{ "seq": 9, "hash": log.row(9).2 }]);
    sign_with(&mut b, &key, KID);
    let summary = bundle::verify(&b).unwrap();
    let cps = [checkpoint_at(&log, 1), checkpoint_at(&log, 9)];
    let agreed = bundle::check_checkpoints(&b, &summary, &cps).unwrap();
    assert_eq!((agreed.agreed.as_slice(), agreed.outside), (&[9][..], 1));
    // Checkpoints that all lie outside the bundle's span check nothing: refused, not passed.
    let none_in_span = bundle::check_checkpoints(&b, &summary, &cps[..1])
        .unwrap_err()
        .to_string();
    assert!(
        none_in_span.starts_with("checkpoints: none of the 1 given lies within the bundle's span"),
        "{none_in_span}"
    );
    assert!(
        bundle::check_checkpoints(&b, &summary, &[])
            .unwrap_err()
            .to_string()
            .contains("nothing to hold the bundle to")
    );

    // The server's database was rewritten after checkpoint 9: it holds another hash there.
    let mut rewritten = b.clone();
    rewritten["checkpoints"] = json!([{ "seq": 9, "hash": "ab".repeat(32) }]);
    sign_with(&mut rewritten, &key, KID);
    let summary = bundle::verify(&rewritten).unwrap();
    assert_eq!(
        bundle::check_checkpoints(&rewritten, &summary, &cps)
            .unwrap_err()
            .to_string(),
        "checkpoint 9: the bundle's chain holds another hash there: the log was rewritten after this checkpoint"
    );
    // A log that no longer announces the checkpoint.
    let mut silent = b.clone();
    silent["checkpoints"] = json!([]);
    sign_with(&mut silent, &key, KID);
    let summary = bundle::verify(&silent).unwrap();
    assert!(
        bundle::check_checkpoints(&silent, &summary, &cps)
            .unwrap_err()
            .to_string()
            .starts_with("checkpoint 9: the bundle does not record the chain there")
    );
}

#[test]
fn a_later_bundle_must_extend_an_earlier_one() {
    let (earlier, _) = fixture();
    let earlier_summary = bundle::verify(&earlier).unwrap();
    // A later bundle: one more evidence.issue on the same sub-chain.
    let mut log = log();
    let usage = json!({ GRANT: usage_of(&log) });
    let heads = json!({
        CREDENTIAL: { "seq": 7, "hash": log.row(7).2 },
        PARTNER: { "seq": 2, "hash": log.row(2).2 },
    });
    let later_issue = log.push(
        "2026-12-01T00:00:00Z",
        "prn_01JAUDITOR",
        "evidence.issue",
        GRANT,
        None,
        json!({ "heads": heads, "usage": usage }),
    );
    let key = fixed_key(7);
    let mut statements = statements(&log);
    statements[5]["events"] = json!([later_issue]);
    let mut later = assemble(&log, statements, vec![jwk(&key, KID)]);
    sign_with(&mut later, &key, KID);
    let later_summary = bundle::verify(&later).unwrap();
    bundle::check_extends(&later, &later_summary, &earlier_summary).unwrap();
    // A bundle that does not carry the earlier head does not extend it.
    assert!(
        bundle::check_extends(&earlier, &earlier_summary, &later_summary)
            .unwrap_err()
            .to_string()
            .starts_with("previous bundle: its head, record 15, is not on this bundle's sub-chain")
    );
}
