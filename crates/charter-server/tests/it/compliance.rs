//! The compliance report from real state: a clean estate passes; an unused grant, a stale
//! credential, cross-border access without a basis and a failed offboarding each flip the
//! controls they belong to, naming the finding kinds; the report scopes to one partner; the
//! HTML form escapes what it shows; only readers may ask for it.

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World};
use crate::reviews::{gw_call, wired_world};

const CONTROLS: [&str; 14] = [
    "PR.AA-01", "PR.AA-03", "PR.AA-04", "PR.AA-05", "Tenet-3", "Tenet-4", "Tenet-6", "Tenet-7",
    "NHI1", "NHI2", "NHI3", "NHI5", "NHI7", "NHI9",
];

async fn report(app: &TestApp, token: &str, query: &str) -> Value {
    let (s, v) = app.get(&format!("/v1/compliance{query}"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn control<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == id)
        .unwrap_or_else(|| panic!("no control {id} in {r}"))
}

fn status(r: &Value, id: &str) -> String {
    control(r, id)["status"].as_str().unwrap().to_owned()
}

/// Asserts a control fails and lists exactly these finding kinds.
fn fails_with(r: &Value, id: &str, kinds: &[&str]) {
    let c = control(r, id);
    assert_eq!(c["status"], "fail", "{id}: {c}");
    assert_eq!(c["findings"], json!(kinds), "{id}: {c}");
}

fn passes(r: &Value, id: &str) {
    let c = control(r, id);
    assert_eq!(c["status"], "pass", "{id}: {c}");
    assert_eq!(c["findings"], json!([]), "{id}: {c}");
}

pub(crate) async fn html(app: &TestApp, token: &str, query: &str) -> (StatusCode, String, String) {
    let resp = app
        .http
        .get(format!("{}/v1/compliance{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

async fn drop_append_only_guard(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            app.raw_sql(&[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
            ])
            .await
        }
        Backend::Postgres => {
            app.raw_sql(&["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"])
                .await
        }
    }
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

both_backends! {
    async fn a_clean_estate_passes(app: TestApp) {
        let w = wired_world(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let token = app.token_for(&client).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await.0, StatusCode::OK);

        let r = report(&app, &w.auditor.1, "").await;
        // The report's shape is a format auditors depend on: framework, control, rule and
        // status per control are pinned (evidence values vary with ids and times).
        let shape: Vec<String> = r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} [{}] {}", c["framework"].as_str().unwrap(), c["control"].as_str().unwrap(),
                c["status"].as_str().unwrap(), c["rule"].as_str().unwrap()))
            .collect();
        insta::assert_snapshot!("compliance_clean_estate", shape.join("\n"));
        assert_eq!(r["scope"], json!({ "type": "estate" }));
        assert!(r["generated_at"].is_string());
        assert_eq!(r["window_days"], 30);
        let ids: Vec<_> = r["controls"].as_array().unwrap().iter().map(|c| c["control"].as_str().unwrap()).collect();
        assert_eq!(ids, CONTROLS);
        for c in r["controls"].as_array().unwrap() {
            for field in ["framework", "title", "rule"] {
                assert!(c[field].as_str().is_some_and(|s| !s.is_empty()), "{c}");
            }
            assert!(c["evidence"].is_object(), "{c}");
            assert!(c["by_construction"].is_array(), "{c}");
            match c["control"].as_str().unwrap() {
                // Its one rule cannot fail: it is never reported as a pass.
                "Tenet-3" => assert_eq!(c["status"], "enforced_by_construction", "{c}"),
                id => passes(&r, id),
            }
        }
        assert_eq!(r["summary"], json!({ "pass": 13, "fail": 0, "not_applicable": 0, "enforced_by_construction": 1 }));
        let e = &control(&r, "PR.AA-05")["by_construction"][0];
        assert_eq!(e["status"], "enforced_by_construction");
        assert_eq!(e["violations"], 0);
        assert_eq!(control(&r, "PR.AA-03")["by_construction"][0]["status"], "enforced_by_construction");
        let frameworks: Vec<_> = r["controls"].as_array().unwrap().iter().map(|c| c["framework"].as_str().unwrap()).collect();
        assert_eq!(frameworks.iter().filter(|f| **f == "NIST CSF 2.0").count(), 4);
        assert_eq!(frameworks.iter().filter(|f| **f == "NIST SP 800-207").count(), 4);
        assert_eq!(frameworks.iter().filter(|f| **f == "OWASP NHI Top 10 (2025)").count(), 6);

        // The evidence is the state's.
        let e = &control(&r, "PR.AA-05")["evidence"];
        assert_eq!(e["grants_checked"], 1);
        assert_eq!(e["distinct_approvals"], 1);
        assert_eq!(e["self_approved"], json!([]));
        assert_eq!(e["csf_1_1"], "PR.AC-4");
        let e = &control(&r, "NHI2")["evidence"];
        assert_eq!(e["credentials_by_kind"], json!({ "client_secret": 1 }));
        assert_eq!(e["verifiers_checked"], 1);
        assert_eq!(e["scope"], "partial");
        let e = &control(&r, "Tenet-3")["evidence"];
        assert_eq!(e["access_decisions"]["allowed"], 1);
        assert_eq!(e["longest_token_ttl_seconds"], 600);
        let e = &control(&r, "Tenet-6")["evidence"];
        assert_eq!(e["audit_chain"]["valid"], true);
        assert_eq!(e["decision_before_forward"]["without_prior_allow"], 0);
        let e = &control(&r, "PR.AA-04")["evidence"];
        assert_eq!(e["signature_alg"], "EdDSA");
        assert_eq!(e["active_key"]["age_days"], 0);
        assert_eq!(e["next_key_published"], true);
        let e = &control(&r, "Tenet-4")["evidence"];
        assert_eq!(e["apis"][0]["revision"], e["apis"][0]["live_revision"]);

        // One partner: the reseller holds nothing yet, so the grant rules have nothing to
        // assess; its identities are still managed.
        let r = report(&app, &w.auditor.1, &format!("?partner={}", w.reseller)).await;
        assert_eq!(r["scope"], json!({ "type": "partner", "id": w.reseller, "name": "Globex" }));
        for id in ["PR.AA-03", "PR.AA-05", "Tenet-3", "Tenet-4", "NHI2", "NHI3", "NHI5", "NHI7", "NHI9"] {
            assert_eq!(status(&r, id), "not_applicable", "{id}");
        }
        for id in ["PR.AA-01", "PR.AA-04", "Tenet-6", "Tenet-7", "NHI1"] {
            passes(&r, id);
        }
        assert_eq!(r["summary"], json!({ "pass": 5, "fail": 0, "not_applicable": 9, "enforced_by_construction": 0 }));
        // The direct partner's report covers its grant and its call.
        let r = report(&app, &w.auditor.1, &format!("?partner={}", w.direct)).await;
        assert_eq!(r["summary"]["pass"], 13);
        assert_eq!(r["summary"]["enforced_by_construction"], 1);
        assert_eq!(control(&r, "Tenet-3")["evidence"]["access_decisions"]["allowed"], 1);
    }

    async fn problems_flip_the_controls_they_belong_to(app: TestApp) {
        let w = wired_world(&app).await;
        let grant = w.active_grant(&app).await;
        let (s, short) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "client_secret", "max_age_days": 10 })).await;
        assert_eq!(s, StatusCode::CREATED, "{short}");
        passes(&report(&app, ADMIN_TOKEN, "").await, "PR.AA-05");

        // Day 31: the grant went unused for 30 days and its credential is past its max age.
        app.clock.advance(days(31));
        let r = report(&app, &w.auditor.1, "").await;
        fails_with(&r, "PR.AA-05", &["grant_unused"]);
        fails_with(&r, "NHI5", &["grant_unused"]);
        fails_with(&r, "PR.AA-01", &["credential_stale"]);
        fails_with(&r, "PR.AA-03", &["credential_stale"]);
        fails_with(&r, "NHI7", &["credential_stale"]);
        for id in ["PR.AA-04", "Tenet-4", "Tenet-6", "Tenet-7", "NHI1", "NHI2", "NHI3", "NHI9"] {
            passes(&r, id);
        }
        assert_eq!(status(&r, "Tenet-3"), "enforced_by_construction");
        let e = &control(&r, "PR.AA-05")["evidence"];
        assert_eq!(e["finding_subjects"], json!([{ "kind": "grant_unused", "subject": { "type": "grant", "id": grant } }]));
        assert_eq!(control(&r, "NHI7")["evidence"]["finding_subjects"][0]["subject"]["id"], short["id"]);
        assert_eq!(r["summary"]["fail"], 5);

        // The partner moves its processing out of the EU: cross-border access, no basis.
        let (s, v) = app.call(reqwest::Method::PATCH, &format!("/v1/partners/{}", w.direct), Some(&w.steward.1), Some(json!({ "regions": ["us"] }))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let r = report(&app, &w.auditor.1, "").await;
        fails_with(&r, "NHI3", &["transfer_without_basis"]);
        fails_with(&r, "PR.AA-05", &["grant_unused", "transfer_without_basis"]);
        let cross = &control(&r, "NHI3")["evidence"]["cross_border_grants"];
        assert_eq!(cross, &json!([{ "grant": grant, "regions_outside": ["eu"], "transfer_basis": null }]));

        // A clean reseller grant: its partner's report passes while the estate fails.
        let (s, g) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.reseller)).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let reseller_grant = g["id"].as_str().unwrap().to_owned();
        for approver in [&w.alice.1, &w.bob.1] {
            let (s, v) = app.post(&format!("/v1/grants/{reseller_grant}/approvals"), approver, json!({ "decision": "approve", "justification": "shared data path" })).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        w.client(&app, &reseller_grant).await;
        let r = report(&app, &w.auditor.1, &format!("?partner={}", w.reseller)).await;
        assert_eq!(r["summary"], json!({ "pass": 13, "fail": 0, "not_applicable": 0, "enforced_by_construction": 1 }), "{r}");
        assert_eq!(control(&r, "PR.AA-05")["evidence"]["distinct_approvals"], 2);
        let r = report(&app, &w.auditor.1, &format!("?partner={}", w.direct)).await;
        fails_with(&r, "NHI3", &["transfer_without_basis"]);
        fails_with(&r, "NHI7", &["credential_stale"]);
        assert_eq!(control(&r, "PR.AA-05")["evidence"]["grants_checked"], 1);

        // Offboarding the direct partner cannot be verified at a gateway that is gone.
        use charter_gateway::registry::NodeKind;
        crate::offboarding::register(&app, NodeKind::Control, "cn_main", &app.base).await;
        crate::offboarding::register(&app, NodeKind::Gateway, "gw_gone", "http://127.0.0.1:9").await;
        let (s, off) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "contract terminated" })).await;
        assert_eq!(s, StatusCode::OK, "{off}");
        assert_eq!(off["status"], "failed", "{off}");
        let r = report(&app, &w.auditor.1, &format!("?partner={}", w.direct)).await;
        fails_with(&r, "NHI1", &["offboarding_failed"]);
        fails_with(&r, "PR.AA-05", &["offboarding_failed"]);
        let e = &control(&r, "NHI1")["evidence"];
        assert_eq!(e["offboardings"], json!({ "completed": 0, "failed": 1, "incomplete": 0 }));
        assert_eq!(e["offboarded_partners_holding_access"], json!([]), "everything was revoked");
        // Its grant is revoked: nothing left unused, stale or crossing a border.
        for id in ["NHI3", "NHI5", "NHI7", "PR.AA-01", "PR.AA-03"] {
            assert_ne!(status(&r, id), "fail", "{id}: {}", control(&r, id));
        }
        let r = report(&app, &w.auditor.1, "").await;
        fails_with(&r, "NHI1", &["offboarding_failed"]);
        passes(&report(&app, &w.auditor.1, &format!("?partner={}", w.reseller)).await, "NHI1");
    }

    async fn the_html_page_escapes_and_names_each_control(app: TestApp) {
        let w = World::new(&app).await;
        let (s, p) = app.post("/v1/partners", &w.steward.1, json!({ "name": "<script>alert(1)</script> & Co", "kind": "direct", "regions": ["eu"], "owners": [w.alice.0] })).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let partner = p["id"].as_str().unwrap().to_owned();
        let (s, ct, body) = html(&app, &w.auditor.1, &format!("?partner={partner}&format=html")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(ct, "text/html; charset=utf-8");
        assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
        assert!(!body.contains("<script"), "{body}");
        assert!(body.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; Co"), "{body}");
        assert!(body.contains(&partner));
        for id in CONTROLS {
            assert!(body.contains(&format!("<tr id=\"{id}\">")), "{id}");
        }
        for framework in ["NIST CSF 2.0", "NIST SP 800-207", "OWASP NHI Top 10 (2025)"] {
            assert!(body.contains(&format!("<h2>{framework}</h2>")), "{framework}");
        }
        assert!(body.contains("class=\"badge pass\""));
        // The estate page too, with a failing control's findings named.
        let (s, orphan) = app.post("/v1/partners", &w.steward.1, json!({ "name": "Orphan", "kind": "direct", "regions": ["eu"], "owners": [] })).await;
        assert_eq!(s, StatusCode::CREATED, "{orphan}");
        let (s, ct, body) = html(&app, ADMIN_TOKEN, "?format=html").await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
        assert!(body.contains("the whole estate"));
        assert!(body.contains("class=\"badge fail\""));
        assert!(body.contains("owner_missing"));
        assert!(!body.contains("<script"));
        // JSON stays the default; the name is data there.
        let r = report(&app, &w.auditor.1, &format!("?partner={partner}&format=json")).await;
        assert_eq!(r["scope"]["name"], "<script>alert(1)</script> & Co");
        fails_with(&report(&app, &w.auditor.1, "").await, "PR.AA-01", &["owner_missing"]);
    }

    async fn who_may_read_the_report(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge", &["gateway"]).await;
        for t in [ADMIN_TOKEN, w.auditor.1.as_str(), w.steward.1.as_str()] {
            assert_eq!(app.get("/v1/compliance", t).await.0, StatusCode::OK);
            assert_eq!(app.get(&format!("/v1/compliance?partner={}", w.direct), t).await.0, StatusCode::OK);
        }
        for t in [&gateway, &w.owner.1] {
            assert_eq!(app.get("/v1/compliance", t).await.0, StatusCode::FORBIDDEN);
            assert_eq!(app.get(&format!("/v1/compliance?partner={}", w.direct), t).await.0, StatusCode::FORBIDDEN);
        }
        // An approver reads the partners they own, not the estate.
        assert_eq!(app.get("/v1/compliance", &w.alice.1).await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.get(&format!("/v1/compliance?partner={}", w.direct), &w.alice.1).await.0, StatusCode::OK);
        assert_eq!(app.get(&format!("/v1/compliance?partner={}", w.direct), &w.bob.1).await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.get(&format!("/v1/compliance?partner={}", w.reseller), &w.bob.1).await.0, StatusCode::OK);
        // Bad input.
        assert_eq!(app.call(reqwest::Method::GET, "/v1/compliance", None, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/v1/compliance?partner=prt_00000000000000000000000000", ADMIN_TOKEN).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get("/v1/compliance?partner=nonsense", ADMIN_TOKEN).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get("/v1/compliance?format=pdf", ADMIN_TOKEN).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.get("/v1/compliance?bogus=1", ADMIN_TOKEN).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        // The route is described.
        let (_, spec) = app.call(reqwest::Method::GET, "/openapi.json", None, None).await;
        assert!(spec["paths"]["/v1/compliance"]["get"].is_object());
    }
    async fn the_log_backs_the_zero_trust_tenets(app: TestApp) {
        let w = wired_world(&app).await;
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let token = app.token_for(&client).await;
        assert_eq!(gw_call(&app, reqwest::Method::GET, "/orders/orders/1", &token).await.0, StatusCode::OK);
        assert_eq!(gw_call(&app, reqwest::Method::POST, "/orders/orders", &token).await, (StatusCode::FORBIDDEN, "scope_not_granted".into()));
        let r = report(&app, &w.auditor.1, "").await;
        passes(&r, "Tenet-6");
        let e = &control(&r, "Tenet-4")["evidence"];
        assert_eq!(e["policy_denials"], json!({ "scope_not_granted": 1 }));
        assert_eq!(e["access_decisions"]["denied"], 1);

        // An upstream reached with no allow decision before it: not enforced before access.
        let outcome = app.state.repo.record(&client.client_id, "access.outcome", &grant, None,
            json!({ "request_id": "req-unjudged", "status": 200, "latency_us": 10, "gateway": "gw_x" }));
        app.state.repo.write(charter_store::Unit { ops: vec![], audit: vec![outcome] }).await.unwrap();
        let r = report(&app, &w.auditor.1, "").await;
        fails_with(&r, "Tenet-6", &[]);
        let d = &control(&r, "Tenet-6")["evidence"]["decision_before_forward"];
        assert_eq!(d["without_prior_allow"], 1, "{d}");
        assert_eq!(d["request_ids"], json!(["req-unjudged"]));
        passes(&r, "Tenet-7");
        // Another partner's report does not see it.
        passes(&report(&app, &w.auditor.1, &format!("?partner={}", w.reseller)).await, "Tenet-6");

        // An edited audit record breaks the chain: both tenets that rest on it fail.
        drop_append_only_guard(&app).await;
        app.raw_sql(&["UPDATE audit_log SET body = REPLACE(body, 'partner-office', 'someone-else') WHERE body LIKE '%partner-office%'"]).await;
        let r = report(&app, &w.auditor.1, "").await;
        for id in ["Tenet-6", "Tenet-7"] {
            fails_with(&r, id, &[]);
            let chain = &control(&r, id)["evidence"]["audit_chain"];
            assert_eq!(chain["valid"], false, "{chain}");
            assert!(chain["first_bad_record"].as_u64().is_some_and(|n| n > 0), "{chain}");
        }
    }
}
