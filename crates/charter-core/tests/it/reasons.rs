//! Reason codes are contract: names in responses, headers and audit records.

use std::collections::HashSet;

use charter_core::decision::Reason;

/// The fixed list in DESIGN.md ("Access events"). Later issues may add codes; none is
/// renamed, so every one of these must still be there.
const DESIGN_REASONS: [&str; 18] = [
    "token_missing",
    "token_invalid",
    "token_expired",
    "token_revoked",
    "grant_inactive",
    "grant_revoked",
    "partner_inactive",
    "unknown_operation",
    "scope_not_granted",
    "data_class_exceeds_grant",
    "region_not_permitted",
    "transfer_basis_missing",
    "environment_mismatch",
    "outside_time_window",
    "dpop_invalid",
    "audit_unavailable",
    "credential_revoked",
    "partner_offboarded",
];

/// Token-level reasons (401 with `WWW-Authenticate`), per DESIGN.md.
const TOKEN_LEVEL: [&str; 9] = [
    "token_missing",
    "token_invalid",
    "token_expired",
    "token_revoked",
    "grant_inactive",
    "grant_revoked",
    "partner_inactive",
    "credential_revoked",
    "partner_offboarded",
];

/// The refusals an offboarding probe counts as proof of removal, per DESIGN.md.
const REVOCATION: [&str; 4] = [
    "token_revoked",
    "grant_revoked",
    "credential_revoked",
    "partner_offboarded",
];

fn is_snake_case(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.split('_').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[test]
fn all_lists_each_variant_once() {
    let distinct: HashSet<Reason> = Reason::ALL.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        Reason::ALL.len(),
        "a variant is listed twice"
    );
}

#[test]
fn names_are_unique_and_snake_case() {
    let mut seen = HashSet::new();
    for r in Reason::ALL {
        let name = r.as_str();
        assert!(is_snake_case(name), "{name} is not snake_case");
        assert!(seen.insert(name), "{name} is used twice");
        assert_eq!(r.to_string(), name, "Display and as_str differ for {name}");
    }
}

#[test]
fn design_names_are_all_present() {
    let names: HashSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    for name in DESIGN_REASONS {
        assert!(names.contains(name), "{name} is missing or renamed");
    }
}

#[test]
fn token_level_is_exactly_the_design_set() {
    for r in Reason::ALL {
        assert_eq!(
            r.is_token_level(),
            TOKEN_LEVEL.contains(&r.as_str()),
            "{r}: is_token_level disagrees with DESIGN.md"
        );
    }
    // Each token-level name exists (none silently dropped from the set).
    for name in TOKEN_LEVEL {
        assert!(
            Reason::ALL
                .iter()
                .any(|r| r.as_str() == name && r.is_token_level()),
            "{name}"
        );
    }
}

#[test]
fn revocation_reasons_are_exactly_the_design_set_and_token_level() {
    for r in Reason::ALL {
        assert_eq!(r.is_revocation(), REVOCATION.contains(&r.as_str()), "{r}");
        assert!(!r.is_revocation() || r.is_token_level(), "{r}");
        assert_eq!(Reason::parse(r.as_str()), Some(r));
    }
    assert_eq!(Reason::parse("forbidden"), None);
}

#[test]
fn snake_case_check_itself() {
    assert!(is_snake_case("data_class_exceeds_grant"));
    for bad in [
        "",
        "Token_invalid",
        "token-invalid",
        "token__invalid",
        "_x",
        "x_",
        "2fa_code",
        "a b",
    ] {
        assert!(!is_snake_case(bad), "{bad}");
    }
}
