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
        for want in ["requested", "approved", "reach", "api_definition", "credential", "usage", "removed"] {
            assert!(k.iter().any(|x| x == want), "missing {want} in {k:?}");
        }
        let usage = bundle["statements"].as_array().unwrap().iter().find(|s| s["kind"] == "usage").unwrap();
        assert_eq!((usage["facts"]["allowed"].as_u64(), usage["facts"]["denied"].as_u64()), (Some(2), Some(1)));
        assert_eq!(usage["facts"]["tokens_issued"], 1);
        let by_scope = usage["facts"]["by_scope"].as_object().unwrap();
        assert_eq!(by_scope.values().map(|c| c["allowed"].as_u64().unwrap()).sum::<u64>(), 2, "{by_scope:?}");
        // The bundle's head is the evidence.issue record its making appended, about the grant.
        assert_eq!(summary.subchains[&grant].last(), Some(&summary.head.seq));
        // Names for people, signed with the bundle.
        assert_eq!(bundle["names"][&w.direct], "Acme");
        assert_eq!(bundle["names"][&w.alice.0], "alice");
        assert_eq!(bundle["names"][&w.api], "orders");
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
        // Partners, principals and APIs by name beside their ids.
        assert!(page.contains(&format!("<dt>Partner</dt><dd>Acme <code>{}</code></dd>", w.direct)), "{page}");
        assert!(page.contains(&format!("alice <code>{}</code> approved on ", w.alice.0)), "{page}");
        assert!(page.contains(&format!("partner-office <code>{}</code> requested access", w.steward.0)), "{page}");
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

/// Writes `n` usage records of `grant` straight through the audit writer (the gateway would
/// take minutes for thousands): mostly allowed calls of `orders:read`, every third denied,
/// every tenth a token issuance.
async fn traffic(app: &TestApp, grant: &str, n: usize) {
    let repo = &app.state.repo;
    let records: Vec<charter_evidence::AuditRecord> = (0..n)
        .map(|i| {
            if i % 10 == 9 {
                repo.record(
                    "cli_traffic",
                    charter_evidence::action::TOKEN_ISSUE,
                    grant,
                    None,
                    json!({ "jti": format!("t{i}") }),
                )
            } else if i % 3 == 2 {
                repo.record(
                    "cli_traffic",
                    charter_evidence::action::ACCESS_DECISION,
                    grant,
                    Some("scope_not_granted".into()),
                    json!({ "decision": "deny", "reason": "scope_not_granted", "operation": null }),
                )
            } else {
                repo.record(
                    "cli_traffic",
                    charter_evidence::action::ACCESS_DECISION,
                    grant,
                    None,
                    json!({ "decision": "allow", "operation": { "scope": "orders:read" } }),
                )
            }
        })
        .collect();
    for chunk in records.chunks(500) {
        repo.write(charter_store::Unit {
            ops: vec![],
            audit: chunk.to_vec(),
        })
        .await
        .expect("traffic written");
    }
}

/// Re-signs a bundle with the server's real evidence key, as an insider who can use the key
/// (but not rewrite the chain) would.
fn re_sign(app: &TestApp, bundle: &mut Value) {
    let key = app.state.keys.evidence().expect("evidence key");
    bundle.as_object_mut().unwrap().remove("signature");
    let jws = charter_evidence::bundle::sign(bundle, key.kid(), |m| key.sign(m)).unwrap();
    bundle["signature"] = json!(jws);
}

both_backends! {
    // Traffic is summarised and committed, not carried: a grant's bundle after 3,000 more
    // calls is as large as after 10 (it grows by one evidence.issue record), and any one of
    // those calls is proved against the committed root.
    async fn a_bundle_does_not_grow_with_traffic_and_proves_any_call(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        traffic(&app, &grant, 10).await;
        let (s, small) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{small}");
        traffic(&app, &grant, 3_000).await;
        let (s, big) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{big}");
        let summary = charter_evidence::bundle::verify(&big).expect("the bundle verifies");
        let committed = summary.usage[&grant].clone();
        assert_eq!(committed.records, 3_010);
        assert_eq!(committed.tokens_issued, 1 + 300);
        assert_eq!(committed.allowed + committed.denied, 3_010 - 301);
        let (small_len, big_len) = (small.to_string().len(), big.to_string().len());
        eprintln!("bundle size: {small_len} bytes after 10 usage records, {big_len} after 3,010");
        assert!(big_len < small_len + 2_048, "{small_len} bytes after 10 calls, {big_len} after 3,010");

        // An auditor asks about one call in the middle: its record and audit path.
        let calls = app.state.repo.store.audit_query(&charter_store::AuditQuery {
            target: Some(grant.clone()), action: Some("access.decision".into()), limit: 1000, ..Default::default()
        }).await.unwrap();
        let seq = calls[777].seq;
        let (s, proof) = app.get(&format!("/v1/grants/{grant}/usage/proof?seq={seq}&size={}", committed.records), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{proof}");
        let proof: charter_evidence::usage::UsageProof = serde_json::from_value(proof).unwrap();
        let rec = charter_evidence::usage::verify_proof(&committed, &proof).expect("the proof holds");
        assert_eq!(rec.seq, seq);
        // The same record with its decision flipped (and re-hashed) does not prove.
        let mut forged = proof.clone();
        let flipped = if proof.record.body.contains("\"allow\"") { ("\"allow\"", "\"deny\"") } else { ("\"deny\"", "\"allow\"") };
        forged.record.body = proof.record.body.replace(flipped.0, flipped.1);
        forged.record.hash = charter_evidence::record_hash(&forged.record.body);
        let err = charter_evidence::usage::verify_proof(&committed, &forged).unwrap_err();
        assert!(err.contains("does not lead to the committed root"), "{err}");
        // A record that is not a usage record of the grant, and a tree larger than the log.
        let (s, v) = app.get(&format!("/v1/grants/{grant}/usage/proof?seq=1&size={}", committed.records), &w.auditor.1).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        let (s, v) = app.get(&format!("/v1/grants/{grant}/usage/proof?seq={seq}&size=999999"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v) = app.get(&format!("/v1/grants/{grant}/usage/proof?seq=x&size=1"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }

    // The attack: drop the grant.revoke event and its statement from a real bundle and
    // re-sign it with the real evidence key. The grant's sub-chain no longer links.
    async fn an_event_removed_from_a_bundle_breaks_its_sub_chain(app: TestApp) {
        let (w, grant) = history(&app).await;
        let (s, mut bundle) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{bundle}");
        charter_evidence::bundle::verify(&bundle).expect("the real bundle verifies");
        let revoke = bundle["events"].as_array().unwrap().iter()
            .find(|e| e["body"].as_str().unwrap().contains("\"action\":\"grant.revoke\""))
            .map(|e| e["seq"].clone()).expect("the revocation is carried");
        bundle["events"].as_array_mut().unwrap().retain(|e| e["seq"] != revoke);
        bundle["statements"].as_array_mut().unwrap().retain(|st| !st["events"].as_array().unwrap().contains(&revoke));
        re_sign(&app, &mut bundle);
        let err = charter_evidence::bundle::verify(&bundle).unwrap_err().to_string();
        assert!(err.starts_with(&format!("sub-chain of {grant}: record ")), "{err}");
        assert!(err.ends_with("an event of the subject was left out"), "{err}");
    }

    // A consistent rewrite of the chain after a checkpoint (triggers dropped, every later
    // record re-hashed and re-linked): the chain and the bundle verify on their own, but the
    // bundle disagrees with the auditor's checkpoint and names it.
    async fn a_chain_rewritten_after_a_checkpoint_fails_the_bundle_check(app: TestApp) {
        let (w, grant) = history(&app).await;
        let sink = app.dir.path().join("auditor-checkpoints.jsonl");
        let cp = charter_server::checkpoints::checkpoint_now(&app.state, &sink).await.expect("checkpoint");
        let (s, before) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        assert_eq!(s, StatusCode::OK, "{before}");
        let summary = charter_evidence::bundle::verify(&before).unwrap();
        let agreed = charter_evidence::bundle::check_checkpoints(&before, &summary, std::slice::from_ref(&cp)).unwrap();
        assert_eq!(agreed.agreed, [cp.seq]);

        // Rewrite the approval's justification and every record after it, consistently.
        crate::audit_chain::drop_append_only_guard(&app).await;
        let rows = app.state.repo.store.audit_query(&charter_store::AuditQuery { limit: 100_000, ..Default::default() }).await.unwrap();
        let approve = rows.iter().find(|r| r.body.contains("\"action\":\"grant.approve\"") && r.body.contains(&grant)).unwrap().seq;
        assert!(approve <= cp.seq);
        let mut renamed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut prev = rows.iter().find(|r| r.seq == approve - 1).map(|r| r.hash.clone()).unwrap();
        let mut sql = Vec::new();
        for row in rows.iter().filter(|r| r.seq >= approve) {
            let mut rec: charter_evidence::AuditRecord = serde_json::from_str(&row.body).unwrap();
            if row.seq == approve {
                rec.details["justification"] = json!("approved by nobody");
            }
            rec.prev = prev.clone();
            if let Some(new) = rec.details.get("subject_prev").and_then(Value::as_str).and_then(|h| renamed.get(h)) {
                rec.details["subject_prev"] = json!(new);
            }
            let body = rec.canonical().unwrap();
            let hash = charter_evidence::record_hash(&body);
            sql.push(format!("UPDATE audit_log SET body = '{}', hash = '{hash}' WHERE seq = {}", body.replace('\'', "''"), row.seq));
            sql.push(format!("UPDATE audit_subject_head SET hash = '{hash}' WHERE hash = '{}'", row.hash));
            renamed.insert(row.hash.clone(), hash.clone());
            prev = hash;
        }
        sql.push(format!("UPDATE audit_head SET hash = '{prev}' WHERE id = 1"));
        let sql: Vec<&str> = sql.iter().map(String::as_str).collect();
        app.raw_sql(&sql).await;
        let (s, v) = app.get("/v1/audit/verify", ADMIN_TOKEN).await;
        assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "the rewrite is consistent: {v}");

        let (s, after) = app.get(&format!("/v1/grants/{grant}/evidence"), &w.auditor.1).await;
        if s == StatusCode::CONFLICT {
            // A server that compares its chain with its own checkpoints refuses to sign.
            assert_eq!(after["error"], "chain_broken", "{after}");
            return;
        }
        assert_eq!(s, StatusCode::OK, "{after}");
        let summary = charter_evidence::bundle::verify(&after).expect("the rewritten bundle is self-consistent");
        let err = charter_evidence::bundle::check_checkpoints(&after, &summary, std::slice::from_ref(&cp)).unwrap_err();
        assert_eq!(err.to_string(), format!("checkpoint {}: the bundle's chain holds another hash there: the log was rewritten after this checkpoint", cp.seq));
    }
}
