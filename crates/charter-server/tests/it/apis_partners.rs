//! Publishing APIs, registering partners, and list paging.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, World, orders_api};

both_backends! {
    async fn publish_and_republish(app: TestApp) {
        let w = World::new(&app).await;
        let (s, e) = app.post("/v1/apis", &w.owner.1, orders_api("orders", "https://other.example.com")).await;
        assert_eq!(s, StatusCode::CONFLICT, "duplicate name: {e}");
        let (s, _) = app.post("/v1/apis", &w.owner.1, orders_api("orders-v2", "https://api.example.com/orders")).await;
        assert_eq!(s, StatusCode::CONFLICT, "duplicate audience");
        let mut dup_ops = orders_api("dup", "https://dup.example.com");
        dup_ops["operations"][1]["path"] = json!("/orders/{order_id}");
        dup_ops["operations"][1]["method"] = json!("GET");
        assert_eq!(app.post("/v1/apis", &w.owner.1, dup_ops).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        // An API owner publishes in their own name only.
        let mut theirs = orders_api("billing", "https://api.example.com/billing");
        theirs["owner"] = json!(w.steward.0);
        assert_eq!(app.post("/v1/apis", &w.owner.1, theirs).await.0, StatusCode::FORBIDDEN);

        // Another API owner cannot republish it.
        let (_, other) = app.principal("billing-team", &["api_owner"]).await;
        let mut body = orders_api("orders", "https://api.example.com/orders");
        body["operations"][0]["data_class"] = json!("restricted");
        let (s, _) = app.call(Method::PUT, &format!("/v1/apis/{}", w.api), Some(&other), Some(body.clone())).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(app.call(Method::GET, &format!("/v1/apis/{}", w.api), Some(&other), None).await.0, StatusCode::NOT_FOUND);

        let (s, api) = app.call(Method::PUT, &format!("/v1/apis/{}", w.api), Some(&w.owner.1), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{api}");
        assert_eq!(api["revision"], 2);
        assert_eq!(api["operations"][0]["data_class"], "restricted");
        let (_, page) = app.get(&format!("/v1/audit?target={}&action=api.republish", w.api), ADMIN_TOKEN).await;
        let changed = &page["items"][0]["record"]["details"]["changed"];
        assert!(changed.get("operations").is_some() && changed.get("revision").is_some(), "{changed}");
        assert!(changed.get("name").is_none());
    }

    async fn partners_and_their_owners(app: TestApp) {
        let w = World::new(&app).await;
        let (s, p) = app.get(&format!("/v1/partners/{}", w.direct), &w.alice.1).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(p["status"], "active");
        assert_eq!(p["owners"], json!([w.alice.0]));
        assert!(p["id"].as_str().unwrap().starts_with("prt_"));
        // bob does not own Acme: it is invisible to him.
        assert_eq!(app.get(&format!("/v1/partners/{}", w.direct), &w.bob.1).await.0, StatusCode::NOT_FOUND);
        // Owners must be approvers.
        let (s, e) = app.post("/v1/partners", &w.steward.1,
            json!({ "name": "Hooli", "kind": "direct", "regions": ["eu"], "owners": [w.owner.0] })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (s, _) = app.post("/v1/partners", &w.steward.1,
            json!({ "name": "Hooli", "kind": "direct", "regions": ["eu"], "owners": ["prn_00000000000000000000000000"] })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _) = app.post("/v1/partners", &w.steward.1, json!({ "name": "Acme", "kind": "direct", "regions": ["eu"] })).await;
        assert_eq!(s, StatusCode::CONFLICT);
        // Owners are an admin's to change (they choose who approves); regions a steward's.
        let (s, p) = app.call(Method::PATCH, &format!("/v1/partners/{}", w.direct), Some(ADMIN_TOKEN),
            Some(json!({ "regions": ["eu", "us"], "owners": [w.alice.0, w.bob.0] }))).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["regions"], json!(["eu", "us"]));
        assert_eq!(app.get(&format!("/v1/partners/{}", w.direct), &w.bob.1).await.0, StatusCode::OK);
    }

    async fn lists_page_with_a_cursor(app: TestApp) {
        let (_, steward) = app.principal("partner-office", &["steward"]).await;
        let mut created = Vec::new();
        for i in 0..5 {
            let (s, p) = app.post("/v1/partners", &steward, json!({ "name": format!("Partner {i}"), "kind": "direct", "regions": ["eu"] })).await;
            assert_eq!(s, StatusCode::CREATED);
            created.push(p["id"].as_str().unwrap().to_owned());
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/partners?limit=2&after={a}"),
                None => "/v1/partners?limit=2".to_owned(),
            };
            let (s, page) = app.get(&path, &steward).await;
            assert_eq!(s, StatusCode::OK);
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, created, "every partner once, in creation order");
        assert_eq!(app.get("/v1/partners?limit=0", &steward).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.get("/v1/partners?limit=501", &steward).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn concurrent_writes_share_commits_and_keep_the_chain(app: TestApp) {
        let (_, steward) = app.principal("partner-office", &["steward"]).await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let http = app.http.clone();
            let url = format!("{}/v1/partners", app.base);
            let steward = steward.clone();
            tasks.push(tokio::spawn(async move {
                http.post(url).bearer_auth(steward)
                    .json(&json!({ "name": format!("Concurrent {i}"), "kind": "direct", "regions": ["eu"] }))
                    .send().await.unwrap().status()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), StatusCode::CREATED);
        }
        let (s, v) = app.get("/v1/audit/verify", ADMIN_TOKEN).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // signing keys + evidence key + bootstrap + principal + 64 partners
        assert_eq!(v["records"], 68);
    }
}
