//! `charter serve`: merges the settings (flag or `CHARTER_*` variable, then the TOML file,
//! then defaults), starts the node with the system clock, says on stderr where it listens
//! and where the bootstrap admin token is (never the token itself), and runs until SIGINT
//! or SIGTERM.
//!
//! The start-up lines `charter: control plane listening on <URL>` and `charter: gateway
//! listening on <URL>` are stable (scripts and tests read them): the URL carries the bound
//! address, so with `--listen 127.0.0.1:0` it names the port actually taken.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use charter_server::{Bootstrap, Config, DurabilitySetting, NodeRole, Running};
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Control plane and gateway in one process.
    All,
    /// Admin API only.
    Control,
    /// Gateway only.
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Survives a killed process (default).
    Process,
    /// Survives power loss: every group commit waits for the disk.
    Fsync,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML settings file (same keys as these flags, with underscores).
    #[arg(long, env = "CHARTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Control-plane address [default: 127.0.0.1:7600].
    #[arg(long, env = "CHARTER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Gateway address [default: 127.0.0.1:7601].
    #[arg(long, env = "CHARTER_GATEWAY_LISTEN", value_name = "ADDR")]
    pub gateway_listen: Option<SocketAddr>,
    /// A listener serving only /metrics, without a token (on the control plane /metrics
    /// needs a principal token) [default: none].
    #[arg(long, env = "CHARTER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Which listeners this node runs [default: all].
    #[arg(long, env = "CHARTER_ROLE", value_enum)]
    pub role: Option<RoleArg>,
    /// sqlite://… or postgres://… [default: SQLite in the data directory].
    #[arg(
        long,
        env = "CHARTER_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Where the embedded database and the bootstrap token live [default: ./charter-data].
    #[arg(long, env = "CHARTER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Base URL of this deployment [default: http://<listen>].
    #[arg(long, env = "CHARTER_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// The environment this node's gateway enforces [default: production].
    #[arg(long, env = "CHARTER_ENVIRONMENT", value_name = "ENV")]
    pub environment: Option<String>,
    /// Audit durability [default: process].
    #[arg(long, env = "CHARTER_DURABILITY", value_enum)]
    pub durability: Option<DurabilityArg>,
    /// TLS certificate chain (PEM), for both listeners.
    #[arg(
        long,
        env = "CHARTER_TLS_CERT",
        value_name = "FILE",
        conflicts_with = "insecure_http"
    )]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(
        long,
        env = "CHARTER_TLS_KEY",
        value_name = "FILE",
        conflicts_with = "insecure_http"
    )]
    pub tls_key: Option<PathBuf>,
    /// Allow plaintext HTTP on a non-loopback address.
    #[arg(long, env = "CHARTER_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Another file every signed audit checkpoint is appended to, outside the data
    /// directory (`[checkpoints] sink_file`).
    #[arg(long, env = "CHARTER_CHECKPOINT_SINK_FILE", value_name = "FILE")]
    pub checkpoint_sink_file: Option<PathBuf>,
    /// An HTTP(S) witness that receives every signed audit checkpoint line by POST
    /// (`[checkpoints] witness_url`).
    #[arg(long, env = "CHARTER_CHECKPOINT_WITNESS_URL", value_name = "URL")]
    pub checkpoint_witness_url: Option<String>,
    /// Proxies (CIDR blocks or addresses, comma-separated) whose X-Forwarded-For / Forwarded
    /// name the real client [default: none].
    #[arg(
        long,
        env = "CHARTER_TRUSTED_PROXIES",
        value_name = "CIDR,…",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// The URL partners call the gateway at, for DPoP proofs [default: http(s)://<gateway
    /// listen address>].
    #[arg(long, env = "CHARTER_GATEWAY_PUBLIC_URL", value_name = "URL")]
    pub gateway_public_url: Option<String>,
    /// The URL other nodes reach this control plane at, registered so that offboarding
    /// probes its token endpoint and introspection [default: http(s)://<bound --listen>;
    /// required when --listen is a wildcard address such as 0.0.0.0].
    #[arg(long, env = "CHARTER_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// The URL other nodes reach this gateway at, registered so that offboarding probes its
    /// check endpoint [default: http(s)://<bound --gateway-listen>; required when
    /// --gateway-listen is a wildcard address].
    #[arg(long, env = "CHARTER_GATEWAY_ADVERTISE_URL", value_name = "URL")]
    pub gateway_advertise_url: Option<String>,
    /// Whether an offboarding with no live gateway to probe is `incomplete` [default: true];
    /// `false` declares that this deployment runs no gateway.
    #[arg(long, env = "CHARTER_OFFBOARDING_REQUIRE_GATEWAY", value_name = "BOOL")]
    pub offboarding_require_gateway: Option<bool>,
}

/// Defaults, overridden by the TOML file, overridden by flags and variables.
pub fn build_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<Config>(&text)
                .map_err(|e| crate::commands::api::toml_error(path, &text, &e))?
        }
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.gateway_listen {
        config.gateway_listen = v;
    }
    if let Some(v) = args.metrics_listen {
        config.metrics_listen = Some(v);
    }
    if let Some(v) = args.role {
        config.role = match v {
            RoleArg::All => NodeRole::All,
            RoleArg::Control => NodeRole::Control,
            RoleArg::Gateway => NodeRole::Gateway,
        };
    }
    if let Some(v) = &args.database {
        config.database = Some(v.clone());
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &args.issuer {
        config.issuer = Some(v.clone());
    }
    if let Some(v) = &args.environment {
        config.environment = v.clone();
    }
    if let Some(v) = args.durability {
        config.durability = match v {
            DurabilityArg::Process => DurabilitySetting::Process,
            DurabilityArg::Fsync => DurabilitySetting::Fsync,
        };
    }
    if let Some(v) = &args.tls_cert {
        config.tls_cert = Some(v.clone());
    }
    if let Some(v) = &args.tls_key {
        config.tls_key = Some(v.clone());
    }
    if args.insecure_http {
        config.insecure_http = true;
    }
    if let Some(v) = &args.checkpoint_sink_file {
        config.checkpoints.sink_file = Some(v.clone());
    }
    if let Some(v) = &args.checkpoint_witness_url {
        config.checkpoints.witness_url = Some(v.clone());
    }
    if let Some(v) = &args.trusted_proxies {
        config.trusted_proxies = v.clone();
    }
    if let Some(v) = &args.gateway_public_url {
        config.gateway_public_url = Some(v.clone());
    }
    if let Some(v) = &args.advertise_url {
        config.advertise_url = Some(v.clone());
    }
    if let Some(v) = &args.gateway_advertise_url {
        config.gateway_advertise_url = Some(v.clone());
    }
    if let Some(v) = args.offboarding_require_gateway {
        config.offboarding.require_gateway = v;
    }
    Ok(config)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = build_config(&args)?;
    let shutdown = shutdown_signal()?;
    let env_token = std::env::var("CHARTER_ADMIN_TOKEN").ok();
    let running = charter_server::start(
        &config,
        Arc::new(charter_server::clock::SystemClock),
        env_token.as_deref(),
        shutdown,
    )
    .await?;
    announce(&config, &running);
    running.wait().await;
    eprintln!("charter: stopped");
    Ok(())
}

/// Where the node listens (the bound addresses, in the stable lines described above), which
/// database it uses, and where the bootstrap token is.
pub fn announce(config: &Config, running: &Running) {
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    if let Some(addr) = running.control_addr {
        eprintln!("charter: control plane listening on {scheme}://{addr}");
    }
    if let Some(addr) = running.gateway_addr {
        eprintln!("charter: gateway listening on {scheme}://{addr}");
    }
    eprintln!(
        "charter: database: {} ({})",
        running.state.repo.store.backend(),
        redacted_database(config)
    );
    match &running.bootstrap {
        Bootstrap::Written(path) => eprintln!(
            "charter: admin token written to {} (mode 0600); rotate it after first use",
            path.display()
        ),
        Bootstrap::FromEnvironment => {
            eprintln!("charter: admin token taken from CHARTER_ADMIN_TOKEN")
        }
        Bootstrap::NotNeeded => {}
    }
}

/// The database URL without any password in it.
fn redacted_database(config: &Config) -> String {
    let url = config.database_url();
    match reqwest::Url::parse(&url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url,
        Err(_) => "unparseable URL".into(),
    }
}

/// Resolves on the first SIGINT or SIGTERM. The handlers are installed now, so a signal
/// that arrives during start-up is not lost.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        let mut all = vec!["serve"];
        all.extend_from_slice(argv);
        Wrap::try_parse_from(all).unwrap().args
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("charter.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nenvironment = \"staging\"\ndurability = \"fsync\"\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let config =
            build_config(&args(&["--config", file, "--listen", "127.0.0.1:9100"])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(config.environment, "staging");
        assert_eq!(config.durability, DurabilitySetting::Fsync);
        assert_eq!(config.gateway_listen, Config::default().gateway_listen);
    }

    #[test]
    fn advertise_urls_and_the_offboarding_policy_come_from_the_file_or_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("charter.toml");
        std::fs::write(
            &file,
            "advertise_url = \"http://cp-1.internal:7600\"\n[offboarding]\nrequire_gateway = false\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let config = build_config(&args(&["--config", file])).unwrap();
        assert_eq!(
            config.advertise_url.as_deref(),
            Some("http://cp-1.internal:7600")
        );
        assert!(!config.offboarding.require_gateway);
        let config = build_config(&args(&[
            "--config",
            file,
            "--gateway-advertise-url",
            "http://gw-1.internal:7601",
            "--offboarding-require-gateway",
            "true",
        ]))
        .unwrap();
        assert_eq!(
            config.gateway_advertise_url.as_deref(),
            Some("http://gw-1.internal:7601")
        );
        assert!(config.offboarding.require_gateway);
        assert!(
            Config::default().offboarding.require_gateway,
            "safe default"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("charter.toml");
        std::fs::write(&file, "role = \"all\"\nlisten_addr = \"x\"\n").unwrap();
        let err = build_config(&args(&["--config", file.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("listen_addr"),
            "{err}"
        );
    }

    #[test]
    fn tls_and_insecure_http_exclude_each_other() {
        let mut all = vec!["serve", "--tls-cert", "c.pem", "--insecure-http"];
        assert!(Wrap::try_parse_from(&all).is_err());
        all.truncate(3);
        assert!(Wrap::try_parse_from(&all).is_ok());
    }

    #[test]
    fn database_passwords_are_redacted() {
        let config = Config {
            database: Some("postgres://charter:s3cret@db.internal/charter".into()),
            ..Config::default()
        };
        let shown = redacted_database(&config);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
