//! Server settings: one TOML file (`--config charter.toml`), overridden by `CHARTER_*`
//! environment variables and command-line flags (the CLI merges them). Defaults are safe:
//! loopback listeners, embedded SQLite, durable commits.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Which listeners a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    #[default]
    All,
    Control,
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DurabilitySetting {
    #[default]
    Process,
    Fsync,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    pub gateway_listen: SocketAddr,
    /// An optional listener serving only `/metrics`, without a token (for a scraper on an
    /// internal interface); on the control plane `/metrics` needs a principal token.
    pub metrics_listen: Option<SocketAddr>,
    pub role: NodeRole,
    /// `sqlite://…` or `postgres://…`; default: SQLite in `data_dir`.
    pub database: Option<String>,
    pub data_dir: PathBuf,
    /// Base URL of this deployment; default `http://<listen>`.
    pub issuer: Option<String>,
    /// The environment this node's gateway enforces.
    pub environment: String,
    pub durability: DurabilitySetting,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Allow plaintext on a non-loopback address.
    pub insecure_http: bool,
    /// Lifetime of principal tokens in days.
    pub principal_token_days: i64,
    /// Where signed audit checkpoints are appended; default `<data_dir>/checkpoints.jsonl`.
    pub checkpoint_file: Option<PathBuf>,
    /// How often the chain head is checkpointed (when it moved), in seconds.
    pub checkpoint_interval_seconds: u64,
    /// CIDR blocks (or addresses) API upstreams must lie in; empty: anywhere not refused.
    pub upstream_allow: Vec<String>,
    /// CIDR blocks (or addresses) API upstreams must not lie in.
    pub upstream_deny: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7600)),
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 7601)),
            metrics_listen: None,
            role: NodeRole::All,
            database: None,
            data_dir: PathBuf::from("charter-data"),
            issuer: None,
            environment: "production".into(),
            durability: DurabilitySetting::Process,
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            principal_token_days: 90,
            checkpoint_file: None,
            checkpoint_interval_seconds: crate::checkpoints::DEFAULT_INTERVAL.as_secs(),
            upstream_allow: Vec::new(),
            upstream_deny: Vec::new(),
        }
    }
}

impl Config {
    /// `upstream_allow` and `upstream_deny` as networks; a bare address is its own /32 or
    /// /128. A bad entry is an error naming it.
    pub fn upstream_networks(&self) -> anyhow::Result<(Vec<ipnet::IpNet>, Vec<ipnet::IpNet>)> {
        let parse = |key: &str, items: &[String]| -> anyhow::Result<Vec<ipnet::IpNet>> {
            items
                .iter()
                .map(|s| {
                    s.parse::<ipnet::IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            anyhow::anyhow!("{key}: {s:?} is not a CIDR block or an address")
                        })
                })
                .collect()
        };
        Ok((
            parse("upstream_allow", &self.upstream_allow)?,
            parse("upstream_deny", &self.upstream_deny)?,
        ))
    }

    /// The checkpoint sink: `checkpoint_file`, else `<data_dir>/checkpoints.jsonl`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::checkpoints::DEFAULT_FILE))
    }

    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("charter.db").display()),
        }
    }

    /// The issuer URL: `--issuer`, else `http(s)://<listen address>`; no trailing slash.
    pub fn issuer_url(&self) -> String {
        match &self.issuer {
            Some(i) => i.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    /// Refuses plaintext on a non-loopback address unless `insecure_http` is set, and a
    /// certificate without its key (or the reverse).
    pub fn check_transport(&self) -> anyhow::Result<()> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), Some(_)) => return Ok(()),
            (None, None) => {}
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        }
        for addr in [self.listen, self.gateway_listen]
            .into_iter()
            .chain(self.metrics_listen)
        {
            if !addr.ip().is_loopback() && !self.insecure_http {
                anyhow::bail!(
                    "refusing to listen in plaintext on non-loopback address {addr}: give --tls-cert and --tls-key, or --insecure-http"
                );
            }
        }
        Ok(())
    }
}
