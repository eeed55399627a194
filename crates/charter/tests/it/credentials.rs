//! Credentials and tokens end to end against a running `charter serve`: the steward issues,
//! rotates and revokes a client credential with `charter credential`, and `charter token`
//! gets access tokens with it the way a partner workload would.

use crate::{Out, Server, cast, cli, cli_env, id, text};

/// `charter token --client-id ID ARGS` with `secret` in CHARTER_CLIENT_SECRET.
fn token(url: &str, client_id: &str, secret: &str, args: &[&str]) -> Out {
    let mut all = vec!["token", "--client-id", client_id];
    all.extend_from_slice(args);
    cli_env(url, None, &[("CHARTER_CLIENT_SECRET", secret)], &all)
}

fn assert_invalid_client(out: &Out) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert!(out.stderr.contains("invalid_client"), "{out:?}");
}

/// An active grant on the example orders API; returns the steward's token and the grant.
fn active_grant(url: &str, admin: &str) -> (String, String) {
    let cast = cast(url, admin);
    let grant = cast.approved_grant(url, "30d");
    (cast.steward, grant)
}

#[tokio::test]
async fn credentials_and_tokens_end_to_end() {
    let server = Server::start().await;
    let url = server.control.as_str();
    let admin = server.admin_token();
    let (steward, grant) = active_grant(url, &admin);

    // The steward issues a client secret; the JSON reply is the one place it appears.
    let issued = cli(
        url,
        Some(&steward),
        &["credential", "issue", "--grant", &grant, "--json"],
    )
    .ok()
    .json();
    assert_eq!(issued["kind"], "client_secret");
    assert_eq!(issued["version"], 1);
    let credential = id(&issued);
    let client_id = text(&issued, "client_id");
    let first_secret = text(&issued, "client_secret");

    let list = cli(
        url,
        Some(&steward),
        &["credential", "list", "--grant", &grant],
    )
    .ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&credential) && l.contains(&client_id) && l.contains("active")),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains(&first_secret));

    // A token with the secret from CHARTER_CLIENT_SECRET; no admin token involved.
    let got = token(url, &client_id, &first_secret, &["--json"])
        .ok()
        .json();
    assert_eq!(got["token_type"], "Bearer");
    assert_eq!(got["scope"], "orders:read");
    assert!(got["expires_in"].as_i64().unwrap() > 0, "{got}");
    assert!(text(&got, "access_token").len() > 20);

    // The table form, with the secret in another variable and an explicit scope and resource.
    let out = cli_env(
        url,
        None,
        &[("ACME_SECRET", first_secret.as_str())],
        &[
            "token",
            "--client-id",
            &client_id,
            "--client-secret-env",
            "ACME_SECRET",
            "--scope",
            "orders:read",
            "--resource",
            "https://api.example.com/orders",
        ],
    )
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].starts_with("access_token: ey"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("token_type:") && lines[1].ends_with(" Bearer"),
        "{}",
        out.stdout
    );
    assert!(lines[3].ends_with(" orders:read"), "{}", out.stdout);

    // No secret in the environment: one line naming the variable.
    let out = cli(url, None, &["token", "--client-id", &client_id]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("CHARTER_CLIENT_SECRET"), "{out:?}");

    // Rotation without overlap: the new secret works, the old one stops at once.
    let rotated = cli(
        url,
        Some(&steward),
        &[
            "credential",
            "rotate",
            &credential,
            "--overlap",
            "0",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(rotated["version"], 2);
    assert_eq!(text(&rotated, "client_id"), client_id);
    let second_secret = text(&rotated, "client_secret");
    assert_ne!(second_secret, first_secret);
    assert_invalid_client(&token(url, &client_id, &first_secret, &[]));
    token(url, &client_id, &second_secret, &[]).ok();

    // Revocation: the credential reports it, and no secret works any more.
    let out = cli(
        url,
        Some(&steward),
        &[
            "credential",
            "revoke",
            &credential,
            "--reason",
            "Acme rebuilt its integration",
        ],
    )
    .ok();
    assert!(out.stdout.contains("revoked"), "{}", out.stdout);
    let shown = cli(
        url,
        Some(&steward),
        &["credential", "show", &credential, "--json"],
    )
    .ok()
    .json();
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revoke_reason"], "Acme rebuilt its integration");
    // The rotation without overlap dropped version 1 at once.
    assert_eq!(shown["versions"].as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown["versions"][0]["version"], 2, "{shown}");
    assert_invalid_client(&token(url, &client_id, &second_secret, &[]));

    // Signing keys: the admin rotates, the list shows the new active key.
    let keys = cli(url, Some(&admin), &["key", "rotate", "--json"])
        .ok()
        .json();
    let active = text(&keys, "active");
    let list = cli(url, Some(&admin), &["key", "list"]).ok();
    assert!(list.stdout.starts_with("KID "), "{}", list.stdout);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&active) && l.contains("active")),
        "{}",
        list.stdout
    );
}
