//! The upstream side of proxy mode: a pooled HTTP/HTTPS client, header hygiene (hop-by-hop
//! headers, the partner's credentials and any inbound `X-Charter-*` removed; identity
//! headers added) and clear 502/504 answers when the upstream fails.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_rustls::rustls;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client for upstream calls (keep-alive; HTTP and HTTPS).
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Body>,
}

impl Upstream {
    pub fn new() -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                // No system trust store: HTTPS upstreams will fail verification, plain HTTP works.
                tracing::warn!(error = %e, "no native root certificates; HTTPS upstreams cannot be verified");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let https = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(https);
        Ok(Self { client })
    }

    /// Sends the request; `Err` carries the status and error code to answer with.
    pub async fn send(
        &self,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Body>, (StatusCode, &'static str)> {
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err((StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream request failed");
                Err((StatusCode::BAD_GATEWAY, "upstream_unavailable"))
            }
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Body::new(body)))
            }
        }
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
}

/// Prepares the inbound headers for the upstream: no hop-by-hop headers, no partner
/// credentials, no inbound `X-Charter-*`, no `Host` (the client sets the upstream's), no
/// method override or URL rewrite header. Forwarding headers are set afterwards from what the
/// gateway saw (`forwarded::set_forwarding_headers`).
pub fn upstream_headers(inbound: &HeaderMap) -> HeaderMap {
    let mut h = inbound.clone();
    strip_hop_by_hop(&mut h);
    h.remove(header::AUTHORIZATION);
    h.remove("dpop");
    h.remove(header::HOST);
    for name in crate::forwarded::OPERATION_OVERRIDES {
        h.remove(name);
    }
    let charter: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("x-charter-"))
        .cloned()
        .collect();
    for k in charter {
        h.remove(k);
    }
    h
}

/// A header value from free text: visible ASCII kept, anything else percent-encoded.
pub fn header_text(s: &str) -> HeaderValue {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The upstream URI: its base, the matched path, the original query.
pub fn upstream_uri(base: &str, path: &str, query: Option<&str>) -> Option<Uri> {
    let base = base.trim_end_matches('/');
    let uri = match query {
        Some(q) => format!("{base}{path}?{q}"),
        None => format!("{base}{path}"),
    };
    uri.parse().ok()
}
