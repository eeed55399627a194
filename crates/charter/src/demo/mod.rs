//! `charter demo`: a seeded demo world in one process. Starts Charter on SQLite in a fresh
//! directory with a random admin token, a demo upstream, and seeds principals, APIs,
//! partners, grants and a client credential through the admin API (so the audit chain
//! records every step).
//! Then it prints what to try next and runs until Ctrl-C.

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
    /// Where the demo database lives [default: a fresh directory under the system temp dir,
    /// removed on exit].
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
        None => {
            let dir = std::env::temp_dir().join(format!("charter-demo-{}", std::process::id()));
            if dir.exists() {
                // Left behind by an earlier process with the same id.
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing the stale {}", dir.display()))?;
            }
            (dir, true)
        }
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
        print_next_steps(
            &server,
            &running,
            &admin_token,
            &world,
            &data_dir,
            temporary,
        );
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

fn print_next_steps(
    server: &str,
    running: &charter_server::Running,
    admin_token: &str,
    world: &seed::World,
    data_dir: &Path,
    temporary: bool,
) {
    let gateway = running
        .gateway_addr
        .map_or_else(|| "-".to_owned(), |a| format!("http://{a}"));
    let kept = if temporary { " (removed on exit)" } else { "" };
    println!(
        "\
Charter demo is running.

  control plane   {server}
  gateway         {gateway}
  data            {data}{kept}
  seeded          {principals} principals, 2 APIs, 3 partners, {grants} grants (active, pending, revoked,
                  suspended, cross-border), a client credential for Acme, every step
                  recorded in the audit chain

Demo tokens (printed only because this is a throwaway demo; never share real ones):
  admin     {admin_token}
  auditor   {auditor}
  gateway   {gateway_token}

Try next (as the auditor):
  export CHARTER_SERVER={server} CHARTER_TOKEN={auditor}
  charter grant list
  charter grant show {acme}
  charter audit tail -n 15
  charter audit verify
  charter findings
  curl -s -H \"Authorization: Bearer {admin_token}\" {server}/v1/grants
  curl -s {server}/openapi.json | head -c 300

Get a token as Acme's workload (its demo client credential), then introspect it as the gateway:
  export CLIENT_ID={client_id} CLIENT_SECRET={client_secret}
  curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials {server}/oauth/token
  TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials {server}/oauth/token | cut -d'\"' -f4)
  curl -s -H \"Authorization: Bearer {gateway_token}\" -d token=$TOKEN {server}/oauth/introspect

Press Ctrl-C to stop.",
        data = data_dir.display(),
        principals = world.principals,
        grants = world.grants,
        auditor = world.auditor_token,
        gateway_token = world.gateway_token,
        client_id = world.client_id,
        client_secret = world.client_secret,
        acme = world.acme_grant,
    );
}
