//! The admin verbs end to end against a running `charter serve`, each called as the
//! principal whose job it is.

use serde_json::Value;

use crate::{Server, cli, example, unused_port};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn admin_verbs_end_to_end() {
    let server = Server::start().await;
    let url = server.control.as_str();
    let admin = server.admin_token();

    // Principals, as the bootstrap admin.
    let add = |name: &str, role: &str| {
        let v = cli(
            url,
            Some(&admin),
            &["principal", "add", "--name", name, "--role", role, "--json"],
        )
        .ok()
        .json();
        assert_eq!(v["roles"][0], role);
        (id(&v), v["token"].as_str().unwrap().to_owned())
    };
    let (approver, approver_token) = add("alice", "approver");
    let (_, steward_token) = add("partner-office", "steward");
    let (owner, owner_token) = add("orders-team", "api_owner");

    // The table form prints the token once, with a note.
    let out = cli(
        url,
        Some(&admin),
        &[
            "principal",
            "add",
            "--name",
            "audit-team",
            "--role",
            "auditor",
        ],
    )
    .ok();
    assert!(out.stdout.contains("shown once"), "{}", out.stdout);
    let auditor_token = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap()
        .to_owned();

    // The API owner publishes the example API in their own name.
    let orders = example("orders.toml");
    let api = cli(
        url,
        Some(&owner_token),
        &["api", "publish", "-f", orders.to_str().unwrap(), "--json"],
    )
    .ok()
    .json();
    assert_eq!(api["name"], "orders");
    assert_eq!(api["owner"].as_str(), Some(owner.as_str()));
    let api = id(&api);
    // Publishing it again is a conflict, said in plain English.
    let again = cli(
        url,
        Some(&owner_token),
        &["api", "publish", "-f", orders.to_str().unwrap()],
    );
    assert_eq!(again.code, Some(1), "{again:?}");
    assert_eq!(
        again.stderr.trim_end(),
        "error: 409 conflict: an API with this name or audience already exists"
    );

    // The steward registers the partner and requests a grant.
    let partner = cli(
        url,
        Some(&steward_token),
        &[
            "partner",
            "add",
            "--name",
            "Acme Logistics",
            "--kind",
            "direct",
            "--region",
            "eu",
            "--owner",
            &approver,
            "--json",
        ],
    )
    .ok()
    .json();
    let partner = id(&partner);
    let grant = cli(
        url,
        Some(&steward_token),
        &[
            "grant",
            "request",
            "--partner",
            &partner,
            "--api",
            &api,
            "--use-case",
            "Shipment tracking",
            "--scope",
            "orders:read",
            "--ceiling",
            "confidential",
            "--region",
            "eu",
            "--for",
            "30d",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(grant["status"], "pending");
    let grant = id(&grant);

    // The partner's owner approves it.
    let out = cli(
        url,
        Some(&approver_token),
        &[
            "grant",
            "approve",
            &grant,
            "--justification",
            "Contract ACM-2025-17",
            "--ticket",
            "CHG-4211",
        ],
    )
    .ok();
    assert!(out.stdout.contains("active"), "{}", out.stdout);

    let shown = cli(
        url,
        Some(&steward_token),
        &["grant", "show", &grant, "--json"],
    )
    .ok()
    .json();
    assert_eq!(shown["status"], "active");
    assert_eq!(
        shown["approvals"][0]["approver"].as_str(),
        Some(approver.as_str())
    );

    let list = cli(url, Some(&auditor_token), &["grant", "list"]).ok();
    let mut lines = list.stdout.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{}", list.stdout);
    // Partners and APIs by name beside their ids.
    assert!(
        lines.any(|l| l.starts_with(&grant)
            && l.contains(&format!("Acme Logistics ({partner})"))
            && l.contains(&format!("orders ({api})"))
            && l.contains("active")),
        "{}",
        list.stdout
    );
    // --json stays what the server sent: bare ids.
    let raw = cli(url, Some(&auditor_token), &["grant", "list", "--json"])
        .ok()
        .json();
    assert_eq!(raw["items"][0]["partner"].as_str(), Some(partner.as_str()));
    // Principals by name for the admin, who may list them; a role that may not list them
    // sees the bare id, and the command still succeeds.
    let shown = cli(url, Some(&admin), &["partner", "show", &partner]).ok();
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("owners:") && l.ends_with(&format!(" alice ({approver})"))),
        "{}",
        shown.stdout
    );
    let shown = cli(url, Some(&auditor_token), &["partner", "show", &partner]).ok();
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("owners:") && l.ends_with(&format!(" {approver}"))),
        "{}",
        shown.stdout
    );

    // The auditor verifies the chain, reading the token from a file.
    let token_file = server.dir.path().join("auditor.token");
    std::fs::write(&token_file, format!("{auditor_token}\n")).unwrap();
    let out = cli(
        url,
        None,
        &[
            "audit",
            "verify",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(
        out.stdout.starts_with("audit chain intact: "),
        "{}",
        out.stdout
    );
    let tail = cli(url, Some(&auditor_token), &["audit", "tail", "-n", "3"]).ok();
    assert!(tail.stdout.contains("grant.approve"), "{}", tail.stdout);
    assert!(tail.stdout.lines().count() == 4, "{}", tail.stdout);

    // An unknown grant: exit 1, one error line.
    let out = cli(
        url,
        Some(&approver_token),
        &["grant", "approve", "grt_unknown", "--justification", "x"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("error: 404 not_found: "), "{out:?}");

    // A role that may not call: 403, still one line.
    let out = cli(url, Some(&auditor_token), &["principal", "list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("error: 403 "), "{out:?}");

    // Nobody listening: exit 1, one line, no token in it.
    let nowhere = format!("http://127.0.0.1:{}", unused_port());
    let out = cli(&nowhere, Some(&admin), &["grant", "list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("error: cannot reach "), "{out:?}");
    assert!(!out.stderr.contains(&admin));

    // No token at all.
    let out = cli(url, None, &["grant", "list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("CHARTER_TOKEN"), "{out:?}");
}
