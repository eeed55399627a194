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
    /// Peers (CIDR blocks or addresses) whose `X-Forwarded-For` / `Forwarded` name the real
    /// client; default none: every peer is the client.
    pub trusted_proxies: Vec<String>,
    /// The URL partners call the gateway at (DPoP `htu`); default `http(s)://<bound address>`.
    pub gateway_public_url: Option<String>,
    /// Both listeners: seconds to receive a request head (also the wait for the next request
    /// on a kept-alive HTTP/1 connection).
    pub header_read_timeout_seconds: u64,
    /// Both listeners: seconds a connection may sit with nothing moving and nothing in flight.
    pub idle_timeout_seconds: u64,
    /// Both listeners: seconds to receive a whole request body.
    pub body_read_timeout_seconds: u64,
    /// Both listeners: open connections per client address (trusted proxies exempt).
    pub max_connections_per_address: usize,
    /// Gateway calls without a valid token per client address per minute; past it, 429.
    pub gateway_anonymous_per_minute: u32,
    /// Where else every signed checkpoint goes, outside the data directory (`[checkpoints]`).
    pub checkpoints: CheckpointSinks,
    /// The base URL other nodes reach this control plane at (registered for offboarding
    /// probes); default: `http(s)://<bound --listen address>`, refused for a wildcard.
    pub advertise_url: Option<String>,
    /// The base URL other nodes reach this gateway at; default: `http(s)://<bound
    /// --gateway-listen address>`, refused for a wildcard.
    pub gateway_advertise_url: Option<String>,
    pub offboarding: OffboardingConfig,
}

/// `[offboarding]` in the settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffboardingConfig {
    /// An offboarding with no live gateway to probe is `incomplete` unless this is `false`
    /// (a deployment that declares it runs no gateway).
    pub require_gateway: bool,
}

impl Default for OffboardingConfig {
    fn default() -> Self {
        Self {
            require_gateway: true,
        }
    }
}

/// The checkpoint sinks outside the data directory (`docs/checkpoints.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSinks {
    /// Another file each checkpoint line is appended to (e.g. on a mount the database's
    /// administrators cannot write).
    pub sink_file: Option<PathBuf>,
    /// An HTTP(S) witness that receives each checkpoint line by POST.
    pub witness_url: Option<String>,
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
            checkpoints: CheckpointSinks::default(),
            trusted_proxies: Vec::new(),
            gateway_public_url: None,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            body_read_timeout_seconds: 30,
            max_connections_per_address: 256,
            gateway_anonymous_per_minute: charter_gateway::ANONYMOUS_PER_MINUTE,
            upstream_allow: Vec::new(),
            upstream_deny: Vec::new(),
            advertise_url: None,
            gateway_advertise_url: None,
            offboarding: OffboardingConfig::default(),
        }
    }
}

impl Config {
    /// The listener bounds these settings give (trusted proxies parsed; a bad entry is an
    /// error naming it).
    pub fn serve_options(&self) -> anyhow::Result<crate::listen::ServeOptions> {
        let trusted = charter_gateway::forwarded::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        let secs = |n: u64| std::time::Duration::from_secs(n.max(1));
        Ok(crate::listen::ServeOptions {
            header_read_timeout: secs(self.header_read_timeout_seconds),
            idle_timeout: secs(self.idle_timeout_seconds),
            body_read_timeout: secs(self.body_read_timeout_seconds),
            max_connections_per_address: self.max_connections_per_address.max(1),
            trusted_proxies: std::sync::Arc::new(trusted),
            ..Default::default()
        })
    }

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

    /// The URL a listener bound at `bound` is advertised under: `advertised` (validated: an
    /// absolute http(s) URL naming a specific host), else `scheme://bound` — refused when
    /// `bound` is a wildcard address, which no other node could reach. `flag` names the
    /// setting in the message.
    pub fn advertised_url(
        &self,
        advertised: Option<&str>,
        bound: SocketAddr,
        flag: &str,
    ) -> anyhow::Result<String> {
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        match advertised {
            Some(url) => check_advertised(url, flag),
            None if bound.ip().is_unspecified() => anyhow::bail!(
                "{bound} is a wildcard address: other nodes cannot probe it; give {flag} with the URL this node is reached at"
            ),
            None => Ok(format!("{scheme}://{bound}")),
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

/// An advertised URL: absolute, `http` or `https`, a host that is not a wildcard address, no
/// query or fragment; returned without a trailing slash.
fn check_advertised(url: &str, flag: &str) -> anyhow::Result<String> {
    let parsed: axum::http::Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("{flag} {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        anyhow::bail!("{flag} {url:?} must be an absolute http or https URL");
    }
    let Some(authority) = parsed.authority() else {
        anyhow::bail!("{flag} {url:?} names no host");
    };
    let wildcard = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if wildcard {
        anyhow::bail!("{flag} {url:?} is a wildcard address, which no other node can reach");
    }
    if authority.as_str().contains('@') || parsed.query().is_some() || url.contains('#') {
        anyhow::bail!("{flag} {url:?} must not carry credentials, a query or a fragment");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_bind_address_is_never_advertised() {
        let config = Config::default();
        for bound in ["0.0.0.0:7601", "[::]:7601"] {
            let err = config
                .advertised_url(None, bound.parse().unwrap(), "--gateway-advertise-url")
                .unwrap_err()
                .to_string();
            assert!(err.contains("--gateway-advertise-url"), "{err}");
        }
        for url in [
            "http://0.0.0.0:7601",
            "http://[::]:7601",
            "ftp://gw.internal",
            "gw.internal:7601",
            "http://u:p@gw.internal",
        ] {
            assert!(
                config
                    .advertised_url(Some(url), "127.0.0.1:1".parse().unwrap(), "--advertise-url")
                    .is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn specific_addresses_and_advertised_urls_are_used_as_they_are() {
        let config = Config::default();
        let bound = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(
            config
                .advertised_url(None, bound, "--advertise-url")
                .unwrap(),
            "http://127.0.0.1:40123"
        );
        assert_eq!(
            config
                .advertised_url(
                    Some("https://gw-3.internal:8443/"),
                    "0.0.0.0:8443".parse().unwrap(),
                    "--gateway-advertise-url"
                )
                .unwrap(),
            "https://gw-3.internal:8443"
        );
    }
}
