//! `charter demo`: a seeded demo world in one process. Starts Charter on SQLite in a fresh
//! directory (`./charter-demo` unless `--data-dir` says otherwise) with a random admin token,
//! a demo upstream, and seeds principals, APIs, partners, grants and a client credential
//! through the admin API (so the audit chain records every step). Every principal's token is
//! written next to the database (`admin.token`, `<name>.token`, mode 0600), where the
//! README's walkthrough reads them.
//! Then it prints what to try next — verbatim-runnable commands — and runs until Ctrl-C.

mod seed;
mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use charter_core::Clock;
use charter_server::clock::SystemClock;
use charter_server::{Bootstrap, Config};
use clap::Args;

use crate::client::Client;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Control-plane address.
    #[arg(long, default_value = "127.0.0.1:7600", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:7601", value_name = "ADDR")]
    pub gateway_listen: SocketAddr,
    /// Address of the demo upstream the demo APIs point at.
    #[arg(long, default_value = "127.0.0.1:7602", value_name = "ADDR")]
    pub upstream_listen: SocketAddr,
    /// Where the demo database and its principals' token files live [default:
    /// ./charter-demo, created fresh and removed on exit].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Listeners are bound before anything is created: the upstream's here, Charter's first
    // thing in `start` (a port of 0 picks a free one; the addresses printed are the bound ones).
    let upstream_listener = tokio::net::TcpListener::bind(args.upstream_listen)
        .await
        .map_err(|e| busy(args.upstream_listen, "--upstream-listen", &e))?;
    let upstream_addr = upstream_listener.local_addr()?;

    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => {
            if dir.join("charter.db").exists() {
                anyhow::bail!(
                    "{} already holds a Charter database; the demo seeds a fresh one: pass an empty --data-dir",
                    dir.display()
                );
            }
            (dir.clone(), false)
        }
        None => (fresh_dir(Path::new(DEFAULT_DIR))?, true),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = crate::serve::shutdown_signal()?;
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        signal.await;
        let _ = signal_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let upstream_stop = stopped();
    let upstream_task = tokio::spawn(async move {
        let served = axum::serve(upstream_listener, upstream::router())
            .with_graceful_shutdown(upstream_stop)
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the demo upstream stopped");
        }
    });

    let config = Config {
        listen: args.listen,
        gateway_listen: args.gateway_listen,
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    let clock = Arc::new(SystemClock);
    let admin_token = charter_server::auth::new_token();
    let result = async {
        let running = charter_server::start(
            &config,
            clock.clone(),
            Some(admin_token.as_str()),
            stopped(),
        )
        .await?;
        if running.bootstrap != Bootstrap::FromEnvironment {
            anyhow::bail!(
                "{} already holds principals; the demo needs an empty data directory",
                data_dir.display()
            );
        }
        let control = running
            .control_addr
            .context("the control plane did not start")?;
        let server = format!("http://{control}");
        let admin = Client::new(&server, admin_token.clone())?;
        let world = seed::seed(&admin, &format!("http://{upstream_addr}"), clock.now()).await?;
        write_token(&data_dir, "admin", &admin_token)?;
        for p in &world.principals {
            write_token(&data_dir, &p.name, &p.token)?;
        }
        let shown = Shown {
            server: &server,
            gateway: running
                .gateway_addr
                .map_or_else(|| "-".to_owned(), |a| format!("http://{a}")),
            upstream: format!("http://{upstream_addr}"),
            data_dir: &data_dir,
            temporary,
            admin_token: &admin_token,
        };
        print!("{}", next_steps(&shown, &world, path_hint().as_deref()));
        running.wait().await;
        Ok(())
    }
    .await;

    // Whatever happened, stop everything that was started.
    let _ = stop_tx.send(true);
    let _ = upstream_task.await;
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result?;
    eprintln!("charter demo: stopped");
    Ok(())
}

fn busy(addr: SocketAddr, flag: &str, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "{addr} is already in use (is another charter running?); stop it or pick another address with {flag}"
        )
    } else {
        anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}")
    }
}

/// The default data directory, relative to where the demo is started.
const DEFAULT_DIR: &str = "charter-demo";

/// Marks a directory as made by `charter demo`; it holds the id of the demo's process.
const MARKER: &str = ".charter-demo";

/// `dir` (the default `./charter-demo`), fresh and marked as this demo's: a leftover of an
/// earlier demo that did not stop cleanly is removed; a directory the demo did not make, or
/// one a running demo uses, is refused.
fn fresh_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let shown = dir.display();
    if dir.exists() {
        match std::fs::read_to_string(dir.join(MARKER)) {
            Err(_) => anyhow::bail!(
                "{shown} exists and was not made by `charter demo`; move it away or pass --data-dir DIR"
            ),
            Ok(pid) if process_alive(pid.trim()) => anyhow::bail!(
                "another `charter demo` (process {}) uses {shown}; stop it or pass --data-dir DIR",
                pid.trim()
            ),
            Ok(_) => std::fs::remove_dir_all(dir)
                .with_context(|| format!("removing the stale {shown}"))?,
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {shown}"))?;
    std::fs::write(dir.join(MARKER), format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {shown}/{MARKER}"))?;
    Ok(dir.to_path_buf())
}

/// Whether another process with this id runs (where `/proc` says; elsewhere a leftover
/// directory counts as stale).
fn process_alive(pid: &str) -> bool {
    pid.parse::<u32>()
        .is_ok_and(|p| p != std::process::id() && Path::new("/proc").join(p.to_string()).exists())
}

/// Writes `<dir>/<name>.token`, readable by the owner only.
fn write_token(dir: &Path, name: &str, token: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join(format!("{name}.token"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{token}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// How to get `charter` onto the command line, when it is not on the PATH: install it, or
/// an alias for the binary that is running now.
fn path_hint() -> Option<String> {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("charter").is_file())
    });
    if on_path {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    Some(format!(
        "`charter` is not on your PATH: `cargo install --path crates/charter --locked` puts it there,\n\
         or for this shell only: alias charter={}\n",
        shell_word(&exe.display().to_string())
    ))
}

/// `s` as one shell word: as it is when that is safe, else single-quoted.
fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Where the demo runs, for the closing lines.
struct Shown<'a> {
    server: &'a str,
    gateway: String,
    upstream: String,
    data_dir: &'a Path,
    temporary: bool,
    admin_token: &'a str,
}

/// What the demo prints once it is seeded: where everything is, the principals and their
/// tokens, and commands to try, each runnable as printed (in another terminal).
fn next_steps(shown: &Shown<'_>, world: &seed::World, path_hint: Option<&str>) -> String {
    let Shown {
        server,
        gateway,
        upstream,
        data_dir,
        temporary,
        admin_token,
    } = shown;
    let kept = if *temporary { " (removed on exit)" } else { "" };
    // Token files by absolute path, so the commands work from any directory.
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let token_file =
        |name: &str| shell_word(&dir.join(format!("{name}.token")).display().to_string());
    let mut principals = format!(
        "  {:<15} {:<10} {:<30}  the bootstrap admin\n                  token {admin_token}\n",
        "admin", "admin", "",
    );
    for p in &world.principals {
        principals.push_str(&format!(
            "  {:<15} {:<10} {:<30}  {}\n                  token {}\n",
            p.name, p.roles, p.id, p.note, p.token
        ));
    }
    let path_hint = path_hint.map(|h| format!("\n{h}")).unwrap_or_default();
    format!(
        "\
Charter demo is running.

  control plane   {server}   admin API, OAuth token service, /openapi.json
  gateway         {gateway}   partner calls: /{{api}}/{{path}}, check mode /v1/authz/check
  demo upstream   {upstream}   the service the demo APIs stand for
  data            {data}{kept}
  seeded          {principals_n} principals, 2 APIs (orders, customers), 3 partners (Acme Logistics,
                  Globex Marketplace, Initech CRM Connector), {grants} grants (active, pending,
                  revoked, suspended, cross-border), a client credential for Acme; every step
                  is in the audit chain

Principals and their tokens (printed because this is a throwaway demo; never share real
ones). Each token is also in {dir}/<name>.token:
{principals}{path_hint}
Try next, in another terminal (as the auditor):
  export CHARTER_SERVER={server} CHARTER_TOKEN=$(cat {auditor})
  charter grant list
  charter grant show {acme}
  charter findings
  charter audit verify

Call the orders API through the gateway as Acme's workload, with its demo client credential:
  export CLIENT_ID={client_id} CLIENT_SECRET={client_secret}
  TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials {server}/oauth/token | cut -d'\"' -f4)
  curl -s -w '\\n' -H \"Authorization: Bearer $TOKEN\" {gateway}/orders/orders/1001
      allowed: order 1001, as the demo upstream served it to Acme's grant
  curl -s -w '\\n' -X POST -H \"Authorization: Bearer $TOKEN\" {gateway}/orders/orders
      denied, 403: Acme may read orders but not create them (reason scope_not_granted)
  charter audit tail -n 5
      the last records: token.issue, then one access.decision per call (ACTOR the client
      id, TARGET Acme's grant, REASON - for the allowed call and scope_not_granted for the
      denied one), and the access.outcome of the allowed call (the upstream's answer)

Or open the console in a browser, {server}/console, and sign in with a token above: bob
(an approver) finds Globex's grant waiting for his approval, partner-office (the steward)
can suspend, revoke or offboard, audit-team reads findings, the audit log and compliance.

Press Ctrl-C to stop.
",
        data = data_dir.display(),
        dir = shell_word(&dir.display().to_string()),
        principals_n = world.principals.len() + 1,
        grants = world.grants,
        auditor = token_file("audit-team"),
        client_id = world.client_id,
        client_secret = world.client_secret,
        acme = world.acme_grant,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_dir_is_fresh_and_never_someone_elses() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("charter-demo");
        assert_eq!(fresh_dir(&dir).unwrap(), dir);
        let marker = std::fs::read_to_string(dir.join(MARKER)).unwrap();
        assert_eq!(marker.trim(), std::process::id().to_string());

        // A leftover of a demo whose process is gone is replaced.
        std::fs::write(dir.join(MARKER), "4294967295\n").unwrap();
        std::fs::write(dir.join("charter.db"), "old").unwrap();
        fresh_dir(&dir).unwrap();
        assert!(!dir.join("charter.db").exists());

        // A running demo's directory is refused (process 1 always runs).
        std::fs::write(dir.join(MARKER), "1\n").unwrap();
        let e = fresh_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("another `charter demo` (process 1)"), "{e}");

        // A directory the demo did not make is left alone.
        let mine = tmp.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("notes.txt"), "keep").unwrap();
        let e = fresh_dir(&mine).unwrap_err().to_string();
        assert!(e.contains("was not made by `charter demo`"), "{e}");
        assert!(mine.join("notes.txt").exists());
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_word("/work/target/debug/charter"),
            "/work/target/debug/charter"
        );
        assert_eq!(shell_word("/home/me/my dir/x"), "'/home/me/my dir/x'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
