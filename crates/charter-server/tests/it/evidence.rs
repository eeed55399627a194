//! Evidence bundles: generated from real history, signed with the evidence key, verified by
//! the offline verifier (no server, no database), and any edit is caught.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};

/// A grant's whole life: requested, approved, a credential, tokens, allowed and denied
/// calls, a review, revocation.
async fn history(app: &TestApp) -> (World, String) {
    let w = World::new(app).await;
    let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
    api["upstream"] = json!(app.upstream);
    assert_eq!(
        app.call(
            reqwest::Method::PUT,
            &format!("/v1/apis/{}", w.api),
            Some(&w.owner.1),
            Some(api)
        )
        .await
        .0,
        StatusCode::OK
    );
    let grant = w.active_grant(app).await;
    let client = w.client(app, &grant).await;
    let token = app.token_for(&client).await;
    for path in ["/orders/orders/1", "/orders/orders", "/orders/invoices/1"] {
        app.http
            .get(format!("{}{path}", app.gw))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    let (s, _) = app
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &w.steward.1,
            json!({ "reason": "contract ended" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    (w, grant)
}

fn kinds(bundle: &Value) -> Vec<String> {
    bundle["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_owned())
        .collect()
}

both_backends! {
    async fn a_grant_bundle_verifies_offline(app: TestApp) {
        let (w, grant) = history(&app).await;
        let (s, bundle) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{bundle}");
        let summary = charter_evidence::bundle::verify(&bundle).expect("the bundle verifies offline");
        assert_eq!((summary.subject_type.as_str(), summary.subject_id.as_str()), ("grant", grant.as_str()));
        let k = kinds(&bundle);
        for want in ["requested", "approved", "reach", "api_definition", "credential", "token_issued", "usage", "removed"] {
            assert!(k.iter().any(|x| x == want), "missing {want} in {k:?}");
        }
        let usage = bundle["statements"].as_array().unwrap().iter().find(|s| s["kind"] == "usage").unwrap();
        assert_eq!((usage["facts"]["allowed"].as_u64(), usage["facts"]["denied"].as_u64()), (Some(2), Some(1)));
        let approved = bundle["statements"].as_array().unwrap().iter().find(|s| s["kind"] == "approved").unwrap();
        assert_eq!(approved["facts"]["actor"], w.alice.0.as_str());
        assert_eq!(approved["facts"]["ticket"], "CHG-1");
        // The keys in the bundle are those published.
        let (_, published) = app.call(reqwest::Method::GET, "/.well-known/charter-evidence-keys", None, None).await;
        assert_eq!(published["keys"], bundle["keys"]);

        // Any edit is caught, naming the place.
        let mut forged = bundle.clone();
        forged["statements"][1]["facts"]["actor"] = json!(w.bob.0);
        assert!(charter_evidence::bundle::verify(&forged).is_err());
        let mut forged = bundle.clone();
        let original = forged["events"][0]["body"].as_str().unwrap().to_owned();
        let body = original.replacen("\"at\":\"2026", "\"at\":\"2025", 1);
        assert_ne!(body, original);
        forged["events"][0]["body"] = json!(body);
        let err = charter_evidence::bundle::verify(&forged).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");

        // The same evidence as a page for people.
        let resp = app.http.get(format!("{}/v1/grants/{grant}/evidence?format=html", app.base)).bearer_auth(&w.auditor.1).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = resp.text().await.unwrap();
        assert!(page.contains(&grant) && page.contains("removed") && page.contains("approved"));
        assert!(!page.contains("<td class=\"when\"></td>"), "every row has its time: {page}");
        assert!(page.contains("regions eu") && !page.contains("[&#34;eu&#34;]"), "{page}");
        assert!(page.contains(" issued on "), "{page}");
    }

    async fn the_html_timeline_escapes_and_links_the_one_stylesheet(app: TestApp) {
        let w = World::new(&app).await;
        let (s, g) = app.post("/v1/grants", &w.steward.1, w.grant_body(&app, &w.direct)).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let grant = g["id"].as_str().unwrap().to_owned();
        let (s, v) = app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1,
            json!({ "decision": "approve", "justification": "<script>alert('x')</script>", "ticket": "CHG-<b>" })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let resp = app.http.get(format!("{}/v1/grants/{grant}/evidence?format=html", app.base)).bearer_auth(&w.auditor.1).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let page = resp.text().await.unwrap();
        assert!(!page.contains("<script") && !page.contains("<b>"), "{page}");
        assert!(page.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;"), "{page}");
        assert!(page.contains("(ticket CHG-&#60;b&#62;)"), "{page}");
        assert!(!page.contains("<style"), "{page}");
        // The API's name stands beside its id (from its publish event).
        assert!(page.contains(&format!("orders <code>{}</code>", w.api)), "{page}");

        // The one stylesheet, linked by both pages, public and long cached.
        let href = page.split("<link rel=\"stylesheet\" href=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        assert!(href.starts_with("/static/charter.css?v="), "{href}");
        let (_, _, report) = crate::compliance::html(&app, ADMIN_TOKEN, "?format=html").await;
        assert!(report.contains(&format!("href=\"{href}\"")), "{report}");
        let css = app.http.get(format!("{}{href}", app.base)).send().await.unwrap();
        assert_eq!(css.status(), StatusCode::OK);
        assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
        assert!(css.headers()["cache-control"].to_str().unwrap().contains("max-age=31536000"));
        assert!(css.text().await.unwrap().contains(".badge"));
    }

    async fn a_partner_bundle_after_offboarding_and_key_rotation(app: TestApp) {
        let (w, _grant) = history(&app).await;
        let second = w.active_grant(&app).await;
        let (s, off) = app.post(&format!("/v1/partners/{}/offboard", w.direct), &w.steward.1, json!({ "reason": "left" })).await;
        assert_eq!(s, StatusCode::OK, "{off}");
        let (s, before) = app.get(&format!("/v1/partners/{}/evidence", w.direct), ADMIN_TOKEN).await;
        assert_eq!(s, StatusCode::OK);
        charter_evidence::bundle::verify(&before).expect("partner bundle verifies");
        let k = kinds(&before);
        assert!(k.iter().any(|x| x == "offboarding"), "{k:?}");
        assert!(before["statements"].as_array().unwrap().iter().any(|s| s["grant"] == second.as_str()));
        // A bundle signed before an evidence-key rotation still verifies, and new ones carry
        // both keys.
        app.state.keys.rotate_evidence(&app.state.repo, "test").await.unwrap();
        charter_evidence::bundle::verify(&before).expect("old bundle still verifies");
        let (_, after) = app.get(&format!("/v1/partners/{}/evidence", w.direct), ADMIN_TOKEN).await;
        assert_eq!(after["keys"].as_array().unwrap().len(), 2);
        charter_evidence::bundle::verify(&after).expect("new bundle verifies");
        // Visibility: bob does not own this partner.
        assert_eq!(app.get(&format!("/v1/partners/{}/evidence", w.direct), &w.bob.1).await.0, StatusCode::NOT_FOUND);
    }
}

both_backends! {
    // Evidence assembly reads every page: a grant with more credentials than one page of the
    // store (and than the old fixed limit of 1,000) still cites every one of them.
    async fn a_bundle_lists_every_credential_past_the_page_size(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let steward = charter_core::PrincipalId::parse(&w.steward.0).expect("steward id");
        let count = 1_001;
        for _ in 0..count {
            charter_server::services::credentials::issue(
                &app.state.repo,
                &app.state.keys,
                &steward,
                &grant,
                charter_server::services::credentials::Request {
                    kind: charter_core::CredentialKind::ClientSecret,
                    public_jwk: None,
                    max_age_days: None,
                },
                90,
            )
            .await
            .expect("issue");
        }
        let (s, bundle) = app
            .get(&format!("/v1/grants/{grant}/evidence"), ADMIN_TOKEN)
            .await;
        assert_eq!(s, StatusCode::OK);
        let credentials = kinds(&bundle).iter().filter(|k| *k == "credential").count();
        assert_eq!(credentials, count);
    }
}
