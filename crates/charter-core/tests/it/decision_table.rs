//! The decision function over a table of cases: each starts from the baseline world (where
//! the call is allowed) and changes one thing — or, for the `order-…` cases, two things that
//! each fail a different check, to pin which check comes first.
//!
//! Every case states its expected outcome, and the whole table is also rendered and
//! snapshotted, so a change to any decision shows up both as a failing assertion and as a
//! reviewable diff of `case → outcome` lines.

use std::collections::{BTreeSet, HashSet};

use charter_core::decision::Reason::{self, *};
use charter_core::{DataClass, GrantStatus, PartnerStatus};
use jiff::SignedDuration;

use crate::fixtures::{World, api_id, env, name, partner_id, region, scope, window};

type Outcome = Result<(), Reason>;
const ALLOW: Outcome = Ok(());

struct Case {
    name: &'static str,
    expect: Outcome,
    mutate: fn(&mut World),
}

fn case(name: &'static str, expect: Outcome, mutate: fn(&mut World)) -> Case {
    Case {
        name,
        expect,
        mutate,
    }
}

fn cases() -> Vec<Case> {
    vec![
        // ── allowed: the baseline and the edges that still let it through ──────────────
        case("baseline", ALLOW, |_| {}),
        case("other-operation-in-reach", ALLOW, |w| w.call("orders:list")),
        case("nbf-at-leeway-edge", ALLOW, |w| {
            w.token.nbf = w.now_s() + w.leeway;
        }),
        case("exp-now-within-leeway", ALLOW, |w| w.token.exp = w.now_s()),
        case("exp-one-second-inside-leeway", ALLOW, |w| {
            w.token.exp = w.now_s() - w.leeway + 1;
        }),
        // ── token_invalid ───────────────────────────────────────────────────────────────
        case("iss-other-issuer", Err(TokenInvalid), |w| {
            w.token.iss = "https://evil.example.com".into();
        }),
        case("aud-other-api", Err(TokenInvalid), |w| {
            w.token.aud = "https://api.example.com/payments".into();
        }),
        case("nbf-beyond-leeway", Err(TokenInvalid), |w| {
            w.token.nbf = w.now_s() + w.leeway + 1;
        }),
        case("grant-unknown", Err(TokenInvalid), |w| w.grant = None),
        case("api-unknown", Err(TokenInvalid), |w| w.api = None),
        case("grant-of-another-api", Err(TokenInvalid), |w| {
            w.grant().api = api_id(7);
        }),
        // ── token_expired ───────────────────────────────────────────────────────────────
        case("exp-past", Err(TokenExpired), |w| {
            w.token.nbf = w.now_s() - 1200;
            w.token.exp = w.now_s() - 600;
        }),
        case("exp-at-leeway-edge", Err(TokenExpired), |w| {
            w.token.exp = w.now_s() - w.leeway;
        }),
        // ── grant_inactive ──────────────────────────────────────────────────────────────
        case("grant-pending", Err(GrantInactive), |w| {
            w.grant().status = GrantStatus::Pending;
        }),
        case("grant-suspended", Err(GrantInactive), |w| {
            w.grant().suspend(name("investigation")).unwrap();
        }),
        case("grant-expired-status", Err(GrantInactive), |w| {
            w.grant().status = GrantStatus::Expired;
        }),
        case("grant-rejected", Err(GrantInactive), |w| {
            w.grant().status = GrantStatus::Rejected;
        }),
        case("grant-active-past-expires-at", Err(GrantInactive), |w| {
            let now = w.now;
            w.grant().expires_at = now - SignedDuration::from_secs(1);
        }),
        case("grant-active-expires-at-now", Err(GrantInactive), |w| {
            let now = w.now;
            w.grant().expires_at = now;
        }),
        // ── grant_revoked ───────────────────────────────────────────────────────────────
        case("grant-revoked-status", Err(GrantRevoked), |w| {
            w.grant().status = GrantStatus::Revoked;
        }),
        case("grant-revoked-epoch-bumped", Err(GrantRevoked), |w| {
            let now = w.now;
            w.grant().revoke(name("contract ended"), now).unwrap();
        }),
        // ── token_revoked ───────────────────────────────────────────────────────────────
        case("epoch-stale", Err(TokenRevoked), |w| w.grant().epoch += 1),
        case("epoch-from-the-future", Err(TokenRevoked), |w| {
            w.token.epoch += 1
        }),
        case("jti-revoked", Err(TokenRevoked), |w| w.jti_revoked = true),
        // ── credential_revoked ──────────────────────────────────────────────────────────
        // Revoking a credential also bumps its grant's epoch: the token of that credential
        // says why (credential_revoked); the grant's other tokens stay token_revoked.
        case(
            "credential-revoked-epoch-bumped",
            Err(CredentialRevoked),
            |w| {
                w.credential_revoked = true;
                w.grant().epoch += 1;
            },
        ),
        case("credential-revoked", Err(CredentialRevoked), |w| {
            w.credential_revoked = true
        }),
        // ── partner_inactive ────────────────────────────────────────────────────────────
        case("partner-suspended", Err(PartnerInactive), |w| {
            w.partner().status = PartnerStatus::Suspended;
        }),
        // ── partner_offboarded ──────────────────────────────────────────────────────────
        case("partner-offboarding", Err(PartnerOffboarded), |w| {
            w.partner().status = PartnerStatus::Offboarding;
        }),
        case("partner-offboarded", Err(PartnerOffboarded), |w| {
            w.partner().status = PartnerStatus::Offboarded;
        }),
        case("partner-unknown", Err(PartnerInactive), |w| {
            w.partner = None
        }),
        case("partner-of-another-grant", Err(PartnerInactive), |w| {
            w.partner().id = partner_id(8);
        }),
        // ── unknown_operation ───────────────────────────────────────────────────────────
        case("operation-unmatched", Err(UnknownOperation), |w| {
            w.operation = None;
        }),
        // ── scope_not_granted ───────────────────────────────────────────────────────────
        case("scope-in-grant-not-token", Err(ScopeNotGranted), |w| {
            w.token.scopes.retain(|s| s.as_str() != "orders:read");
        }),
        case("scope-in-token-not-grant", Err(ScopeNotGranted), |w| {
            w.grant().scopes.retain(|s| s.as_str() != "orders:read");
        }),
        case("scope-in-neither", Err(ScopeNotGranted), |w| {
            w.call("payments:read");
        }),
        // ── data_class_exceeds_grant ────────────────────────────────────────────────────
        case(
            "operation-reclassified-restricted",
            Err(DataClassExceedsGrant),
            |w| w.op().data_class = DataClass::Restricted,
        ),
        case(
            "grant-ceiling-below-operation",
            Err(DataClassExceedsGrant),
            |w| w.grant().data_class_ceiling = DataClass::Internal,
        ),
        case("operation-reclassified-down", ALLOW, |w| {
            w.op().data_class = DataClass::Public;
        }),
        // ── region_not_permitted ────────────────────────────────────────────────────────
        case(
            "operation-moved-outside-grant-regions",
            Err(RegionNotPermitted),
            |w| {
                w.op().region = region("apac");
            },
        ),
        // ── transfer_basis_missing ──────────────────────────────────────────────────────
        case("cross-border-with-basis", ALLOW, |w| {
            w.call("orders:export")
        }),
        case(
            "cross-border-without-basis",
            Err(TransferBasisMissing),
            |w| {
                w.call("orders:export");
                w.grant().transfer_basis = None;
            },
        ),
        case("in-partner-region-without-basis", ALLOW, |w| {
            w.grant().transfer_basis = None;
        }),
        // ── environment_mismatch ────────────────────────────────────────────────────────
        case(
            "gateway-environment-staging",
            Err(EnvironmentMismatch),
            |w| {
                w.environment = env("staging");
            },
        ),
        case("grant-covers-staging-too", ALLOW, |w| {
            w.environment = env("staging");
            w.grant().environments.push(env("staging"));
        }),
        // ── outside_time_window (now: Wednesday 11:00 Europe/Berlin) ────────────────────
        case("window-business-hours-berlin", ALLOW, |w| {
            w.grant().time_window = Some(window(
                &["mon", "tue", "wed", "thu", "fri"],
                "09:00",
                "17:00",
                "Europe/Berlin",
            ));
        }),
        case("window-weekend-only", Err(OutsideTimeWindow), |w| {
            w.grant().time_window = Some(window(&["sat", "sun"], "00:00", "23:59", "UTC"));
        }),
        case("window-ends-at-now", Err(OutsideTimeWindow), |w| {
            w.grant().time_window = Some(window(&["wed"], "09:00", "11:00", "Europe/Berlin"));
        }),
        case("window-over-midnight-from-yesterday", ALLOW, |w| {
            w.grant().time_window = Some(window(&["tue"], "22:00", "12:00", "Europe/Berlin"));
        }),
        case(
            "window-over-midnight-from-today",
            Err(OutsideTimeWindow),
            |w| {
                w.grant().time_window = Some(window(&["wed"], "22:00", "12:00", "Europe/Berlin"));
            },
        ),
        // ── dpop_invalid ────────────────────────────────────────────────────────────────
        case("dpop-required-no-proof", Err(DpopInvalid), |w| {
            w.grant().require_dpop = true;
        }),
        case("dpop-required-proof-invalid", Err(DpopInvalid), |w| {
            w.grant().require_dpop = true;
            w.dpop_valid = Some(false);
        }),
        case("dpop-required-proof-valid", ALLOW, |w| {
            w.grant().require_dpop = true;
            w.dpop_valid = Some(true);
        }),
        case("token-bound-no-proof", Err(DpopInvalid), |w| {
            w.token.jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
        }),
        case("token-bound-proof-invalid", Err(DpopInvalid), |w| {
            w.token.jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
            w.dpop_valid = Some(false);
        }),
        case("token-bound-proof-valid", ALLOW, |w| {
            w.token.jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
            w.dpop_valid = Some(true);
        }),
        case("dpop-not-needed-proof-ignored", ALLOW, |w| {
            w.dpop_valid = Some(false);
        }),
        // ── order: two failures, the earlier check names the reason ─────────────────────
        case("order-wrong-iss-and-expired", Err(TokenInvalid), |w| {
            w.token.iss = "https://evil.example.com".into();
            w.token.exp = w.now_s() - 600;
        }),
        case("order-expired-and-grant-revoked", Err(TokenExpired), |w| {
            w.token.exp = w.now_s() - 600;
            let now = w.now;
            w.grant().revoke(name("contract ended"), now).unwrap();
        }),
        case(
            "order-grant-revoked-and-unknown-operation",
            Err(GrantRevoked),
            |w| {
                w.grant().status = GrantStatus::Revoked;
                w.operation = None;
            },
        ),
        case(
            "order-grant-revoked-and-partner-offboarded",
            Err(GrantRevoked),
            |w| {
                w.grant().status = GrantStatus::Revoked;
                w.partner().status = PartnerStatus::Offboarded;
            },
        ),
        case(
            "order-grant-revoked-and-credential-revoked",
            Err(GrantRevoked),
            |w| {
                w.grant().status = GrantStatus::Revoked;
                w.credential_revoked = true;
            },
        ),
        case(
            "order-credential-revoked-and-partner-gone",
            Err(CredentialRevoked),
            |w| {
                w.credential_revoked = true;
                w.partner().status = PartnerStatus::Offboarded;
            },
        ),
        case(
            "order-partner-offboarded-and-someone-elses",
            Err(PartnerInactive),
            |w| {
                w.partner().status = PartnerStatus::Offboarded;
                w.partner().id = partner_id(8);
            },
        ),
        case(
            "order-grant-suspended-and-jti-revoked",
            Err(GrantInactive),
            |w| {
                w.grant().status = GrantStatus::Suspended;
                w.jti_revoked = true;
            },
        ),
        case(
            "order-epoch-stale-and-partner-suspended",
            Err(TokenRevoked),
            |w| {
                w.grant().epoch += 1;
                w.partner().status = PartnerStatus::Suspended;
            },
        ),
        case(
            "order-partner-suspended-and-unknown-operation",
            Err(PartnerInactive),
            |w| {
                w.partner().status = PartnerStatus::Suspended;
                w.operation = None;
            },
        ),
        case(
            "order-unknown-operation-and-wrong-environment",
            Err(UnknownOperation),
            |w| {
                w.operation = None;
                w.environment = env("staging");
            },
        ),
        case(
            "order-scope-missing-and-class-too-high",
            Err(ScopeNotGranted),
            |w| {
                w.token.scopes.retain(|s| s.as_str() != "orders:read");
                w.op().data_class = DataClass::Restricted;
            },
        ),
        case(
            "order-class-too-high-and-region-outside",
            Err(DataClassExceedsGrant),
            |w| {
                w.op().data_class = DataClass::Restricted;
                w.op().region = region("apac");
            },
        ),
        case(
            "order-region-outside-and-wrong-environment",
            Err(RegionNotPermitted),
            |w| {
                w.op().region = region("apac");
                w.environment = env("staging");
            },
        ),
        case(
            "order-basis-missing-and-wrong-environment",
            Err(TransferBasisMissing),
            |w| {
                w.call("orders:export");
                w.grant().transfer_basis = None;
                w.environment = env("staging");
            },
        ),
        case(
            "order-wrong-environment-and-outside-window",
            Err(EnvironmentMismatch),
            |w| {
                w.environment = env("staging");
                w.grant().time_window = Some(window(&["sat", "sun"], "00:00", "23:59", "UTC"));
            },
        ),
        case(
            "order-outside-window-and-dpop-missing",
            Err(OutsideTimeWindow),
            |w| {
                w.grant().time_window = Some(window(&["sat", "sun"], "00:00", "23:59", "UTC"));
                w.grant().require_dpop = true;
            },
        ),
    ]
}

fn world_for(c: &Case) -> World {
    let mut w = World::baseline();
    (c.mutate)(&mut w);
    w
}

fn render(outcome: Outcome) -> String {
    match outcome {
        Ok(()) => "allow".to_owned(),
        Err(r) => format!("deny({r})"),
    }
}

#[test]
fn baseline_is_what_the_fixture_says() {
    let w = World::baseline();
    assert_eq!(
        w.now.in_tz("UTC").unwrap().weekday(),
        jiff::civil::Weekday::Wednesday
    );
    let berlin = w.now.in_tz("Europe/Berlin").unwrap();
    assert_eq!((berlin.hour(), berlin.minute()), (11, 0));
    assert_eq!(w.decide(), Ok(()));
    assert_eq!(w.check_token(), Ok(()));
    // The operation reached across the border is covered by the grant's basis.
    let export = w
        .api
        .as_ref()
        .unwrap()
        .operations
        .iter()
        .find(|o| o.scope == scope("orders:export"))
        .unwrap();
    assert!(!w.partner.as_ref().unwrap().regions.contains(&export.region));
}

#[test]
fn case_names_are_unique() {
    let mut seen = HashSet::new();
    for c in cases() {
        assert!(seen.insert(c.name), "duplicate case name {}", c.name);
    }
}

/// Every case, asserted on its own expectation; all mismatches are reported together.
#[test]
fn every_case_decides_as_expected() {
    let mismatches: Vec<String> = cases()
        .iter()
        .filter_map(|c| {
            let got = world_for(c).decide();
            (got != c.expect).then(|| {
                format!(
                    "{}: expected {}, got {}",
                    c.name,
                    render(c.expect),
                    render(got)
                )
            })
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The table as `case → outcome` lines, one per case, in table order.
#[test]
fn decision_table_snapshot() {
    let cases = cases();
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let text: String = cases
        .iter()
        .map(|c| format!("{:<width$} → {}\n", c.name, render(world_for(c).decide())))
        .collect();
    insta::assert_snapshot!("decision_table", text);
}

/// A handful of cases asserted directly, so accepting a wrong snapshot (or editing a
/// table expectation) cannot hide a regression on the decisions that matter most.
#[test]
fn key_cases_directly() {
    let run = |f: fn(&mut World)| {
        let mut w = World::baseline();
        f(&mut w);
        w.decide()
    };
    assert_eq!(run(|_| {}), Ok(()));
    // exp: refused from exactly `now - leeway`, allowed one second later.
    assert_eq!(
        run(|w| w.token.exp = w.now_s() - w.leeway),
        Err(Reason::TokenExpired)
    );
    assert_eq!(run(|w| w.token.exp = w.now_s() - w.leeway + 1), Ok(()));
    // An unknown grant is an invalid token, not a policy denial.
    assert_eq!(run(|w| w.grant = None), Err(Reason::TokenInvalid));
    // Revocation beats everything after it; expiry beats revocation.
    assert_eq!(
        run(|w| {
            let now = w.now;
            w.grant().revoke(name("ended"), now).unwrap();
        }),
        Err(Reason::GrantRevoked)
    );
    assert_eq!(
        run(|w| {
            w.token.exp = w.now_s() - 600;
            w.grant().status = GrantStatus::Revoked;
        }),
        Err(Reason::TokenExpired)
    );
    assert_eq!(run(|w| w.grant().epoch += 1), Err(Reason::TokenRevoked));
    assert_eq!(
        run(|w| w.partner().status = PartnerStatus::Offboarded),
        Err(Reason::PartnerOffboarded)
    );
    assert_eq!(
        run(|w| w.partner().status = PartnerStatus::Suspended),
        Err(Reason::PartnerInactive)
    );
    // The revoked credential's own token says so, even though its revocation also bumped
    // the epoch; a revoked grant still comes first.
    assert_eq!(
        run(|w| {
            w.credential_revoked = true;
            w.grant().epoch += 1;
        }),
        Err(Reason::CredentialRevoked)
    );
    // Scope before data class.
    assert_eq!(
        run(|w| {
            w.grant().scopes.retain(|s| s.as_str() != "orders:read");
            w.op().data_class = DataClass::Restricted;
        }),
        Err(Reason::ScopeNotGranted)
    );
    // Cross-border: the basis is what makes the difference.
    assert_eq!(run(|w| w.call("orders:export")), Ok(()));
    assert_eq!(
        run(|w| {
            w.call("orders:export");
            w.grant().transfer_basis = None;
        }),
        Err(Reason::TransferBasisMissing)
    );
    // DPoP: a bound token without a valid proof never passes.
    assert_eq!(
        run(|w| w.token.jkt = Some("t".into())),
        Err(Reason::DpopInvalid)
    );
    assert_eq!(
        run(|w| {
            w.grant().require_dpop = true;
            w.dpop_valid = Some(true);
        }),
        Ok(())
    );
}

/// What the pure function can answer. `token_missing` (no token to build facts from),
/// `audit_unavailable` (the store) and any code for the gateway's own state are decided by
/// its callers.
const FUNCTION_REASONS: [Reason; 16] = [
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    CredentialRevoked,
    GrantInactive,
    GrantRevoked,
    PartnerInactive,
    PartnerOffboarded,
    UnknownOperation,
    ScopeNotGranted,
    DataClassExceedsGrant,
    RegionNotPermitted,
    TransferBasisMissing,
    EnvironmentMismatch,
    OutsideTimeWindow,
    DpopInvalid,
];

/// The table exercises every reason the pure function can produce, and the function
/// produces nothing else.
#[test]
fn table_covers_every_reason_of_the_function() {
    let produced: BTreeSet<&str> = cases()
        .iter()
        .filter_map(|c| world_for(c).decide().err())
        .map(Reason::as_str)
        .collect();
    let expected: BTreeSet<&str> = FUNCTION_REASONS.iter().map(|r| r.as_str()).collect();
    assert_eq!(produced, expected);
    assert!(FUNCTION_REASONS.iter().all(|r| Reason::ALL.contains(r)));
    assert!(cases().iter().any(|c| world_for(c).decide().is_ok()));
}

/// Introspection (`check_token`) and the gateway (`decide_call`) agree: a token-level
/// denial is the same from both, and anything the gateway denies on policy grounds — or
/// allows — passes the token-level checks.
#[test]
fn check_token_agrees_with_decide_call() {
    for c in cases() {
        let w = world_for(&c);
        let call = w.decide();
        let token = w.check_token();
        match call {
            Err(r) if r.is_token_level() => assert_eq!(token, Err(r), "{}", c.name),
            _ => assert_eq!(token, Ok(()), "{}", c.name),
        }
    }
}

/// Default deny: with nothing known, nothing passes.
#[test]
fn nothing_known_is_denied() {
    let mut w = World::baseline();
    w.grant = None;
    w.api = None;
    w.partner = None;
    w.operation = None;
    assert_eq!(w.decide(), Err(Reason::TokenInvalid));
    assert_eq!(w.check_token(), Err(Reason::TokenInvalid));
    // A token whose scope set is empty reaches nothing even on a live grant.
    let mut w = World::baseline();
    w.token.scopes.clear();
    assert_eq!(w.decide(), Err(Reason::ScopeNotGranted));
    assert_eq!(w.check_token(), Ok(()));
}
