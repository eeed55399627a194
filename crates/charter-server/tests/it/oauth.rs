//! The token service over HTTP: client authentication (basic, post, private_key_jwt),
//! scope and audience rules, DPoP, introspection, RFC 7009 revocation, credential rotation
//! and revocation, key rotation, and the attacks introspection must refuse.

use base64::Engine;
use charter_auth::SigningKey;
use charter_core::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{ADMIN_TOKEN, TestApp, World};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with any header and claims, signed by `key` (Ed25519).
pub fn jws(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

pub struct Client {
    pub grant: String,
    pub credential: String,
    pub client_id: String,
    pub secret: String,
}

impl World {
    pub async fn client(&self, app: &TestApp, grant: &str) -> Client {
        let (s, c) = app
            .post(
                &format!("/v1/grants/{grant}/credentials"),
                &self.steward.1,
                json!({ "kind": "client_secret" }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        Client {
            grant: grant.to_owned(),
            credential: c["id"].as_str().unwrap().to_owned(),
            client_id: c["client_id"].as_str().unwrap().to_owned(),
            secret: c["client_secret"].as_str().unwrap().to_owned(),
        }
    }
}

impl TestApp {
    pub async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        dpop: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        if let Some(p) = dpop {
            req = req.header("DPoP", p);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, resp.json().await.unwrap_or(Value::Null), headers)
    }

    pub async fn token_for(&self, c: &Client) -> String {
        let (s, v, _) = self
            .token_request(
                &[("grant_type", "client_credentials")],
                Some((&c.client_id, &c.secret)),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, gateway: &str, token: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/oauth/introspect", self.base))
            .bearer_auth(gateway)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    pub fn now_s(&self) -> i64 {
        self.clock.now().as_second()
    }
}

both_backends! {
    async fn metadata_and_jwks(app: TestApp) {
        let (s, m) = app.call(reqwest::Method::GET, "/.well-known/oauth-authorization-server", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(m["issuer"], app.base.as_str());
        for k in ["token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"] {
            assert!(m[k].as_str().unwrap().starts_with(&app.base), "{k} must be absolute under the issuer");
        }
        assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post", "private_key_jwt"]));
        assert_eq!(m["revocation_endpoint_auth_methods_supported"], m["token_endpoint_auth_methods_supported"]);
        assert_eq!(m["introspection_endpoint_auth_methods_supported"], json!(["bearer"]));
        // Client signatures: EdDSA and its RFC 9864 name Ed25519 (Ed25519 keys), ES256
        // (P-256) — exactly what client assertions and DPoP proofs are verified under.
        let algs = json!(["EdDSA", "Ed25519", "ES256"]);
        assert_eq!(m["token_endpoint_auth_signing_alg_values_supported"], algs);
        assert_eq!(m["revocation_endpoint_auth_signing_alg_values_supported"], algs);
        assert_eq!(m["dpop_signing_alg_values_supported"], algs);
        // Introspection takes a gateway's bearer token, never a signed JWT.
        assert!(m.get("introspection_endpoint_auth_signing_alg_values_supported").is_none(), "{m}");
        let (s, jwks) = app.call(reqwest::Method::GET, "/.well-known/jwks.json", None, None).await;
        assert_eq!(s, StatusCode::OK);
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "the active key and the next one");
        for k in keys {
            assert_eq!((k["kty"].as_str(), k["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
            assert!(k.get("d").is_none(), "no private material");
        }
    }

    async fn client_secret_basic_and_post(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        assert!(c.client_id.starts_with("chc_") && c.secret.starts_with("chs_"));
        // The secret is shown once: neither reads nor the audit log hold it.
        let (_, cred) = app.get(&format!("/v1/credentials/{}", c.credential), &w.auditor.1).await;
        assert!(!cred.to_string().contains(&c.secret) && cred.get("client_secret").is_none());

        let (s, v, h) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 600);
        assert_eq!(v["scope"], "orders:read orders:list");
        assert_eq!(h["cache-control"], "no-store");
        let token = v["access_token"].as_str().unwrap();
        let header = decode_part(token, 0);
        assert_eq!((header["typ"].as_str(), header["alg"].as_str()), (Some("at+jwt"), Some("EdDSA")));
        let (_, jwks) = app.call(reqwest::Method::GET, "/.well-known/jwks.json", None, None).await;
        assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == header["kid"]));
        let claims = decode_part(token, 1);
        assert_eq!(claims["iss"], app.base.as_str());
        assert_eq!(claims["sub"], c.client_id.as_str());
        assert_eq!(claims["client_id"], c.client_id.as_str());
        assert_eq!(claims["aud"], "https://api.example.com/orders");
        assert_eq!(claims["grant"], grant.as_str());
        assert_eq!(claims["epoch"], 1);
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
        for k in ["jti", "nbf"] {
            assert!(claims.get(k).is_some());
        }

        let (s, v, _) = app.token_request(&[("grant_type", "client_credentials"), ("client_id", &c.client_id), ("client_secret", &c.secret), ("scope", "orders:list")], None, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["scope"], "orders:list");

        // Wrong secret: 401 invalid_client, with a Basic challenge for Basic.
        let (s, v, h) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, "chs_wrong")), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        // Both methods at once is a malformed request.
        let (s, v, _) = app.token_request(&[("grant_type", "client_credentials"), ("client_secret", &c.secret), ("client_id", &c.client_id)], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
        let (s, v, _) = app.token_request(&[("grant_type", "password")], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));

        // Issuance and refusals are audited with attribution, never with the secret.
        let (_, page) = app.get(&format!("/v1/audit?target={grant}&action=token.issue"), &w.auditor.1).await;
        let rec = &page["items"][0]["record"];
        assert_eq!(rec["actor"], c.client_id.as_str());
        assert_eq!(rec["details"]["partner"], w.direct.as_str());
        assert_eq!(rec["details"]["credential"], c.credential.as_str());
        assert_eq!(rec["details"]["approvals"], json!([w.alice.0]));
        assert_eq!(rec["details"]["use_case"], "Delivery status sync");
        let (_, refused) = app.get("/v1/audit?action=token.refused", &w.auditor.1).await;
        let reasons: Vec<_> = refused["items"].as_array().unwrap().iter().map(|i| i["record"]["reason"].as_str().unwrap().to_owned()).collect();
        assert!(reasons.contains(&"secret_mismatch".to_owned()), "{reasons:?}");
        let (_, all) = app.get("/v1/audit?limit=500", ADMIN_TOKEN).await;
        assert!(!all.to_string().contains(&c.secret), "the secret never reaches the audit log");
    }

    async fn scope_and_target_rules(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let basic = Some((c.client_id.as_str(), c.secret.as_str()));
        let ask = |extra: Vec<(&'static str, &'static str)>| {
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend(extra);
            form
        };
        let (s, v, _) = app.token_request(&ask(vec![("scope", "orders:write")]), basic, None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")), "scope never widens");
        let (s, v, _) = app.token_request(&ask(vec![("resource", "https://api.example.com/billing")]), basic, None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
        let (s, _, _) = app.token_request(&ask(vec![("resource", "https://api.example.com/orders")]), basic, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = app.token_request(&ask(vec![("audience", "https://api.example.com/orders"), ("scope", "orders:read")]), basic, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v, _) = app.token_request(&ask(vec![("scope", "orders:read"), ("scope", "orders:list")]), basic, None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "repeated parameter");
    }

    async fn grant_state_governs_issuance_and_introspection(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let token = app.token_for(&c).await;
        let v = app.introspect(&gateway, &token).await;
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(v["partner"], w.direct.as_str());
        assert_eq!(v["grant"], grant.as_str());
        assert_eq!(v["use_case"], "Delivery status sync");
        assert_eq!(v["client_id"], c.client_id.as_str());
        // Only gateways introspect.
        let resp = app.http.post(format!("{}/oauth/introspect", app.base)).bearer_auth(&w.auditor.1).form(&[("token", token.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);

        let (s, _) = app.post(&format!("/v1/grants/{grant}/suspend"), &w.steward.1, json!({ "reason": "investigation" })).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.introspect(&gateway, &token).await, json!({ "active": false }));
        let (s, v, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")), "{v}");
        let (s, _) = app.post(&format!("/v1/grants/{grant}/resume"), &w.steward.1, json!({ "reason": "cleared" })).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.introspect(&gateway, &token).await["active"], true);

        // Revoking the grant kills every outstanding token in one write.
        let (s, _) = app.post(&format!("/v1/grants/{grant}/revoke"), &w.steward.1, json!({ "reason": "contract ended" })).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(app.introspect(&gateway, &token).await["active"], false);
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    async fn expiry_follows_the_injected_clock(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let token = app.token_for(&c).await;
        app.clock.advance(SignedDuration::from_secs(599));
        assert_eq!(app.introspect(&gateway, &token).await["active"], true);
        app.clock.advance(SignedDuration::from_secs(10));
        assert_eq!(app.introspect(&gateway, &token).await["active"], false, "expired by the injected clock");
        // The credential itself stops at its maximum age (90 days).
        app.clock.advance(SignedDuration::from_hours(24 * 90));
        let (s, v, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    }

    async fn rotation_overlap_and_credential_revocation(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let (s, r) = app.post(&format!("/v1/credentials/{}/rotate", c.credential), &w.steward.1, json!({ "overlap_seconds": 3600 })).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["client_id"], c.client_id.as_str(), "rotation keeps the client id");
        let new_secret = r["client_secret"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, c.secret);
        let old = Client { secret: c.secret.clone(), ..Client { grant: c.grant.clone(), credential: c.credential.clone(), client_id: c.client_id.clone(), secret: String::new() } };
        let new = Client { secret: new_secret.clone(), ..Client { grant: c.grant.clone(), credential: c.credential.clone(), client_id: c.client_id.clone(), secret: String::new() } };
        app.token_for(&old).await;
        app.token_for(&new).await;
        app.clock.advance(SignedDuration::from_secs(3600));
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "rotated out after the overlap");
        let token = app.token_for(&new).await;

        // Revocation: immediate, refused before any secret is compared, and the grant's
        // epoch moves so tokens obtained with it die.
        let (s, v) = app.post(&format!("/v1/credentials/{}/revoke", c.credential), &w.steward.1, json!({ "reason": "leaked" })).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("revoked")));
        assert_eq!(app.introspect(&gateway, &token).await["active"], false);
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &new_secret)), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (_, refused) = app.get(&format!("/v1/audit?action=token.refused&target={grant}"), &w.auditor.1).await;
        let last = refused["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["record"]["reason"], "credential_revoked");
        // A zero overlap ends the old secret at once.
        let c2 = w.client(&app, &grant).await;
        let (s, _) = app.post(&format!("/v1/credentials/{}/rotate", c2.credential), &w.steward.1, json!({ "overlap_seconds": 0 })).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c2.client_id, &c2.secret)), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    async fn client_revokes_its_own_token(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let other = w.client(&app, &grant).await;
        let t1 = app.token_for(&c).await;
        let t2 = app.token_for(&c).await;
        // Another client may not revoke it.
        let resp = app.http.post(format!("{}/oauth/revoke", app.base)).basic_auth(&other.client_id, Some(&other.secret)).form(&[("token", t1.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let resp = app.http.post(format!("{}/oauth/revoke", app.base)).basic_auth(&c.client_id, Some(&c.secret)).form(&[("token", t1.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(app.introspect(&gateway, &t1).await["active"], false);
        assert_eq!(app.introspect(&gateway, &t2).await["active"], true, "only that token");
        // Unknown tokens are fine (RFC 7009 §2.2).
        let resp = app.http.post(format!("{}/oauth/revoke", app.base)).basic_auth(&c.client_id, Some(&c.secret)).form(&[("token", "garbage")]).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    async fn private_key_jwt_and_replay(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let key = SigningKey::generate("partner-key-1".into()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let (s, c) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "private_key_jwt", "public_jwk": jwk })).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert!(c.get("client_secret").is_none());
        let client_id = c["client_id"].as_str().unwrap().to_owned();
        // A private key is refused at registration.
        let mut private = jwk.clone();
        private["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        let (s, _) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "private_key_jwt", "public_jwk": private })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

        let now = app.now_s();
        let assertion = |jti: &str, aud: &str| jws(&key, &json!({ "alg": "EdDSA", "typ": "JWT" }),
            &json!({ "iss": client_id, "sub": client_id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti }));
        let form = |a: &str| vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_assertion_type".to_owned(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            ("client_assertion".to_owned(), a.to_owned()),
        ];
        let send = |f: Vec<(String, String)>| {
            let http = app.http.clone();
            let url = format!("{}/oauth/token", app.base);
            async move { http.post(url).form(&f).send().await.unwrap().status() }
        };
        let a1 = assertion("a-1", &app.base);
        assert_eq!(send(form(&a1)).await, StatusCode::OK);
        assert_eq!(send(form(&a1)).await, StatusCode::UNAUTHORIZED, "a replayed assertion is refused");
        let a2 = assertion("a-2", &format!("{}/oauth/token", app.base));
        assert_eq!(send(form(&a2)).await, StatusCode::OK, "the token endpoint URL is an accepted audience");
        let a3 = assertion("a-3", "https://elsewhere.example.com");
        assert_eq!(send(form(&a3)).await, StatusCode::UNAUTHORIZED);
        let other = SigningKey::generate("partner-key-1".into()).unwrap();
        let forged = jws(&other, &json!({ "alg": "EdDSA" }), &json!({ "iss": client_id, "sub": client_id, "aud": app.base, "exp": now + 60, "jti": "a-4" }));
        assert_eq!(send(form(&forged)).await, StatusCode::UNAUTHORIZED);
    }

    async fn assertion_is_remembered_until_exp_plus_leeway(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let key = SigningKey::generate("partner-key-1".into()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let (s, c) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "private_key_jwt", "public_jwk": jwk })).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let client_id = c["client_id"].as_str().unwrap().to_owned();
        let start = app.now_s();
        let assertion = |jti: &str, exp: i64| jws(&key, &json!({ "alg": "EdDSA" }),
            &json!({ "iss": client_id, "sub": client_id, "aud": app.base, "exp": exp, "iat": start, "jti": jti }));
        let token = |a: String| {
            let http = app.http.clone();
            let url = format!("{}/oauth/token", app.base);
            async move {
                let resp = http.post(url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", a.as_str()),
                ]).send().await.unwrap();
                resp.status()
            }
        };
        let exp = start + 60;
        let a1 = assertion("once", exp);
        assert_eq!(token(a1.clone()).await, StatusCode::OK);
        // Just after exp, inside the 5 s leeway: the assertion would still verify...
        app.clock.advance(SignedDuration::from_secs(62));
        assert_eq!(token(assertion("fresh-after-exp", exp)).await, StatusCode::OK, "within the leeway");
        // ...so its jti must still be remembered.
        assert_eq!(token(a1.clone()).await, StatusCode::UNAUTHORIZED, "replayed within the leeway");
        let (_, refused) = app.get(&format!("/v1/audit?action=token.refused&target={grant}"), &w.auditor.1).await;
        let reasons: Vec<_> = refused["items"].as_array().unwrap().iter().map(|i| i["record"]["reason"].as_str().unwrap().to_owned()).collect();
        assert_eq!(reasons, ["assertion_replayed"]);
        // Past the leeway it is refused as expired (and the cache may forget it).
        app.clock.advance(SignedDuration::from_secs(3));
        assert_eq!(token(assertion("too-late", exp)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(token(a1).await, StatusCode::UNAUTHORIZED);

        // One hour ahead is accepted (authlib's stock lifetime), more is not.
        let now = app.now_s();
        assert_eq!(token(assertion("one-hour", now + 3600)).await, StatusCode::OK);
        assert_eq!(token(assertion("too-long", now + 3606)).await, StatusCode::UNAUTHORIZED);
        // A one-hour assertion is remembered for its whole hour.
        app.clock.advance(SignedDuration::from_secs(3600));
        assert_eq!(token(assertion("one-hour", now + 3600)).await, StatusCode::UNAUTHORIZED);
    }

    async fn rfc9864_ed25519_alg_at_the_token_endpoint(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let key = SigningKey::generate("partner-key-1".into()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let jwk = json!({ "kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"] });
        let (s, c) = app.post(&format!("/v1/grants/{grant}/credentials"), &w.steward.1, json!({ "kind": "private_key_jwt", "public_jwk": jwk })).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let client_id = c["client_id"].as_str().unwrap().to_owned();
        let now = app.now_s();
        let token_url = format!("{}/oauth/token", app.base);
        let assertion = |alg: &str, jti: &str| jws(&key, &json!({ "alg": alg, "typ": "JWT" }),
            &json!({ "iss": client_id, "sub": client_id, "aud": app.base, "exp": now + 60, "iat": now, "jti": jti }));
        let proof = |alg: &str, jti: &str| jws(&key, &json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk }),
            &json!({ "htm": "POST", "htu": token_url, "iat": now, "jti": jti }));
        let form = |a: &str| [
            ("grant_type", "client_credentials".to_owned()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            ("client_assertion", a.to_owned()),
        ];
        let send = |a: String, dpop: Option<String>| {
            let http = app.http.clone();
            let url = token_url.clone();
            async move {
                let mut req = http.post(url).form(&form(&a));
                if let Some(p) = dpop {
                    req = req.header("DPoP", p);
                }
                let resp = req.send().await.unwrap();
                (resp.status(), resp.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        // The Ed25519 name signs the assertion and the DPoP proof (openid-client's default).
        let (s, v) = send(assertion("Ed25519", "a-1"), Some(proof("Ed25519", "p-1"))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["token_type"], "DPoP");
        let token = v["access_token"].as_str().unwrap();
        let thumbprint = charter_auth::PublicJwk::parse(&jwk).unwrap().thumbprint();
        assert_eq!(decode_part(token, 1)["cnf"]["jkt"], thumbprint.as_str());
        // Charter's own token still says EdDSA.
        assert_eq!(decode_part(token, 0)["alg"], "EdDSA");
        assert_eq!(app.introspect(&gateway, token).await["active"], true);
        // Mixed names, same key: fine.
        let (s, v) = send(assertion("EdDSA", "a-2"), Some(proof("Ed25519", "p-2"))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // Names not pinned to the key are refused: ES256 over an Ed25519 key, none, HS256.
        for alg in ["ES256", "none", "HS256", "ed25519"] {
            let (s, v) = send(assertion(alg, &format!("a-{alg}")), None).await;
            assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{alg}");
            let (s, v) = send(assertion("Ed25519", &format!("b-{alg}")), Some(proof(alg, &format!("p-{alg}")))).await;
            assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof")), "{alg}");
        }
    }

    async fn dpop_binds_the_token(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let mut body = w.grant_body(&app, &w.direct);
        body["require_dpop"] = json!(true);
        let (s, g) = app.post("/v1/grants", &w.steward.1, body).await;
        assert_eq!(s, StatusCode::CREATED);
        let grant = g["id"].as_str().unwrap().to_owned();
        let (s, _) = app.post(&format!("/v1/grants/{grant}/approvals"), &w.alice.1, json!({ "decision": "approve", "justification": "ok" })).await;
        assert_eq!(s, StatusCode::OK);
        let c = w.client(&app, &grant).await;
        let basic = Some((c.client_id.as_str(), c.secret.as_str()));
        let form = [("grant_type", "client_credentials")];
        let (s, v, _) = app.token_request(&form, basic, None).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof")));

        let key = SigningKey::generate("dpop".into()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        let jwk = json!({ "kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"] });
        let proof = |jti: &str, htu: &str| jws(&key, &json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }),
            &json!({ "htm": "POST", "htu": htu, "iat": app.now_s(), "jti": jti }));
        let p1 = proof("p-1", &format!("{}/oauth/token", app.base));
        let (s, v, _) = app.token_request(&form, basic, Some(&p1)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["token_type"], "DPoP");
        let token = v["access_token"].as_str().unwrap();
        let thumbprint = charter_auth::PublicJwk::parse(&jwk).unwrap().thumbprint();
        assert_eq!(decode_part(token, 1)["cnf"]["jkt"], thumbprint.as_str());
        assert_eq!(app.introspect(&gateway, token).await["cnf"]["jkt"], thumbprint.as_str());
        let (s, v, _) = app.token_request(&form, basic, Some(&p1)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof")), "replayed proof");
        let wrong = proof("p-2", "https://elsewhere.example.com/oauth/token");
        let (s, _, _) = app.token_request(&form, basic, Some(&wrong)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    async fn guessed_secrets_never_lock_out_the_real_client(app: TestApp) {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        // Someone who knows the client id (upstreams see it) guesses its secret; past the
        // quota (10 a minute per client id) the guesser is slowed down…
        let guess = || app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, "chs_guess")), None);
        let mut refused = 0;
        let (s, v, h) = loop {
            let (s, v, h) = guess().await;
            if s != StatusCode::UNAUTHORIZED || refused > 40 {
                break (s, v, h);
            }
            refused += 1;
        };
        assert_eq!((s, v["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("slow_down")), "{v}");
        assert!(h.get("retry-after").is_some());
        assert!(refused >= 10, "{refused}");
        for _ in 0..5 {
            assert_eq!(guess().await.0, StatusCode::TOO_MANY_REQUESTS);
        }
        // …and the real client, with its right secret, is not.
        for _ in 0..3 {
            let (s, v, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &c.secret)), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        // Each failure within the quota is audited; the rest are summarised once.
        let rows = app.state.repo.store.audit_query(&charter_store::AuditQuery { action: Some("token.refused".into()), limit: 100, ..Default::default() }).await.unwrap();
        let reasons: Vec<String> = rows.iter().filter_map(|r| serde_json::from_str::<Value>(&r.body).ok()?["reason"].as_str().map(str::to_owned)).collect();
        assert_eq!(reasons.iter().filter(|r| r.as_str() == "rate_limited").count(), 1, "{reasons:?}");
        assert_eq!(reasons.len(), refused + 1, "{reasons:?}");
    }

    async fn key_rotation_keeps_old_tokens_verifiable(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let before = app.token_for(&c).await;
        let old_kid = decode_part(&before, 0)["kid"].as_str().unwrap().to_owned();
        let (_, jwks) = app.call(reqwest::Method::GET, "/.well-known/jwks.json", None, None).await;
        let published: Vec<_> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        let (s, r) = app.post("/v1/keys/rotate", ADMIN_TOKEN, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let new_kid = r["active"].as_str().unwrap().to_owned();
        assert!(published.contains(&new_kid), "the new key was published before it signed");
        let after = app.token_for(&c).await;
        assert_eq!(decode_part(&after, 0)["kid"], new_kid.as_str());
        assert_eq!(app.introspect(&gateway, &before).await["active"], true, "old tokens verify until they expire");
        let (_, jwks) = app.call(reqwest::Method::GET, "/.well-known/jwks.json", None, None).await;
        let kids: Vec<_> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        assert!(kids.contains(&old_kid) && kids.len() == 3, "{kids:?}");
        // The retired key leaves the JWKS once every token it signed has expired.
        app.clock.advance(SignedDuration::from_secs(3600 + 301));
        app.state.keys.reload(&app.state.repo).await.unwrap();
        let (_, jwks) = app.call(reqwest::Method::GET, "/.well-known/jwks.json", None, None).await;
        let kids: Vec<_> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        assert!(!kids.contains(&old_kid), "{kids:?}");
    }

    async fn attacks_are_refused_at_introspection(app: TestApp) {
        let w = World::new(&app).await;
        let (_, gateway) = app.principal("edge-1", &["gateway"]).await;
        let grant = w.active_grant(&app).await;
        let c = w.client(&app, &grant).await;
        let good = app.token_for(&c).await;
        assert_eq!(app.introspect(&gateway, &good).await["active"], true);
        let header = decode_part(&good, 0);
        let claims = decode_part(&good, 1);
        let keys = app.state.keys.current().unwrap();
        let ours = &keys.signing;
        let jwk = serde_json::to_value(ours.public_jwk()).unwrap();
        let now = app.now_s();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims.clone();
            f(&mut c);
            c
        };
        let mut attacks: Vec<(&str, String)> = Vec::new();
        // alg none, unsigned.
        attacks.push(("alg none", format!("{}.{}.", b64(json!({ "alg": "none", "typ": "at+jwt" }).to_string().as_bytes()), b64(claims.to_string().as_bytes()))));
        // HS256 keyed with our public key.
        let input = format!("{}.{}", b64(json!({ "alg": "HS256", "typ": "at+jwt", "kid": header["kid"] }).to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let mac = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &x), input.as_bytes());
        attacks.push(("HS256 with our public key", format!("{input}.{}", b64(mac.as_ref()))));
        attacks.push(("unknown kid", jws(ours, &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "key_unknown" }), &claims)));
        for (name, extra) in [("jku", json!("https://evil.example.com/jwks")), ("x5u", json!("https://evil.example.com/cert")), ("jwk", jwk.clone())] {
            let mut h = header.clone();
            h[name] = extra;
            attacks.push((name, jws(ours, &h, &claims)));
        }
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = b64(with(&|c| c["scope"] = json!("orders:read orders:list orders:write")).to_string().as_bytes());
        attacks.push(("tampered payload", parts.join(".")));
        attacks.push(("expired", jws(ours, &header, &with(&|c| { c["iat"] = json!(now - 700); c["nbf"] = json!(now - 700); c["exp"] = json!(now - 100); }))));
        attacks.push(("nbf in the future", jws(ours, &header, &with(&|c| c["nbf"] = json!(now + 600)))));
        attacks.push(("wrong aud", jws(ours, &header, &with(&|c| c["aud"] = json!("https://api.example.com/billing")))));
        attacks.push(("wrong iss", jws(ours, &header, &with(&|c| c["iss"] = json!("https://evil.example.com")))));
        attacks.push(("stale epoch", jws(ours, &header, &with(&|c| c["epoch"] = json!(0)))));
        let stranger = SigningKey::generate(header["kid"].as_str().unwrap().to_owned()).unwrap();
        attacks.push(("another key, same kid", jws(&stranger, &header, &claims)));
        attacks.push(("oversized", jws(ours, &header, &with(&|c| c["pad"] = json!("x".repeat(9000))))));
        attacks.push(("garbage", "not.a.token".into()));
        for (name, token) in attacks {
            let v = app.introspect(&gateway, &token).await;
            assert_eq!(v, json!({ "active": false }), "{name} must be refused");
        }
        // Another client's secret does not open this client.
        let other = w.client(&app, &grant).await;
        let (s, _, _) = app.token_request(&[("grant_type", "client_credentials")], Some((&c.client_id, &other.secret)), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}
