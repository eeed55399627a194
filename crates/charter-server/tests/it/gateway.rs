//! The enforcement gateway end to end: a real upstream on loopback, real tokens, every deny
//! reason from a real request, audit records before forwarding, check mode.

use charter_core::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};
use crate::oauth::Client;

/// The orders API pointed at the test upstream, plus an active grant and a client.
pub(crate) struct Setup {
    pub(crate) w: World,
    pub(crate) grant: String,
    pub(crate) client: Client,
    pub(crate) token: String,
}

impl TestApp {
    pub(crate) async fn setup(&self, tweak: impl FnOnce(&mut Value)) -> Setup {
        let w = World::new(self).await;
        let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
        api["upstream"] = json!(self.upstream);
        let (s, v) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/apis/{}", w.api),
                Some(&w.owner.1),
                Some(api),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let mut body = w.grant_body(self, &w.direct);
        tweak(&mut body);
        let (s, g) = self.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let grant = g["id"].as_str().unwrap().to_owned();
        let (s, _) = self
            .post(
                &format!("/v1/grants/{grant}/approvals"),
                &w.alice.1,
                json!({ "decision": "approve", "justification": "ok" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let client = w.client(self, &grant).await;
        let token = self.token_for(&client).await;
        Setup {
            w,
            grant,
            client,
            token,
        }
    }

    pub(crate) async fn through(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.gw));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn deny_reason(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, String) {
        let (s, h, body) = self.through(reqwest::Method::GET, path, token).await;
        let reason = h
            .get("x-charter-reason")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert_eq!(body["reason"], reason.as_str(), "body and header agree");
        (s, reason)
    }

    pub(crate) fn upstream_hits(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

both_backends! {
    async fn allowed_call_is_forwarded_with_identity_and_audited_first(app: TestApp) {
        let s = app.setup(|_| {}).await;
        let resp = app.http.get(format!("{}/orders/orders/42?expand=lines", app.gw))
            .bearer_auth(&s.token)
            .header("X-Charter-Partner", "forged")
            .header("X-Charter-Grant", "forged")
            .send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["path"], "/orders/42?expand=lines");
        let got = app.received.lock().unwrap()[0].clone();
        assert_eq!((got.method.as_str(), got.path_and_query.as_str()), ("GET", "/orders/42?expand=lines"));
        assert!(got.headers.get("authorization").is_none(), "the partner token never reaches the API");
        assert_eq!(got.headers["x-charter-partner"], s.w.direct.as_str());
        assert_eq!(got.headers["x-charter-grant"], s.grant.as_str());
        assert_eq!(got.headers["x-charter-use-case"], "Delivery status sync");
        assert_eq!(got.headers["x-request-id"], request_id.as_str());

        let (_, page) = app.get(&format!("/v1/audit?target={}&action=access.decision", s.grant), ADMIN_TOKEN).await;
        let d = &page["items"][0]["record"];
        assert_eq!(d["details"]["decision"], "allow");
        assert_eq!(d["details"]["request_id"], request_id.as_str());
        assert_eq!(d["details"]["partner"], s.w.direct.as_str());
        assert_eq!(d["details"]["use_case"], "Delivery status sync");
        assert_eq!(d["details"]["approvals"], json!([s.w.alice.0]));
        assert_eq!(d["details"]["credential"], s.client.credential.as_str());
        assert_eq!(d["details"]["operation"]["scope"], "orders:read");
        assert!(d["details"]["jti"].is_string());
        // The outcome record follows, linked by request id (appended after the response).
        let mut outcome = Value::Null;
        for _ in 0..50 {
            let (_, page) = app.get(&format!("/v1/audit?target={}&action=access.outcome", s.grant), ADMIN_TOKEN).await;
            if let Some(o) = page["items"].as_array().and_then(|a| a.first()) {
                outcome = o["record"].clone();
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(outcome["details"]["request_id"], request_id.as_str());
        assert_eq!(outcome["details"]["status"], 200);
        assert!(outcome["details"]["latency_us"].is_u64());
        let (s, v) = app.get("/v1/audit/verify", ADMIN_TOKEN).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    async fn token_level_reasons(app: TestApp) {
        let s = app.setup(|_| {}).await;
        let path = "/orders/orders/42";
        assert_eq!(app.deny_reason(path, None).await, (StatusCode::UNAUTHORIZED, "token_missing".into()));
        assert_eq!(app.deny_reason(path, Some("not-a-token")).await, (StatusCode::UNAUTHORIZED, "token_invalid".into()));
        let (_, h, _) = app.through(reqwest::Method::GET, path, Some("x")).await;
        assert_eq!(h["www-authenticate"], "Bearer error=\"invalid_token\"");
        // RFC 7009 revocation of this token.
        let t2 = app.token_for(&s.client).await;
        let resp = app.http.post(format!("{}/oauth/revoke", app.base)).basic_auth(&s.client.client_id, Some(&s.client.secret)).form(&[("token", t2.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(app.deny_reason(path, Some(&t2)).await, (StatusCode::UNAUTHORIZED, "token_revoked".into()));
        // Suspended, then revoked grant: denied on the very next call.
        let url = |p: &str| format!("/v1/grants/{}/{p}", s.grant);
        assert_eq!(app.post(&url("suspend"), &s.w.steward.1, json!({ "reason": "check" })).await.0, StatusCode::OK);
        assert_eq!(app.deny_reason(path, Some(&s.token)).await, (StatusCode::UNAUTHORIZED, "grant_inactive".into()));
        assert_eq!(app.post(&url("resume"), &s.w.steward.1, json!({ "reason": "ok" })).await.0, StatusCode::OK);
        assert_eq!(app.through(reqwest::Method::GET, path, Some(&s.token)).await.0, StatusCode::OK);
        assert_eq!(app.post(&url("revoke"), &s.w.steward.1, json!({ "reason": "ended" })).await.0, StatusCode::OK);
        assert_eq!(app.deny_reason(path, Some(&s.token)).await, (StatusCode::UNAUTHORIZED, "grant_revoked".into()));
        assert_eq!(app.upstream_hits(), 1, "only the one allowed call reached the upstream");
    }

    async fn expiry_epoch_and_partner_state(app: TestApp) {
        let s = app.setup(|_| {}).await;
        let path = "/orders/orders/42";
        // A credential revocation bumps the epoch: the token dies, saying why; the grant's
        // other tokens die with the epoch.
        let c2 = s.w.client(&app, &s.grant).await;
        let t2 = app.token_for(&c2).await;
        let (st, _) = app.post(&format!("/v1/credentials/{}/revoke", c2.credential), &s.w.steward.1, json!({ "reason": "leak" })).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(app.deny_reason(path, Some(&t2)).await, (StatusCode::UNAUTHORIZED, "credential_revoked".into()));
        assert_eq!(app.deny_reason(path, Some(&s.token)).await, (StatusCode::UNAUTHORIZED, "token_revoked".into()));
        let fresh = app.token_for(&s.client).await;
        assert_eq!(app.through(reqwest::Method::GET, path, Some(&fresh)).await.0, StatusCode::OK);
        // The partner stops being active.
        let old = app.state.repo.load::<charter_core::Partner>(&s.w.direct, "partner").await.unwrap();
        let mut p = old.value.clone();
        p.status = charter_core::PartnerStatus::Suspended;
        app.state.repo.write(charter_store::Unit { ops: vec![charter_store::Op::Update(old.next_doc(&p))], audit: vec![] }).await.unwrap();
        assert_eq!(app.deny_reason(path, Some(&fresh)).await, (StatusCode::UNAUTHORIZED, "partner_inactive".into()));
        // Expiry by the injected clock (past the 5 s leeway); checked before the partner.
        app.clock.advance(SignedDuration::from_secs(606));
        assert_eq!(app.deny_reason(path, Some(&fresh)).await, (StatusCode::UNAUTHORIZED, "token_expired".into()));
    }

    async fn policy_reasons(app: TestApp) {
        let s = app.setup(|_| {}).await;
        // Not an operation of the API; another API's path; a method not published.
        assert_eq!(app.deny_reason("/orders/invoices/1", Some(&s.token)).await, (StatusCode::FORBIDDEN, "unknown_operation".into()));
        assert_eq!(app.deny_reason("/customers/customers/1", Some(&s.token)).await, (StatusCode::FORBIDDEN, "unknown_operation".into()));
        let (st, _, _) = app.through(reqwest::Method::DELETE, "/orders/orders/1", Some(&s.token)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        // A narrowed token does not carry orders:read.
        let (st, v, _) = app.token_request(&[("grant_type", "client_credentials"), ("scope", "orders:list")], Some((&s.client.client_id, &s.client.secret)), None).await;
        assert_eq!(st, StatusCode::OK);
        let narrow = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.deny_reason("/orders/orders/1", Some(&narrow)).await, (StatusCode::FORBIDDEN, "scope_not_granted".into()));
        assert_eq!(app.through(reqwest::Method::GET, "/orders/orders", Some(&narrow)).await.0, StatusCode::OK);
        // The grant does not hold orders:write.
        let (st, h, _) = app.through(reqwest::Method::POST, "/orders/orders", Some(&s.token)).await;
        assert_eq!((st, h["x-charter-reason"].to_str().unwrap()), (StatusCode::FORBIDDEN, "scope_not_granted"));

        // Live policy: the owner reclassifies and relocates; the very next call is decided on it.
        let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
        api["upstream"] = json!(app.upstream);
        api["operations"][0]["data_class"] = json!("restricted");
        let (st, _) = app.call(reqwest::Method::PUT, &format!("/v1/apis/{}", s.w.api), Some(&s.w.owner.1), Some(api.clone())).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(app.deny_reason("/orders/orders/1", Some(&s.token)).await, (StatusCode::FORBIDDEN, "data_class_exceeds_grant".into()));
        api["operations"][0]["data_class"] = json!("confidential");
        api["operations"][0]["region"] = json!("us");
        let (st, _) = app.call(reqwest::Method::PUT, &format!("/v1/apis/{}", s.w.api), Some(&s.w.owner.1), Some(api)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(app.deny_reason("/orders/orders/1", Some(&s.token)).await, (StatusCode::FORBIDDEN, "region_not_permitted".into()));
        // The partner no longer processes in eu: eu data now needs a transfer basis.
        let (st, _) = app.call(reqwest::Method::PATCH, &format!("/v1/partners/{}", s.w.direct), Some(&s.w.steward.1), Some(json!({ "regions": ["us"] }))).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(app.deny_reason("/orders/orders", Some(&s.token)).await, (StatusCode::FORBIDDEN, "transfer_basis_missing".into()));
        assert_eq!(app.upstream_hits(), 1, "denied calls never reach the upstream");
    }

    async fn environment_window_and_dpop(app: TestApp) {
        let s = app.setup(|b| b["environments"] = json!(["staging"])).await;
        assert_eq!(app.deny_reason("/orders/orders/1", Some(&s.token)).await, (StatusCode::FORBIDDEN, "environment_mismatch".into()));
        // A window that closes at 10:05 (the test clock starts on Monday 10:00 UTC): the token
        // is issued inside it and used after it closed.
        let s2 = app.setup_more(&s.w, |b| b["time_window"] = json!({ "days": ["mon"], "start": "09:00", "end": "10:05", "timezone": "UTC" })).await;
        app.clock.advance(SignedDuration::from_secs(6 * 60));
        assert_eq!(app.deny_reason("/orders/orders/1", Some(&s2.1)).await, (StatusCode::FORBIDDEN, "outside_time_window".into()));
        app.clock.advance(SignedDuration::from_secs(-6 * 60));
        // DPoP required: a bearer presentation without a proof is refused.
        let key = charter_auth::SigningKey::generate("dpop".into()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let jwk = json!({ "kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"] });
        let grant = app.approved_grant(&s.w, |b| b["require_dpop"] = json!(true)).await;
        let c = s.w.client(&app, &grant).await;
        let proof = crate::oauth::jws(&key, &json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }),
            &json!({ "htm": "POST", "htu": format!("{}/oauth/token", app.base), "iat": app.now_s(), "jti": "t-1" }));
        let (st, v, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), Some(&proof)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let bound = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.deny_reason("/orders/orders/1", Some(&bound)).await, (StatusCode::FORBIDDEN, "dpop_invalid".into()));
        // With the DPoP scheme and a proof for this request, it passes.
        let htu = format!("{}/orders/orders/1", app.gw);
        let ath = charter_auth::dpop::access_token_hash(&bound);
        let call_proof = crate::oauth::jws(&key, &json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }),
            &json!({ "htm": "GET", "htu": htu, "iat": app.now_s(), "jti": "c-1", "ath": ath }));
        let resp = app.http.get(&htu).header("Authorization", format!("DPoP {bound}")).header("DPoP", &call_proof).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // The same proof again is a replay.
        let resp = app.http.get(&htu).header("Authorization", format!("DPoP {bound}")).header("DPoP", &call_proof).send().await.unwrap();
        assert_eq!(resp.headers()["x-charter-reason"], "dpop_invalid");
    }

    async fn paths_cannot_reach_ungranted_operations(app: TestApp) {
        let s = app.setup(|b| b["scopes"] = json!(["orders:list"])).await;
        assert_eq!(app.through(reqwest::Method::GET, "/orders/orders", Some(&s.token)).await.0, StatusCode::OK);
        for path in ["/orders/orders/../orders/42", "/orders/orders/%2e%2e/orders/42"] {
            // Resolves to /orders/42: orders:read, not granted.
            assert_eq!(app.deny_reason(path, Some(&s.token)).await.1, "scope_not_granted", "{path}");
        }
        for path in ["/orders//orders", "/orders/orders%2F42", "/orders/../customers/1", "/orders/orders/%2F"] {
            assert_eq!(app.deny_reason(path, Some(&s.token)).await.1, "unknown_operation", "{path}");
        }
        // Percent-encoded unreserved characters are decoded, and the upstream gets the
        // normalised path.
        assert_eq!(app.through(reqwest::Method::GET, "/orders/%6Frders", Some(&s.token)).await.0, StatusCode::OK);
        let last = app.received.lock().unwrap().last().unwrap().path_and_query.clone();
        assert_eq!(last, "/orders");
        assert_eq!(app.upstream_hits(), 2);
    }

    async fn check_mode_for_nginx_and_envoy(app: TestApp) {
        let s = app.setup(|_| {}).await;
        let check = |method: &str, uri: &str, token: Option<&str>| {
            let mut req = app.http.get(format!("{}/v1/authz/check", app.gw)).header("X-Original-Method", method).header("X-Original-URI", uri);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let resp = check("GET", "/orders/orders/42?x=1", Some(&s.token)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-charter-partner"], s.w.direct.as_str());
        assert_eq!(resp.headers()["x-charter-grant"], s.grant.as_str());
        let resp = check("POST", "/orders/orders", Some(&s.token)).await.unwrap();
        assert_eq!((resp.status(), resp.headers()["x-charter-reason"].to_str().unwrap()), (StatusCode::FORBIDDEN, "scope_not_granted"));
        let resp = check("GET", "/orders/orders/42", None).await.unwrap();
        assert_eq!((resp.status(), resp.headers()["x-charter-reason"].to_str().unwrap()), (StatusCode::UNAUTHORIZED, "token_missing"));
        // Envoy ext_authz: the original method and path arrive as the check request's own.
        let resp = app.http.get(format!("{}/v1/authz/check/orders/orders/42", app.gw)).bearer_auth(&s.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = app.http.post(format!("{}/v1/authz/check/orders/orders", app.gw)).bearer_auth(&s.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.upstream_hits(), 0, "check mode forwards nothing itself");
        let (_, page) = app.get(&format!("/v1/audit?target={}&action=access.decision", s.grant), ADMIN_TOKEN).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 4, "every check decision is audited");
    }

    async fn audit_unavailable_fails_closed(app: TestApp) {
        let s = app.setup(|_| {}).await;
        assert_eq!(app.through(reqwest::Method::GET, "/orders/orders/1", Some(&s.token)).await.0, StatusCode::OK);
        app.raw_sql(&["ALTER TABLE audit_log RENAME TO audit_log_gone"]).await;
        let (st, reason) = app.deny_reason("/orders/orders/1", Some(&s.token)).await;
        assert_eq!((st, reason.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"));
        assert_eq!(app.upstream_hits(), 1, "nothing is forwarded without a durable decision record");
    }
}

impl TestApp {
    /// Another grant for the same partner, approved, with a token: ((grant, client), token).
    async fn setup_more(
        &self,
        w: &World,
        tweak: impl FnOnce(&mut Value),
    ) -> ((String, Client), String) {
        let grant = self.approved_grant(w, tweak).await;
        let client = w.client(self, &grant).await;
        let token = self.token_for(&client).await;
        ((grant, client), token)
    }

    pub(crate) async fn approved_grant(&self, w: &World, tweak: impl FnOnce(&mut Value)) -> String {
        let mut body = w.grant_body(self, &w.direct);
        tweak(&mut body);
        let (s, g) = self.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let grant = g["id"].as_str().unwrap().to_owned();
        let (s, _) = self
            .post(
                &format!("/v1/grants/{grant}/approvals"),
                &w.alice.1,
                json!({ "decision": "approve", "justification": "ok" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        grant
    }
}

#[allow(dead_code)]
fn _clock_in_scope(c: &dyn Clock) -> i64 {
    c.now().as_second()
}
