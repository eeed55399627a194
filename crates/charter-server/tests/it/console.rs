//! The console over real HTTP, as a browser drives it: cookies kept by hand, redirects
//! followed by hand, forms posted as `application/x-www-form-urlencoded`. Each test signs in
//! with a principal's token and checks what the page shows and what the store recorded.
//! (Headless Chromium drives the same pages in `tests/console/`.)

use std::collections::HashMap;

use jiff::SignedDuration;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, Backend, TestApp, World, run_test};

/// One person's browser: its cookies and the last page's CSRF token.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The value of the first `name="csrf"` field on the page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field: {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// Labels of the page's buttons.
    fn buttons(&self) -> Vec<String> {
        self.body
            .split("<button")
            .skip(1)
            .map(|b| {
                let text = &b[b.find('>').unwrap() + 1..];
                text[..text.find("</button>").unwrap()].trim().to_owned()
            })
            .collect()
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for c in headers.get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let resp = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        self.keep_cookies(&headers);
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    /// GET, following redirects as a browser does.
    async fn get(&mut self, path: &str) -> Page {
        let mut path = path.to_owned();
        for _ in 0..5 {
            let page = self
                .send(self.http.get(format!("{}{path}", self.app.base)))
                .await;
            match page.headers.get(LOCATION) {
                Some(to) if page.status.is_redirection() => {
                    path = to.to_str().unwrap().to_owned();
                }
                _ => return page,
            }
        }
        panic!("too many redirects");
    }

    /// POSTs a form; follows a `303` to the page it names.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let page = self
            .send(
                self.http
                    .post(format!("{}{path}", self.app.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await;
        match page.headers.get(LOCATION) {
            Some(to) if page.status == StatusCode::SEE_OTHER => {
                let to = to.to_str().unwrap().to_owned();
                self.get(&to).await
            }
            _ => page,
        }
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        let home = self
            .post("/console/sign-in", &[("csrf", &csrf), ("token", token)])
            .await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        assert!(home.body.contains("<h1>My work</h1>"), "{}", home.body);
        home
    }
}

async fn audit_actions(app: &TestApp, target: &str) -> Vec<(String, String)> {
    let (s, page) = app
        .get(&format!("/v1/audit?target={target}&limit=500"), ADMIN_TOKEN)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["record"]["action"].as_str().unwrap().to_owned(),
                i["record"]["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn grant_status(app: &TestApp, id: &str) -> serde_json::Value {
    let (s, g) = app.get(&format!("/v1/grants/{id}"), ADMIN_TOKEN).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_sees_the_approval_waiting_and_approves() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let grant = w.pending_grant(&app).await;
        let mut alice = Browser::new(&app);
        let home = alice.sign_in(&w.alice.1).await;
        assert!(
            home.body.contains(&format!("/console/grants/{grant}")),
            "{}",
            home.body
        );
        assert!(
            home.body.contains("Acme"),
            "names stand beside ids: {}",
            home.body
        );

        let page = alice.get(&format!("/console/grants/{grant}")).await;
        assert_eq!(
            page.buttons(),
            ["Sign out", "Approve", "Reject"],
            "{}",
            page.body
        );
        assert!(page.body.contains("name=\"justification\""));
        assert!(page.body.contains("name=\"ticket\""));
        let done = alice
            .post(
                &format!("/console/grants/{grant}/approve"),
                &[
                    ("csrf", &page.csrf()),
                    ("justification", "Deliveries need it"),
                    ("ticket", "CHG-7"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("Approved."), "{}", done.body);
        assert!(
            done.body
                .contains("<span class=\"status active\">active</span>"),
            "{}",
            done.body
        );
        assert!(done.body.contains("CHG-7"));
        assert_eq!(grant_status(&app, &grant).await["status"], "active");
        // Audited with the person as actor, like an API approval.
        let actions = audit_actions(&app, &grant).await;
        assert!(
            actions.contains(&("grant.approve".to_owned(), w.alice.0.clone())),
            "{actions:?}"
        );
        // Nothing waits on her any more.
        let home = alice.get("/console").await;
        assert!(
            home.body.contains("Nothing waits on your approval."),
            "{}",
            home.body
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_is_refused() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let grant = w.pending_grant(&app).await;
        let mut alice = Browser::new(&app);
        alice.sign_in(&w.alice.1).await;
        // No token, and a token of another session: both refused, nothing changes.
        let mut bob = Browser::new(&app);
        let bobs = bob.sign_in(&w.bob.1).await;
        for csrf in [None, Some(bobs.csrf())] {
            let mut fields = vec![("justification", "forged")];
            if let Some(c) = &csrf {
                fields.push(("csrf", c));
            }
            let page = alice
                .post(&format!("/console/grants/{grant}/approve"), &fields)
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
            assert!(page.body.contains("CSRF"), "{}", page.body);
        }
        assert_eq!(grant_status(&app, &grant).await["status"], "pending");
        // A sign-in without the sign-in form's token is refused too (login CSRF).
        let mut stranger = Browser::new(&app);
        let page = stranger
            .post("/console/sign-in", &[("token", &w.alice.1)])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(!stranger.cookies.contains_key("charter_session"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_sees_no_action_buttons_and_cannot_post_one() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let mut auditor = Browser::new(&app);
        auditor.sign_in(&w.auditor.1).await;
        for path in [
            format!("/console/grants/{grant}"),
            format!("/console/partners/{}", w.direct),
            "/console/reviews".to_owned(),
            "/console/findings".to_owned(),
            "/console/audit".to_owned(),
            "/console/compliance".to_owned(),
            "/console".to_owned(),
        ] {
            let page = auditor.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
            let buttons: Vec<String> = page
                .buttons()
                .into_iter()
                .filter(|b| b != "Sign out" && b != "Search")
                .collect();
            assert!(buttons.is_empty(), "{path}: {buttons:?}");
        }
        let page = auditor.get(&format!("/console/grants/{grant}")).await;
        let refused = auditor
            .post(
                &format!("/console/grants/{grant}/revoke"),
                &[("csrf", &page.csrf()), ("reason", "I am an auditor")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(grant_status(&app, &grant).await["status"], "active");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steward_revokes_a_grant_and_the_gateway_refuses_it() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let mut steward = Browser::new(&app);
        steward.sign_in(&w.steward.1).await;
        let page = steward.get(&format!("/console/grants/{grant}")).await;
        assert_eq!(
            page.buttons(),
            ["Sign out", "Suspend", "Revoke"],
            "{}",
            page.body
        );
        let done = steward
            .post(
                &format!("/console/grants/{grant}/revoke"),
                &[("csrf", &page.csrf()), ("reason", "Contract ended")],
            )
            .await;
        assert!(done.body.contains("Revoked."), "{}", done.body);
        assert!(done.body.contains("Contract ended"));
        let g = grant_status(&app, &grant).await;
        assert_eq!(g["status"], "revoked");
        let actions = audit_actions(&app, &grant).await;
        assert!(actions.contains(&("grant.revoke".to_owned(), w.steward.0.clone())));
        // A page with nothing left to do shows no lifecycle buttons.
        assert_eq!(done.buttons(), ["Sign out"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_reduces_a_grant_from_the_review_queue() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let grant = w.active_grant(&app).await;
        let (s, review) = app
            .post("/v1/reviews", &w.steward.1, json!({ "partner": w.direct }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{review}");
        let mut alice = Browser::new(&app);
        let home = alice.sign_in(&w.alice.1).await;
        assert!(
            home.body.contains(&grant),
            "the review is due: {}",
            home.body
        );
        let queue = alice.get("/console/reviews").await;
        assert_eq!(
            queue.buttons(),
            ["Sign out", "Keep", "Reduce", "Revoke"],
            "{}",
            queue.body
        );
        assert!(
            queue.body.contains("never used"),
            "usage evidence beside the grant: {}",
            queue.body
        );
        let review_id = review["id"].as_str().unwrap();
        let done = alice
            .post(
                &format!("/console/reviews/{review_id}/items/itm_1/attest"),
                &[
                    ("csrf", &queue.csrf()),
                    ("scope", "orders:read"),
                    ("justification", "Listing is no longer needed"),
                    ("decision", "reduce"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("Attestation recorded."), "{}", done.body);
        // The item left the queue with its review (completed).
        assert!(done.body.contains("No open review."), "{}", done.body);
        let g = grant_status(&app, &grant).await;
        assert_eq!(g["scopes"], json!(["orders:read"]));
        // Reduce without a scope to keep is refused with a clear message.
        let (_, again) = app
            .post("/v1/reviews", &w.steward.1, json!({ "partner": w.direct }))
            .await;
        let queue = alice.get("/console/reviews").await;
        let page = alice
            .post(
                &format!(
                    "/console/reviews/{}/items/itm_1/attest",
                    again["id"].as_str().unwrap()
                ),
                &[
                    ("csrf", &queue.csrf()),
                    ("justification", "x"),
                    ("decision", "reduce"),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        assert!(page.body.contains("tick the scopes to keep"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_needs_the_typed_name_and_shows_its_verification() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        w.active_grant(&app).await;
        // The app's control plane and gateway registered: every enforcement point is probed.
        crate::offboarding::register_app(&app).await;
        let mut steward = Browser::new(&app);
        steward.sign_in(&w.steward.1).await;
        let path = format!("/console/partners/{}", w.direct);
        let page = steward.get(&path).await;
        assert!(
            page.buttons().contains(&"Offboard".to_owned()),
            "{}",
            page.body
        );
        let wrong = steward
            .post(
                &format!("{path}/offboard"),
                &[
                    ("csrf", &page.csrf()),
                    ("reason", "Contract ended"),
                    ("confirm", "acme"),
                ],
            )
            .await;
        assert_eq!(
            wrong.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            wrong.body
        );
        let (_, p) = app
            .get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN)
            .await;
        assert_eq!(p["status"], "active", "nothing happened");

        let done = steward
            .post(
                &format!("{path}/offboard"),
                &[
                    ("csrf", &page.csrf()),
                    ("reason", "Contract ended"),
                    ("confirm", "Acme"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("Offboarding finished"), "{}", done.body);
        // Every check of the record, per enforcement point, with its result.
        let (_, record) = app
            .get(&format!("/v1/partners/{}", w.direct), ADMIN_TOKEN)
            .await;
        assert_eq!(record["status"], "offboarded");
        assert!(
            done.body
                .contains("<span class=\"status completed\">completed</span>"),
            "{}",
            done.body
        );
        assert!(
            done.body.contains("Offboarding <code>off_"),
            "{}",
            done.body
        );
        assert!(
            done.body
                .contains("<span class=\"status passed\">passed</span>"),
            "{}",
            done.body
        );
        assert!(
            !done
                .body
                .contains("<span class=\"status failed\">failed</span>"),
            "{}",
            done.body
        );
        assert!(!done.buttons().contains(&"Offboard".to_owned()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_on_rotation_on_idle_and_on_sign_out() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let mut alice = Browser::new(&app);
        alice.sign_in(&w.alice.1).await;
        // Rotating the token ends the session at once.
        let (s, _) = app
            .post(
                &format!("/v1/principals/{}/rotate", w.alice.0),
                ADMIN_TOKEN,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let page = alice.get("/console").await;
        assert!(
            page.body.contains("Sign in to the console"),
            "{}",
            page.body
        );

        // Idle for 30 minutes ends it too; 29 do not.
        let mut bob = Browser::new(&app);
        bob.sign_in(&w.bob.1).await;
        app.clock.advance(SignedDuration::from_mins(29));
        assert!(bob.get("/console").await.body.contains("<h1>My work</h1>"));
        app.clock.advance(SignedDuration::from_mins(30));
        assert!(
            bob.get("/console")
                .await
                .body
                .contains("Sign in to the console")
        );

        // Sign-out forgets the session, even if the cookie is replayed.
        let mut auditor = Browser::new(&app);
        let home = auditor.sign_in(&w.auditor.1).await;
        let cookie = auditor.cookies["charter_session"].clone();
        auditor
            .post("/console/sign-out", &[("csrf", &home.csrf())])
            .await;
        auditor.cookies.insert("charter_session".into(), cookie);
        assert!(
            auditor
                .get("/console")
                .await
                .body
                .contains("Sign in to the console")
        );

        // A disabled principal's session ends.
        let mut steward = Browser::new(&app);
        steward.sign_in(&w.steward.1).await;
        let (s, _) = app
            .post(
                &format!("/v1/principals/{}/disable", w.steward.0),
                ADMIN_TOKEN,
                json!({ "reason": "left the company" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            steward
                .get("/console")
                .await
                .body
                .contains("Sign in to the console")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_strict_headers_cookies_and_failed_sign_ins_are_audited() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let mut b = Browser::new(&app);
        let form = b.get("/console/sign-in").await;
        let csrf = form.csrf();
        let failed = b
            .post(
                "/console/sign-in",
                &[("csrf", &csrf), ("token", "chp_not-a-token")],
            )
            .await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
        assert!(
            !failed.body.contains("chp_not-a-token"),
            "never echo a token"
        );
        let (_, log) = app
            .get("/v1/audit?action=auth.failed&limit=10", ADMIN_TOKEN)
            .await;
        assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");

        let resp = b
            .http
            .post(format!("{}/console/sign-in", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("charter_signin={csrf}"))
            .body(serde_urlencoded::to_string([("csrf", &csrf), ("token", &w.alice.1)]).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("charter_session="))
            .unwrap();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(cookie.contains("Path=/console"), "{cookie}");
        let mut b = Browser::new(&app);
        let home = b.sign_in(&w.alice.1).await;
        let csp = home.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "no script at all: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(home.headers["referrer-policy"], "no-referrer");
        assert_eq!(home.headers["cache-control"], "no-store");
        assert!(!home.body.contains("<script"), "{}", home.body);
        // An approver does not get the audit search.
        let page = b.get("/console/audit").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steward_opens_break_glass_and_audit_search_finds_it() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let mut steward = Browser::new(&app);
        steward.sign_in(&w.steward.1).await;
        let page = steward
            .get(&format!("/console/partners/{}", w.direct))
            .await;
        let done = steward
            .post(
                &format!("/console/partners/{}/breakglass", w.direct),
                &[
                    ("csrf", &page.csrf()),
                    ("api", &w.api),
                    ("scope", "orders:read"),
                    ("incident", "INC-42"),
                    ("hours", "2"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(
            done.body.contains("Emergency access opened"),
            "{}",
            done.body
        );
        assert!(done.body.contains("incident INC-42"), "{}", done.body);
        let home = steward.get("/console").await;
        assert!(
            home.body.contains("incident INC-42"),
            "emergency access open now: {}",
            home.body
        );
        // Over 4 hours is refused by the same rule as the API.
        let page = steward
            .get(&format!("/console/partners/{}", w.direct))
            .await;
        let refused = steward
            .post(
                &format!("/console/partners/{}/breakglass", w.direct),
                &[
                    ("csrf", &page.csrf()),
                    ("api", &w.api),
                    ("scope", "orders:read"),
                    ("incident", "INC-43"),
                    ("hours", "5"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        // The audit search by partner finds the request, by decision finds no call yet.
        let found = steward
            .get(&format!("/console/audit?partner={}", w.direct))
            .await;
        assert!(
            found.body.contains("grant.emergency_open"),
            "{}",
            found.body
        );
        assert!(found.body.contains("partner.create"), "{}", found.body);
        let none = steward.get("/console/audit?decision=deny").await;
        assert!(none.body.contains("0 record(s)"), "{}", none.body);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_wait_on_the_owners_of_request_time_not_on_later_owners() {
    run_test(Backend::Sqlite, |app| async move {
        let w = World::new(&app).await;
        let grant = w.pending_grant(&app).await;
        // The admin hands the partner to bob after the request: the grant's approvers stay
        // the owners it was requested under (alice), as the API rules.
        let (s, p) = app
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/partners/{}", w.direct),
                Some(ADMIN_TOKEN),
                Some(json!({ "owners": [w.bob.0] })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let mut bob = Browser::new(&app);
        let home = bob.sign_in(&w.bob.1).await;
        assert!(!home.body.contains(&grant), "{}", home.body);
        let page = bob.get(&format!("/console/grants/{grant}")).await;
        assert_eq!(page.buttons(), ["Sign out"], "{}", page.body);
        let mut alice = Browser::new(&app);
        let home = alice.sign_in(&w.alice.1).await;
        assert!(home.body.contains(&grant), "{}", home.body);
        let page = alice.get(&format!("/console/grants/{grant}")).await;
        assert_eq!(page.buttons(), ["Sign out", "Approve", "Reject"]);
    })
    .await;
}
