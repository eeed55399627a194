//! The closed enums' wire names: `as_str` is the serde name, `ALL` lists every value once,
//! and `parse`/`FromStr` accept exactly those names (what the CLI's value parsers rely on).

use std::str::FromStr;

use charter_core::review::{AttestDecision, ReviewKind, ReviewStatus};
use charter_core::{CredentialKind, DataClass, PartnerKind, Role};

fn check<T>(all: &[T], as_str: fn(T) -> &'static str, names: &[&str])
where
    T: Copy + std::fmt::Debug + PartialEq + serde::Serialize + FromStr + std::fmt::Display,
    <T as FromStr>::Err: std::fmt::Display,
{
    assert_eq!(all.iter().map(|v| as_str(*v)).collect::<Vec<_>>(), names);
    for v in all {
        let name = as_str(*v);
        assert_eq!(
            serde_json::to_value(v).unwrap(),
            name,
            "serde name of {v:?}"
        );
        assert_eq!(v.to_string(), name);
        assert_eq!(name.parse::<T>().ok(), Some(*v));
        // Exact names only: no case folding, no surrounding space.
        assert!(name.to_uppercase().parse::<T>().is_err());
        assert!(format!(" {name}").parse::<T>().is_err());
    }
    let err = "nonsense".parse::<T>().err().unwrap().to_string();
    assert!(
        err.contains("unknown") && err.contains("\"nonsense\""),
        "{err}"
    );
}

#[test]
fn every_closed_enum_has_its_serde_names() {
    check(
        &Role::ALL,
        Role::as_str,
        &[
            "admin",
            "api_owner",
            "steward",
            "approver",
            "auditor",
            "gateway",
        ],
    );
    check(
        &PartnerKind::ALL,
        PartnerKind::as_str,
        &["direct", "reseller", "saas_connector"],
    );
    check(
        &CredentialKind::ALL,
        CredentialKind::as_str,
        &["client_secret", "private_key_jwt"],
    );
    check(
        &DataClass::ALL,
        DataClass::as_str,
        &["public", "internal", "confidential", "restricted"],
    );
    check(
        &ReviewKind::ALL,
        ReviewKind::as_str,
        &["recertification", "post_incident"],
    );
    check(
        &ReviewStatus::ALL,
        ReviewStatus::as_str,
        &["open", "completed"],
    );
    check(
        &AttestDecision::ALL,
        AttestDecision::as_str,
        &["keep", "reduce", "revoke"],
    );
    assert_eq!(Role::parse("api_owner"), Some(Role::ApiOwner));
    assert_eq!(DataClass::parse("secret"), None);
}

#[test]
fn all_is_in_data_class_order() {
    assert!(DataClass::ALL.windows(2).all(|w| w[0] < w[1]));
}
