//! One baseline world in which a call is allowed, and the handles a case uses to change
//! exactly one thing about it.
//!
//! Baseline: a direct partner processing in `eu`; the `orders` API with operations of
//! different data classes and regions; an active grant (confidential ceiling, regions `eu`
//! and `us` with a transfer basis, production only, no time window, no DPoP); a token
//! minted for that grant a minute ago; and a call of `GET /orders/{id}` (confidential,
//! `eu`) at a gateway enforcing `production`. `now` is Wednesday 2026-12-02 10:00 UTC
//! (11:00 in Berlin), well inside the grant's life.

use charter_core::decision::{self, CallContext, Expectations, Reason, TokenContext, TokenFacts};
use charter_core::{
    Api, ApiId, ApiName, Audience, DataClass, Environment, Grant, GrantId, GrantStatus, Method,
    Name, Operation, Partner, PartnerId, PartnerKind, PartnerStatus, PathTemplate, PrincipalId,
    Region, Scope, TimeWindow, UpstreamUrl,
};
use jiff::{SignedDuration, Timestamp};

pub const ISSUER: &str = "https://charter.example.com";
pub const AUDIENCE: &str = "https://api.example.com/orders";
pub const LEEWAY: i64 = 5;
/// Wednesday; 11:00 in Europe/Berlin (CET, UTC+1).
pub const NOW: &str = "2026-12-02T10:00:00Z";

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

pub fn region(s: &str) -> Region {
    Region::parse(s).unwrap()
}

pub fn env(s: &str) -> Environment {
    Environment::parse(s).unwrap()
}

pub fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

pub fn principal(n: u8) -> PrincipalId {
    PrincipalId::generate(1_700_000_000_000, [n; 10])
}

pub fn api_id(n: u8) -> ApiId {
    ApiId::generate(1_700_000_000_000, [n; 10])
}

pub fn partner_id(n: u8) -> PartnerId {
    PartnerId::generate(1_700_000_000_000, [n; 10])
}

pub fn grant_id(n: u8) -> GrantId {
    GrantId::generate(1_700_000_000_000, [n; 10])
}

/// A time window from its wire form (its fields are private: it is only ever parsed).
pub fn window(days: &[&str], start: &str, end: &str, timezone: &str) -> TimeWindow {
    serde_json::from_value(serde_json::json!({
        "days": days, "start": start, "end": end, "timezone": timezone,
    }))
    .unwrap()
}

fn op(scope_name: &str, method: Method, path: &str, class: DataClass, reg: &str) -> Operation {
    Operation {
        scope: scope(scope_name),
        method,
        path: PathTemplate::parse(path).unwrap(),
        data_class: class,
        region: region(reg),
    }
}

/// Everything the decision function looks at, owned, so a case can change any part.
#[derive(Debug, Clone)]
pub struct World {
    pub now: Timestamp,
    pub issuer: String,
    pub leeway: i64,
    pub token: TokenFacts,
    /// `None`: the live view knows no such object.
    pub grant: Option<Grant>,
    pub api: Option<Api>,
    pub partner: Option<Partner>,
    pub jti_revoked: bool,
    /// The token's credential (its `client_id`) was revoked.
    pub credential_revoked: bool,
    /// The matched operation, by scope (`None`: the request matched no operation).
    pub operation: Option<Operation>,
    pub environment: Environment,
    pub dpop_valid: Option<bool>,
}

impl World {
    pub fn baseline() -> Self {
        let now = ts(NOW);
        let api = Api {
            id: api_id(1),
            name: ApiName::parse("orders").unwrap(),
            audience: Audience::parse(AUDIENCE).unwrap(),
            upstream: UpstreamUrl::parse("http://127.0.0.1:9").unwrap(),
            owner: principal(9),
            operations: vec![
                op(
                    "orders:read",
                    Method::Get,
                    "/orders/{id}",
                    DataClass::Confidential,
                    "eu",
                ),
                op(
                    "orders:list",
                    Method::Get,
                    "/orders",
                    DataClass::Internal,
                    "eu",
                ),
                op(
                    "orders:write",
                    Method::Post,
                    "/orders",
                    DataClass::Confidential,
                    "eu",
                ),
                op(
                    "orders:export",
                    Method::Get,
                    "/orders/export",
                    DataClass::Confidential,
                    "us",
                ),
                op(
                    "payments:read",
                    Method::Get,
                    "/payments/{id}",
                    DataClass::Restricted,
                    "eu",
                ),
                op(
                    "orders:archive",
                    Method::Get,
                    "/archive/{id}",
                    DataClass::Public,
                    "apac",
                ),
            ],
            revision: 1,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
        };
        let partner = Partner {
            id: partner_id(2),
            name: name("Acme Logistics"),
            kind: PartnerKind::Direct,
            regions: vec![region("eu")],
            owners: vec![principal(3)],
            status: PartnerStatus::Active,
            created_at: ts("2026-01-01T00:00:00Z"),
            updated_at: ts("2026-01-01T00:00:00Z"),
            owner_changes: Vec::new(),
        };
        let granted = [
            "orders:read",
            "orders:list",
            "orders:write",
            "orders:export",
        ];
        let grant = Grant {
            id: grant_id(4),
            partner: partner.id.clone(),
            api: api.id.clone(),
            use_case: name("order sync"),
            scopes: granted.iter().map(|s| scope(s)).collect(),
            data_class_ceiling: DataClass::Confidential,
            regions: vec![region("eu"), region("us")],
            environments: vec![env("production")],
            transfer_basis: Some(name("SCC 2021/914 module 1")),
            time_window: None,
            require_dpop: false,
            data_exception_required: false,
            emergency: None,
            expires_at: now + SignedDuration::from_hours(24 * 30),
            token_ttl_seconds: 600,
            recertify_every_days: 90,
            approvals_required: 1,
            status: GrantStatus::Active,
            status_reason: None,
            requested_by: principal(5),
            requested_at: ts("2026-11-01T09:00:00Z"),
            approvers: partner.owners.clone(),
            approvals: Vec::new(),
            activated_at: Some(ts("2026-11-01T10:00:00Z")),
            review_due_at: Some(ts("2027-01-30T10:00:00Z")),
            ended_at: None,
            epoch: 3,
        };
        let token = TokenFacts {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            client_id: "cl_acme".to_owned(),
            scopes: granted.iter().map(|s| scope(s)).collect(),
            jti: "jti-0001".to_owned(),
            nbf: now.as_second() - 60,
            exp: now.as_second() + 540,
            grant: grant.id.to_string(),
            epoch: 3,
            jkt: None,
        };
        let operation = api.operations.first().cloned();
        World {
            now,
            issuer: ISSUER.to_owned(),
            leeway: LEEWAY,
            token,
            grant: Some(grant),
            api: Some(api),
            partner: Some(partner),
            jti_revoked: false,
            credential_revoked: false,
            operation,
            environment: env("production"),
            dpop_valid: None,
        }
    }

    pub fn now_s(&self) -> i64 {
        self.now.as_second()
    }

    pub fn grant(&mut self) -> &mut Grant {
        self.grant.as_mut().unwrap()
    }

    pub fn partner(&mut self) -> &mut Partner {
        self.partner.as_mut().unwrap()
    }

    /// The operation the call matched.
    pub fn op(&mut self) -> &mut Operation {
        self.operation.as_mut().unwrap()
    }

    /// The call matches the API's operation with this scope instead.
    pub fn call(&mut self, scope_name: &str) {
        let api = self.api.as_ref().unwrap();
        self.operation = Some(
            api.operations
                .iter()
                .find(|o| o.scope.as_str() == scope_name)
                .unwrap()
                .clone(),
        );
    }

    fn parts(&self) -> (TokenContext<'_>, CallContext<'_>, Expectations<'_>) {
        (
            TokenContext {
                grant: self.grant.as_ref(),
                api: self.api.as_ref(),
                partner: self.partner.as_ref(),
                jti_revoked: self.jti_revoked,
                credential_revoked: self.credential_revoked,
            },
            CallContext {
                operation: self.operation.as_ref(),
                environment: &self.environment,
                dpop_valid: self.dpop_valid,
            },
            Expectations {
                issuer: &self.issuer,
                leeway: self.leeway,
            },
        )
    }

    /// The gateway's decision for this call.
    pub fn decide(&self) -> Result<(), Reason> {
        let (ctx, call, expect) = self.parts();
        decision::decide_call(&self.token, ctx, call, &expect, self.now)
    }

    /// Introspection's decision for this token (no operation).
    pub fn check_token(&self) -> Result<(), Reason> {
        let (ctx, _, expect) = self.parts();
        decision::check_token(&self.token, ctx, &expect, self.now)
    }
}
