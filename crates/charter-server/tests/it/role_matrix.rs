//! Route × role: every admin route refuses (403) every role the contract does not give it,
//! and lets through (neither 401 nor 403) every role it does.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, World, orders_api};

const ROLES: [&str; 6] = [
    "admin",
    "api_owner",
    "steward",
    "approver",
    "auditor",
    "gateway",
];
const READERS: &[&str] = &["admin", "api_owner", "steward", "approver", "auditor"];

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static [&'static str],
}

fn case(
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static [&'static str],
) -> Case {
    Case {
        method,
        path,
        body,
        allowed,
    }
}

both_backends! {
    async fn each_route_refuses_the_roles_it_should(app: TestApp) {
        let w = World::new(&app).await;
        // One principal per role. The approver owns both partners; the API owner owns the API.
        let mut tokens = Vec::new();
        for role in ROLES {
            let token = match role {
                "admin" => ADMIN_TOKEN.to_owned(),
                "api_owner" => w.owner.1.clone(),
                "steward" => w.steward.1.clone(),
                "approver" => w.alice.1.clone(),
                "auditor" => w.auditor.1.clone(),
                _ => app.principal("edge-gateway", &["gateway"]).await.1,
            };
            tokens.push((role, token));
        }
        let (target, _) = app.principal("target", &["auditor"]).await;
        let grant = w.pending_grant(&app).await;
        let lifecycle_grant = w.active_grant(&app).await;
        let cred_grant = w.active_grant(&app).await;
        let (s, cred) = app.post(&format!("/v1/grants/{cred_grant}/credentials"), &w.steward.1, json!({ "kind": "client_secret" })).await;
        assert_eq!(s, StatusCode::CREATED);
        let cred = cred["id"].as_str().unwrap().to_owned();
        let mut api_body = orders_api("orders", "https://api.example.com/orders");
        api_body["owner"] = json!(w.owner.0);
        let mut new_api = orders_api("orders-matrix", "https://api.example.com/matrix");
        new_api["owner"] = json!(w.owner.0);
        let partner_body = json!({ "name": "Matrix Partner", "kind": "direct", "regions": ["eu"], "owners": [w.alice.0] });
        let reason = json!({ "reason": "matrix test" });

        let cases = vec![
            case(Method::POST, "/v1/principals".into(), Some(json!({ "name": "new", "roles": ["auditor"] })), &["admin"]),
            case(Method::GET, "/v1/principals".into(), None, &["admin"]),
            case(Method::GET, format!("/v1/principals/{target}"), None, &["admin"]),
            case(Method::POST, format!("/v1/principals/{target}/rotate"), None, &["admin"]),
            case(Method::POST, format!("/v1/principals/{target}/disable"), Some(reason.clone()), &["admin"]),
            case(Method::POST, "/v1/apis".into(), Some(new_api), &["admin", "api_owner"]),
            case(Method::PUT, format!("/v1/apis/{}", w.api), Some(api_body), &["admin", "api_owner"]),
            case(Method::GET, "/v1/apis".into(), None, READERS),
            case(Method::GET, format!("/v1/apis/{}", w.api), None, READERS),
            case(Method::POST, "/v1/partners".into(), Some(partner_body), &["admin", "steward"]),
            case(Method::PATCH, format!("/v1/partners/{}", w.direct), Some(json!({ "regions": ["eu"] })), &["admin", "steward"]),
            // Whoever sets the owners chooses who approves: admins only.
            case(Method::PATCH, format!("/v1/partners/{}", w.direct), Some(json!({ "owners": [w.alice.0] })), &["admin"]),
            case(Method::GET, "/v1/partners".into(), None, READERS),
            case(Method::GET, format!("/v1/partners/{}", w.direct), None, READERS),
            case(Method::POST, "/v1/grants".into(), Some(w.grant_body(&app, &w.direct)), &["admin", "steward"]),
            case(Method::GET, "/v1/grants".into(), None, READERS),
            case(Method::GET, format!("/v1/grants/{grant}"), None, READERS),
            // Separation of duties binds admins too: only an owner of the partner decides.
            case(Method::POST, format!("/v1/grants/{grant}/approvals"),
                Some(json!({ "decision": "approve", "justification": "matrix" })), &["approver"]),
            case(Method::POST, format!("/v1/grants/{lifecycle_grant}/suspend"), Some(reason.clone()), &["admin", "steward"]),
            case(Method::POST, format!("/v1/grants/{lifecycle_grant}/resume"), Some(reason.clone()), &["admin", "steward"]),
            case(Method::POST, format!("/v1/grants/{lifecycle_grant}/revoke"), Some(reason), &["admin", "steward"]),
            case(Method::POST, format!("/v1/grants/{cred_grant}/credentials"), Some(json!({ "kind": "client_secret" })), &["admin", "steward"]),
            case(Method::GET, format!("/v1/grants/{cred_grant}/credentials"), None, READERS),
            case(Method::GET, format!("/v1/credentials/{cred}"), None, READERS),
            case(Method::POST, format!("/v1/credentials/{cred}/rotate"), Some(json!({ "overlap_seconds": 60 })), &["admin", "steward"]),
            case(Method::POST, format!("/v1/credentials/{cred}/revoke"), Some(json!({ "reason": "matrix" })), &["admin", "steward"]),
            case(Method::POST, "/v1/keys/rotate".into(), None, &["admin"]),
            case(Method::GET, "/v1/keys".into(), None, &["admin", "auditor"]),
            case(Method::GET, "/v1/audit".into(), None, &["admin", "steward", "auditor"]),
            case(Method::GET, "/v1/audit/verify".into(), None, READERS),
            case(Method::GET, "/metrics".into(), None, &ROLES),
        ];

        let mut failures = Vec::new();
        for c in &cases {
            // Refused roles first, so an allowed call's state change cannot mask a refusal.
            let mut order: Vec<_> = tokens.iter().collect();
            order.sort_by_key(|(role, _)| c.allowed.contains(role));
            for (role, token) in order {
                let (status, body) = app.call(c.method.clone(), &c.path, Some(token), c.body.clone()).await;
                let allowed = c.allowed.contains(role);
                let ok = if allowed {
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED && status.is_success()
                        || status == StatusCode::CONFLICT
                } else {
                    status == StatusCode::FORBIDDEN
                };
                if !ok {
                    failures.push(format!("{} {} as {role}: {status} {body}", c.method, c.path));
                }
            }
        }
        assert!(failures.is_empty(), "route × role mismatches:\n{}", failures.join("\n"));
        // And nobody gets in without a token.
        for c in &cases {
            app.state.limits.admin_addresses.clear();
            let (status, _) = app.call(c.method.clone(), &c.path, None, c.body.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}", c.method, c.path);
        }
    }
}
