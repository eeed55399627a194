//! The admin API's wire format: what handlers receive and return, and the `/openapi.json`
//! schemas. One module per resource; each reply type converts `From<&core::X>` and each
//! request body converts into the `charter-core` input it stands for.
//!
//! Invariant: the JSON here is contract (DESIGN.md). A field, an enum spelling or whether an
//! absent value is `null` or skipped changes only with the contract, never because a core
//! type changed: core's serde derives are the stored document format, not the API.
//!
//! Request bodies keep core's value types (`Name`, `Scope`, ids, `TimeWindow`) as fields, so
//! values are parsed while the body is read, with the same 422 messages as every other
//! field; reply types hold plain strings.

pub mod apis;
pub mod credentials;
pub mod grants;
pub mod offboarding;
pub mod partners;
pub mod principals;
pub mod reviews;

pub use apis::{Api, Operation, PublishApi};
pub use credentials::{
    Credential, CredentialKind, CredentialStatus, CredentialVersion, IssuedCredential,
    NewCredential, RotateCredential,
};
pub use grants::{
    Approval, ApprovalDecision, Decision, Emergency, Grant, GrantRequest, GrantStatus,
};
pub use offboarding::{Canary, Check, Offboarding, OffboardingStatus};
pub use partners::{NewPartner, Partner, PartnerKind, PartnerStatus, PatchPartner};
pub use principals::{NewPrincipal, Principal, PrincipalWithToken, RotateBody};
pub use reviews::{
    AttestBody, AttestDecision, Attestation, Review, ReviewItem, ReviewKind, ReviewStatus,
    ReviewSubject, StartReview, UsageEvidence,
};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A wire enum mirroring a core enum variant for variant, with conversions both ways.
/// The spelling is set by the `serde(rename_all)` given with it.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident = $core:path { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        $(#[$m])*
        pub enum $name {
            $($(#[$vm])* $v),+
        }

        impl From<$core> for $name {
            fn from(v: $core) -> Self {
                type Core = $core;
                match v {
                    $(Core::$v => Self::$v),+
                }
            }
        }

        impl From<$name> for $core {
            fn from(v: $name) -> Self {
                type Core = $core;
                match v {
                    $($name::$v => Core::$v),+
                }
            }
        }
    };
}
pub(crate) use wire_enum;

/// Strings of a list of values.
pub(crate) fn strings<T: std::fmt::Display>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// The string of an optional value (`null` when absent).
pub(crate) fn opt_string<T: std::fmt::Display>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

wire_enum!(
    /// Data classification, from least to most sensitive.
    #[serde(rename_all = "snake_case")]
    DataClass = charter_core::DataClass { Public, Internal, Confidential, Restricted }
);

wire_enum!(
    /// What a principal may do on the admin API.
    #[serde(rename_all = "snake_case")]
    Role = charter_core::Role { Admin, ApiOwner, Steward, Approver, Auditor, Gateway }
);

wire_enum!(
    /// HTTP methods an operation can be published with.
    #[serde(rename_all = "UPPERCASE")]
    Method = charter_core::Method { Get, Head, Post, Put, Patch, Delete, Options }
);

wire_enum!(
    /// Day of the week in a time window.
    #[serde(rename_all = "lowercase")]
    Weekday = charter_core::Weekday { Mon, Tue, Wed, Thu, Fri, Sat, Sun }
);

/// When calls are allowed: on `days`, from `start` to `end` (`HH:MM`) local time in
/// `timezone`. A window whose end is before its start runs past midnight.
///
/// Request bodies read a window as `charter_core::TimeWindow` (parsed on arrival); this is
/// its schema and its reply form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub days: Vec<Weekday>,
    pub start: String,
    pub end: String,
    pub timezone: String,
}

impl From<&charter_core::TimeWindow> for TimeWindow {
    fn from(w: &charter_core::TimeWindow) -> Self {
        Self {
            days: w.days().iter().map(|&d| d.into()).collect(),
            start: w.start(),
            end: w.end(),
            timezone: w.timezone().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The wire form of each record is, today, byte for byte its stored form: the contract
    //! did not move when the API got its own types.

    use charter_core::grant::ApprovalInput;
    use charter_core::*;
    use serde::Serialize;

    fn same<W: Serialize, C: Serialize>(wire: &W, core: &C) {
        assert_eq!(
            serde_json::to_string(wire).unwrap(),
            serde_json::to_string(core).unwrap()
        );
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn world() -> (Api, Partner, Principal) {
        let owner = Principal {
            id: PrincipalId::generate(1, [1; 10]),
            name: Name::parse("Ana").unwrap(),
            roles: vec![Role::Approver, Role::ApiOwner],
            created_at: ts("2026-01-01T00:00:00Z"),
            token_expires_at: ts("2026-04-01T00:00:00Z"),
            disabled: false,
        };
        let api = Api {
            id: ApiId::generate(1, [2; 10]),
            name: ApiName::parse("orders").unwrap(),
            audience: Audience::parse("https://api.example.com/orders").unwrap(),
            upstream: UpstreamUrl::parse("http://127.0.0.1:9").unwrap(),
            owner: owner.id.clone(),
            operations: vec![Operation {
                scope: Scope::parse("orders:read").unwrap(),
                method: Method::Get,
                path: PathTemplate::parse("/orders/{id}").unwrap(),
                data_class: DataClass::Confidential,
                region: Region::parse("eu").unwrap(),
            }],
            revision: 2,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-02T00:00:00Z"),
        };
        let partner = Partner {
            id: PartnerId::generate(1, [3; 10]),
            name: Name::parse("Acme").unwrap(),
            kind: PartnerKind::SaasConnector,
            regions: vec![Region::parse("eu").unwrap()],
            owners: vec![owner.id.clone()],
            status: PartnerStatus::Active,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
            owner_changes: Vec::new(),
        };
        (api, partner, owner)
    }

    #[test]
    fn records_render_as_they_are_stored() {
        let (api, partner, owner) = world();
        same(&super::Api::from(&api), &api);
        same(&super::Partner::from(&partner), &partner);
        same(&super::Principal::from(&owner), &owner);

        let now = ts("2026-02-01T10:00:00Z");
        let window: TimeWindow = serde_json::from_value(serde_json::json!({
            "days": ["mon", "sun"], "start": "22:00", "end": "06:30", "timezone": "Europe/Paris"
        }))
        .unwrap();
        let request = |emergency: Option<Emergency>, hours: i64| grant::GrantRequest {
            partner: partner.id.clone(),
            api: api.id.clone(),
            use_case: Name::parse("sync").unwrap(),
            scopes: vec![Scope::parse("orders:read").unwrap()],
            data_class_ceiling: DataClass::Internal,
            regions: vec![Region::parse("eu").unwrap()],
            environments: None,
            expires_at: now + jiff::SignedDuration::from_hours(hours),
            token_ttl_seconds: None,
            recertify_every_days: None,
            approvals_required: None,
            transfer_basis: Some(Name::parse("SCC").unwrap()),
            time_window: Some(window.clone()),
            require_dpop: Some(true),
            emergency,
        };
        let mut api_internal = api.clone();
        api_internal.operations[0].data_class = DataClass::Internal;
        let requester = PrincipalId::generate(1, [9; 10]);
        let mut g = request(None, 24 * 30)
            .into_grant(
                GrantId::generate(2, [0; 10]),
                &api_internal,
                &partner,
                requester.clone(),
                now,
            )
            .unwrap();
        same(&super::Grant::from(&g), &g);
        let mut approval = ApprovalInput::approve(Name::parse("ok").unwrap());
        approval.ticket = Some(Name::parse("T-1").unwrap());
        g.decide(&partner, &owner.id, approval, now).unwrap();
        same(&super::Grant::from(&g), &g);
        let incident = Emergency {
            incident: Name::parse("INC-1").unwrap(),
        };
        let e = request(Some(incident), 2)
            .into_grant(
                GrantId::generate(3, [0; 10]),
                &api_internal,
                &partner,
                requester,
                now,
            )
            .unwrap();
        same(&super::Grant::from(&e), &e);
    }
}
