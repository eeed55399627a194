//! The lifecycle verbs end to end against a running `charter serve`: a recertification
//! campaign attested through `charter review`, `charter findings`, break-glass access with
//! `charter breakglass open`, and a verified `charter partner offboard` (probing the
//! in-process gateway). A stand-in server shows the exit code of a failed offboarding.

use serde_json::json;

use crate::{Out, cast, cli, id, text};

/// A failure of the CLI's own making: exit 1, nothing on stdout, one `error:` line.
fn assert_one_error(out: &Out, needle: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert!(out.stderr.contains(needle), "{out:?}");
}

#[tokio::test]
async fn reviews_findings_breakglass_and_offboarding_end_to_end() {
    let server = crate::Server::start().await;
    let url = server.control.as_str();
    let admin = server.admin_token();

    let crew = cast(url, &admin);
    let (approver, approver_token, steward, api, partner) = (
        crew.approver.clone(),
        crew.approver_token.clone(),
        crew.steward.clone(),
        crew.api.clone(),
        crew.partner.clone(),
    );

    // An approved grant of `duration`.
    let grant = |duration: &str| crew.approved_grant(url, duration);
    let long = grant("30d");

    // A campaign over the partner: one item, the grant, with its usage evidence.
    let review = cli(
        url,
        Some(&steward),
        &["review", "start", "--partner", &partner, "--json"],
    )
    .ok()
    .json();
    assert_eq!(review["kind"], "recertification");
    assert_eq!(review["status"], "open");
    assert_eq!(review["items"].as_array().unwrap().len(), 1, "{review}");
    assert_eq!(review["items"][0]["grant"].as_str(), Some(long.as_str()));
    let review = id(&review);

    let shown = cli(url, Some(&steward), &["review", "show", &review]).ok();
    let header = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("ITEM "))
        .unwrap_or_else(|| panic!("no items table: {}", shown.stdout));
    for column in [
        "GRANT",
        "SCOPES",
        "LAST CALL",
        "NEVER USED",
        "DENIALS",
        "DUE",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("itm_1 ") && l.contains(&long) && l.ends_with(" -")),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.lines().any(|l| l.starts_with("subject:")
            && l.ends_with(&format!(" partner Acme Logistics ({partner})"))),
        "{}",
        shown.stdout
    );

    // Reduce needs the scopes to keep: refused before anything is sent.
    let out = cli(
        url,
        Some(&approver_token),
        &[
            "review",
            "attest",
            &review,
            "itm_1",
            "--decision",
            "reduce",
            "--justification",
            "less",
        ],
    );
    assert_one_error(&out, "--scope");

    // The partner's owner keeps the grant.
    let out = cli(
        url,
        Some(&approver_token),
        &[
            "review",
            "attest",
            &review,
            "itm_1",
            "--decision",
            "keep",
            "--justification",
            "Still shipping with Acme",
        ],
    )
    .ok();
    assert!(
        out.stdout.contains(&format!("keep by {approver}")),
        "{}",
        out.stdout
    );
    let done = cli(url, Some(&steward), &["review", "show", &review, "--json"])
        .ok()
        .json();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["items"][0]["decision"]["decision"], "keep");
    let list = cli(
        url,
        Some(&steward),
        &["review", "list", "--status", "completed"],
    )
    .ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&review) && l.contains("1/1")),
        "{}",
        list.stdout
    );

    // A grant ending in 3 days is a finding.
    let short = grant("3d");
    let found = cli(
        url,
        Some(&steward),
        &["findings", "--kind", "grant_expiring", "--json"],
    )
    .ok()
    .json();
    let items = found["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|f| f["subject"]["id"].as_str() == Some(short.as_str())),
        "{found}"
    );
    assert!(
        items
            .iter()
            .all(|f| f["subject"]["id"].as_str() != Some(long.as_str())),
        "{found}"
    );
    let table = cli(url, Some(&steward), &["findings"]).ok();
    assert!(
        table.stdout.starts_with("SEVERITY  KIND"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.lines().any(|l| l.starts_with("medium")
            && l.contains("grant_expiring")
            && l.contains(&format!("grant {short}"))
            && l.contains("NHI7")
            && l.contains("PR.AA-05")),
        "{}",
        table.stdout
    );

    // Break-glass: active at once, in the partner's regions, with its review opened.
    let emergency = cli(
        url,
        Some(&steward),
        &[
            "breakglass",
            "open",
            "--partner",
            &partner,
            "--api",
            &api,
            "--scope",
            "orders:read",
            "--incident",
            "INC-123",
            "--for",
            "2h",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(emergency["status"], "active");
    assert_eq!(emergency["emergency"]["incident"], "INC-123");
    assert_eq!(emergency["regions"], json!(["eu"]));
    assert_eq!(emergency["use_case"], "break-glass: INC-123");
    let opened: jiff::Timestamp = text(&emergency, "activated_at").parse().unwrap();
    let ends: jiff::Timestamp = text(&emergency, "expires_at").parse().unwrap();
    let lasts = ends.duration_since(opened);
    assert!(
        lasts <= jiff::SignedDuration::from_hours(2)
            && lasts > jiff::SignedDuration::from_mins(110),
        "{emergency}"
    );
    let emergency = id(&emergency);
    let reviews = cli(
        url,
        Some(&steward),
        &["review", "list", "--kind", "post_incident", "--json"],
    )
    .ok()
    .json();
    assert!(
        reviews["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["subject"]["id"].as_str() == Some(emergency.as_str())
                && r["status"] == "open"),
        "{reviews}"
    );
    let out = cli(
        url,
        Some(&steward),
        &[
            "breakglass",
            "open",
            "--partner",
            &partner,
            "--api",
            &api,
            "--scope",
            "orders:read",
            "--incident",
            "INC-124",
            "--for",
            "1h",
        ],
    )
    .ok();
    assert!(out.stdout.contains("emergency:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("active without approval"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ends by itself at"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("post-incident review opened automatically"),
        "{}",
        out.stdout
    );
    let out = cli(
        url,
        Some(&steward),
        &[
            "breakglass",
            "open",
            "--partner",
            &partner,
            "--api",
            &api,
            "--scope",
            "orders:read",
            "--incident",
            "INC-125",
            "--for",
            "5h",
        ],
    );
    assert_one_error(&out, "at most 4h");

    // A credential, so the token endpoint is among the checks.
    cli(
        url,
        Some(&steward),
        &["credential", "issue", "--grant", &long, "--json"],
    )
    .ok();

    // Offboarding revokes everything and verifies it, the in-process gateway included.
    let out = cli(
        url,
        Some(&steward),
        &[
            "partner",
            "offboard",
            &partner,
            "--reason",
            "Contract ended",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}\n{}", server.log());
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("status:") && l.ends_with(" completed")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("revoked_grants:") && l.ends_with(" 4")),
        "{}",
        out.stdout
    );
    for check in [
        "token_endpoint_refuses",
        "introspection_inactive",
        "gateway_denies",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(check) && l.contains(" ✓ ")),
            "no passed {check}: {}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains('✗'), "{}", out.stdout);
    let shown = cli(
        url,
        Some(&steward),
        &["partner", "show", &partner, "--json"],
    )
    .ok()
    .json();
    assert_eq!(shown["status"], "offboarded");
    let out = cli(
        url,
        Some(&steward),
        &["partner", "offboard", &partner, "--reason", "again"],
    );
    assert_one_error(&out, "409 ");
}

/// A stand-in control plane whose offboarding reports a failed check: exit 3, the checks on
/// stdout, the warning on stderr (also with `--json`).
#[tokio::test]
async fn a_failed_offboarding_exits_3() {
    let record = json!({
        "id": "off_1", "partner": "prt_1", "status": "failed", "requested_by": "prn_1",
        "reason": "Contract ended", "revoked_grants": ["grt_1"], "revoked_credentials": [],
        "canaries": [{ "grant": "grt_1", "jti": "j1" }],
        "checks": [
            { "name": "introspection_inactive", "target": "j1", "passed": true,
              "at": "2026-11-30T10:00:00Z", "detail": "inactive: revoked" },
            { "name": "gateway_denies", "target": "gw_1 j1", "passed": false,
              "at": "2026-11-30T10:00:01Z", "detail": "200 " },
        ],
        "started_at": "2026-11-30T10:00:00Z", "finished_at": "2026-11-30T10:00:01Z",
    });
    let reply = record.clone();
    let app = axum::Router::new().route(
        "/v1/partners/{id}/offboard",
        axum::routing::post(move || async move { axum::Json(reply) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let run = |json: bool| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["partner", "offboard", "prt_1", "--reason", "Contract ended"];
            if json {
                args.push("--json");
            }
            cli(&url, Some("t"), &args)
        })
    };
    let out = run(false).await.unwrap();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        "offboarding FAILED: 1 check(s) did not pass — access may remain; see the checks above"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("checks:") && l.ends_with("1 passed, 1 failed")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("gateway_denies") && l.contains(" ✗ ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("introspection_inactive") && l.contains(" ✓ ")),
        "{}",
        out.stdout
    );

    let out = run(true).await.unwrap();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.json(), record);
    assert!(
        out.stderr.starts_with("offboarding FAILED: 1 check(s)"),
        "{out:?}"
    );
    server.abort();
}
