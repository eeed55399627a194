//! Seeds the demo world through the admin API over HTTP, each step as the principal whose
//! job it is (the admin creates principals, API owners publish, the steward registers
//! partners and requests grants, business owners approve), so every step lands in the
//! audit chain exactly as it would in production.

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::client::Client;
use crate::commands::id_of;

/// What the "what to try next" block needs.
pub struct World {
    /// Every seeded principal, in the order they were created.
    pub principals: Vec<Seeded>,
    pub acme_grant: String,
    /// The demo client credential of the Acme grant.
    pub client_id: String,
    pub client_secret: String,
    pub grants: usize,
}

/// A seeded principal as the demo shows it: name, roles, id, token.
pub struct Seeded {
    pub name: String,
    pub roles: String,
    pub id: String,
    pub token: String,
    /// What this principal is for in the demo world.
    pub note: &'static str,
}

struct Principal {
    id: String,
    token: String,
    client: Client,
}

impl Principal {
    fn seeded(&self, name: &str, roles: &str, note: &'static str) -> Seeded {
        Seeded {
            name: name.to_owned(),
            roles: roles.to_owned(),
            id: self.id.clone(),
            token: self.token.clone(),
            note,
        }
    }
}

/// POSTs `body` and returns the created object, with `what` in any error.
async fn create(
    client: &Client,
    segments: &[&str],
    body: Value,
    what: &str,
) -> anyhow::Result<Value> {
    client
        .post(segments, &body)
        .await
        .with_context(|| format!("seeding the demo: {what}"))
}

async fn principal(admin: &Client, name: &str, roles: &[&str]) -> anyhow::Result<Principal> {
    let reply = create(
        admin,
        &["v1", "principals"],
        json!({ "name": name, "roles": roles }),
        &format!("creating principal {name}"),
    )
    .await?;
    let token = reply
        .get("token")
        .and_then(Value::as_str)
        .context("the principal reply has no token")?
        .to_owned();
    Ok(Principal {
        id: id_of(&reply)?,
        client: admin.with_token(token.clone()),
        token,
    })
}

fn op(scope: &str, method: &str, path: &str, data_class: &str, region: &str) -> Value {
    json!({ "scope": scope, "method": method, "path": path, "data_class": data_class, "region": region })
}

/// What a seeded grant asks for.
struct Spec<'a> {
    partner: &'a str,
    api: &'a str,
    use_case: &'a str,
    scopes: &'a [&'a str],
    ceiling: &'a str,
    regions: &'a [&'a str],
    /// Further request fields (`transfer_basis`, `token_ttl_seconds`, …).
    extra: Value,
}

/// A grant request from the steward, expiring at `expires_at`.
async fn request(steward: &Principal, spec: Spec<'_>, expires_at: &str) -> anyhow::Result<String> {
    let mut body = json!({
        "partner": spec.partner,
        "api": spec.api,
        "use_case": spec.use_case,
        "scopes": spec.scopes,
        "data_class_ceiling": spec.ceiling,
        "regions": spec.regions,
        "expires_at": expires_at,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), spec.extra.as_object()) {
        b.extend(e.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let reply = create(
        &steward.client,
        &["v1", "grants"],
        body,
        &format!("requesting a grant: {}", spec.use_case),
    )
    .await?;
    id_of(&reply)
}

async fn approve(
    approver: &Principal,
    grant: &str,
    justification: &str,
    ticket: &str,
) -> anyhow::Result<()> {
    approve_with_exception(approver, grant, justification, ticket, None).await
}

/// An approval; a SaaS connector's grant above internal data also records the exception.
async fn approve_with_exception(
    approver: &Principal,
    grant: &str,
    justification: &str,
    ticket: &str,
    data_exception: Option<&str>,
) -> anyhow::Result<()> {
    let mut body =
        json!({ "decision": "approve", "justification": justification, "ticket": ticket });
    if let Some(e) = data_exception {
        body["data_exception"] = json!(e);
    }
    create(
        &approver.client,
        &["v1", "grants", grant, "approvals"],
        body,
        &format!("approving grant {grant}"),
    )
    .await
    .map(drop)
}

async fn lifecycle(
    steward: &Principal,
    grant: &str,
    verb: &str,
    reason: &str,
) -> anyhow::Result<()> {
    create(
        &steward.client,
        &["v1", "grants", grant, verb],
        json!({ "reason": reason }),
        &format!("{verb} grant {grant}"),
    )
    .await
    .map(drop)
}

/// Seeds principals, two APIs, three partners, six grants in different states and a client
/// credential for Acme's active grant.
pub async fn seed(admin: &Client, upstream: &str, now: Timestamp) -> anyhow::Result<World> {
    let orders_team = principal(admin, "orders-team", &["api_owner"]).await?;
    let customers_team = principal(admin, "customers-team", &["api_owner"]).await?;
    let steward = principal(admin, "partner-office", &["steward"]).await?;
    let alice = principal(admin, "alice", &["approver"]).await?;
    let bob = principal(admin, "bob", &["approver"]).await?;
    let auditor = principal(admin, "audit-team", &["auditor"]).await?;
    let gateway = principal(admin, "edge-gateway", &["gateway"]).await?;

    let orders = create(
        &orders_team.client,
        &["v1", "apis"],
        json!({
            "name": "orders",
            "audience": "https://api.example.com/orders",
            "upstream": upstream,
            "operations": [
                op("orders:read", "GET", "/orders/{id}", "confidential", "eu"),
                op("orders:read", "GET", "/orders", "internal", "eu"),
                op("orders:write", "POST", "/orders", "confidential", "eu"),
            ],
        }),
        "publishing the orders API",
    )
    .await?;
    let orders = id_of(&orders)?;
    let customers = create(
        &customers_team.client,
        &["v1", "apis"],
        json!({
            "name": "customers",
            "audience": "https://api.example.com/customers",
            "upstream": upstream,
            "operations": [
                op("customers:read", "GET", "/customers/{id}", "restricted", "eu"),
                op("customers:export", "GET", "/customers/export", "restricted", "us"),
            ],
        }),
        "publishing the customers API",
    )
    .await?;
    let customers = id_of(&customers)?;

    let partner = |name: &str, kind: &str, regions: &[&str], owners: &[&str]| {
        let body = json!({ "name": name, "kind": kind, "regions": regions, "owners": owners });
        let what = format!("registering partner {name}");
        let client = steward.client.clone();
        async move { id_of(&create(&client, &["v1", "partners"], body, &what).await?) }
    };
    let acme = partner("Acme Logistics", "direct", &["eu"], &[&alice.id]).await?;
    let globex = partner(
        "Globex Marketplace",
        "reseller",
        &["eu", "us"],
        &[&alice.id, &bob.id],
    )
    .await?;
    let initech = partner(
        "Initech CRM Connector",
        "saas_connector",
        &["us"],
        &[&bob.id],
    )
    .await?;

    let expires = (now + SignedDuration::from_hours(24 * 90)).to_string();
    let expires = expires.as_str();

    // Active: Acme tracks its shipments.
    let acme_grant = request(
        &steward,
        Spec {
            partner: &acme,
            api: &orders,
            use_case: "Shipment tracking: read order status to schedule pickups",
            scopes: &["orders:read"],
            ceiling: "confidential",
            regions: &["eu"],
            extra: json!({ "token_ttl_seconds": 300 }),
        },
        expires,
    )
    .await?;
    approve(
        &alice,
        &acme_grant,
        "Covered by logistics contract ACM-2025-17; read-only",
        "CHG-4211",
    )
    .await?;

    // Pending: a reseller grant needs two owners; only alice has approved so far.
    let pending_grant = request(
        &steward,
        Spec {
            partner: &globex,
            api: &orders,
            use_case: "Marketplace order sync: import orders placed on Globex",
            scopes: &["orders:read", "orders:write"],
            ceiling: "confidential",
            regions: &["eu"],
            extra: json!({}),
        },
        expires,
    )
    .await?;
    approve(
        &alice,
        &pending_grant,
        "Marketplace agreement GLX-MSA-3 signed by sales",
        "CHG-4230",
    )
    .await?;

    // Active, approved by both owners.
    let globex_customers = request(
        &steward,
        Spec {
            partner: &globex,
            api: &customers,
            use_case: "Buyer verification before marketplace checkout",
            scopes: &["customers:read"],
            ceiling: "restricted",
            regions: &["eu"],
            extra: json!({ "approvals_required": 2 }),
        },
        expires,
    )
    .await?;
    approve(
        &alice,
        &globex_customers,
        "DPIA-88 completed; verification only",
        "CHG-4231",
    )
    .await?;
    approve(
        &bob,
        &globex_customers,
        "Agree: fraud checks need the buyer record",
        "CHG-4231",
    )
    .await?;

    // Active and cross-border: the connector processes in the US, the data lives in the EU.
    let initech_read = request(
        &steward,
        Spec {
            partner: &initech,
            api: &customers,
            use_case: "CRM contact sync for EU customers, processed in the US",
            scopes: &["customers:read"],
            ceiling: "restricted",
            regions: &["eu"],
            extra: json!({ "transfer_basis": "SCC 2021/914", "require_dpop": false }),
        },
        expires,
    )
    .await?;
    // A SaaS connector above internal data: the approver records the data exception.
    approve_with_exception(
        &bob,
        &initech_read,
        "Transfer impact assessment TIA-12 on file",
        "CHG-4302",
        Some("DPA 2026-07: restricted CRM contacts, encrypted at rest at the vendor"),
    )
    .await?;

    // Revoked: a pilot that ended.
    let pilot = request(
        &steward,
        Spec {
            partner: &acme,
            api: &orders,
            use_case: "Return-label pilot: create return orders",
            scopes: &["orders:write"],
            ceiling: "confidential",
            regions: &["eu"],
            extra: json!({}),
        },
        expires,
    )
    .await?;
    approve(
        &alice,
        &pilot,
        "Four-week pilot agreed with Acme",
        "CHG-4188",
    )
    .await?;
    lifecycle(
        &steward,
        &pilot,
        "revoke",
        "Pilot ended; Acme confirmed the integration is decommissioned",
    )
    .await?;

    // Suspended: under investigation.
    let export = request(
        &steward,
        Spec {
            partner: &initech,
            api: &customers,
            use_case: "Nightly CRM export of US accounts",
            scopes: &["customers:export"],
            ceiling: "restricted",
            regions: &["us"],
            extra: json!({ "token_ttl_seconds": 900 }),
        },
        expires,
    )
    .await?;
    approve_with_exception(
        &bob,
        &export,
        "US accounts only, contract INI-2026-4",
        "CHG-4310",
        Some("DPA 2026-07 covers US account exports"),
    )
    .await?;
    lifecycle(
        &steward,
        &export,
        "suspend",
        "Unusual export volume under investigation (INC-2107)",
    )
    .await?;

    // Acme's workload gets a client credential for its active grant.
    let credential = create(
        &steward.client,
        &["v1", "grants", &acme_grant, "credentials"],
        json!({ "kind": "client_secret" }),
        "issuing Acme's client credential",
    )
    .await?;
    let text = |key: &str| {
        credential
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("the credential reply has no {key}"))
    };

    Ok(World {
        principals: vec![
            orders_team.seeded("orders-team", "api_owner", "owns the orders API"),
            customers_team.seeded("customers-team", "api_owner", "owns the customers API"),
            steward.seeded(
                "partner-office",
                "steward",
                "registers partners, requests grants, issues credentials",
            ),
            alice.seeded("alice", "approver", "owner of Acme and Globex"),
            bob.seeded("bob", "approver", "owner of Globex and Initech"),
            auditor.seeded("audit-team", "auditor", "reads everything"),
            gateway.seeded("edge-gateway", "gateway", "may introspect tokens"),
        ],
        client_id: text("client_id")?,
        client_secret: text("client_secret")?,
        acme_grant,
        grants: 6,
    })
}
