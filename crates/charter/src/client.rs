//! A small client for the admin API: joins path segments onto the server URL (escaping
//! ids), sends the bearer token, and turns every failure into a [`ClientError`] whose
//! `Display` is a single line: `<status> <error>: <error_description>` for an HTTP error,
//! `cannot reach …` for a connection failure. It never prints or logs the token. The same
//! client, without a token, talks to the OAuth endpoints (`charter token`).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with a non-success status.
    Http {
        status: u16,
        error: String,
        description: String,
    },
    /// The server could not be reached, or the exchange broke off.
    Transport { server: String, detail: String },
    /// A success reply that is not JSON.
    Decode(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http {
                status,
                error,
                description,
            } => write!(f, "{status} {error}: {description}"),
            Self::Transport { server, detail } => write!(f, "cannot reach {server}: {detail}"),
            Self::Decode(detail) => write!(f, "unreadable reply from the server: {detail}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A reply: its status and its JSON body (`null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

/// An admin-API client bound to one server and one bearer token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Client {
    pub fn new(server: &str, token: String) -> anyhow::Result<Self> {
        let base =
            Url::parse(server).with_context(|| format!("invalid --server URL {server:?}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            anyhow::bail!(
                "invalid --server URL {server:?}: expected http://HOST[:PORT] or https://…"
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            // A bearer token must not follow a redirect anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("charter-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// A client that sends no bearer token: for the unauthenticated OAuth metadata and the
    /// token endpoint, where an admin token has no business.
    pub fn anonymous(server: &str) -> anyhow::Result<Self> {
        Self::new(server, String::new())
    }

    /// The same server, another principal's token.
    pub fn with_token(&self, token: String) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            token,
        }
    }

    /// The server's base URL as given.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `base` + escaped `segments` + `query` (pairs with an empty value are left out).
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ClientError::Transport {
                    server: self.base().to_owned(),
                    detail: "the server URL cannot take a path".into(),
                })?;
            path.pop_if_empty().extend(segments);
        }
        let pairs: Vec<_> = query.iter().filter(|(_, v)| !v.is_empty()).collect();
        if !pairs.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends a request and returns whatever status came back.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let url = self.url(segments, query)?;
        let mut req = self.http.request(method, url);
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.execute(req).await
    }

    /// A request to any URL (an OAuth endpoint the server advertised) with this client's
    /// timeouts and redirect policy, and no bearer token; send it with [`Client::execute`].
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends a request (from [`Client::request`], or the one [`Client::send`] builds) asking
    /// for JSON, and returns whatever status came back.
    pub async fn execute(&self, req: reqwest::RequestBuilder) -> Result<Reply, ClientError> {
        let req = req
            .header(reqwest::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| transport(self.base(), &e))?;
        // Name the server as given for admin calls, the origin for anything else.
        let origin = if req.url().as_str().starts_with(self.base()) {
            self.base().to_owned()
        } else {
            req.url().origin().ascii_serialization()
        };
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| transport(&origin, &e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(&origin, &e))?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if !status.is_success() => Value::String(snippet(&bytes)),
                Err(e) => return Err(ClientError::Decode(e.to_string())),
            }
        };
        Ok(Reply { status, body })
    }

    /// Sends a request; any status other than 2xx is an error.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let reply = self.send(method, segments, query, body).await?;
        if reply.status.is_success() {
            Ok(reply.body)
        } else {
            Err(http_error(reply.status, &reply.body))
        }
    }

    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        self.call(Method::GET, segments, query, None).await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, segments, &[], Some(body)).await
    }

    pub async fn put(&self, segments: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.call(Method::PUT, segments, &[], Some(body)).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.call(Method::PATCH, segments, &[], Some(body)).await
    }
}

fn transport(server: &str, e: &reqwest::Error) -> ClientError {
    let detail = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        innermost(e)
    } else {
        chain(e)
    };
    ClientError::Transport {
        server: server.to_owned(),
        detail,
    }
}

/// The error a non-success reply carries: the server's `{error, error_description}`, or the
/// status text and a snippet of whatever else came back.
pub fn http_error(status: StatusCode, body: &Value) -> ClientError {
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(one_line);
    let error = field("error").unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("http_error")
            .to_lowercase()
            .replace(' ', "_")
    });
    let description = field("error_description")
        .or_else(|| body.as_str().map(one_line))
        .unwrap_or_else(|| "no description".into());
    ClientError::Http {
        status: status.as_u16(),
        error,
        description,
    }
}

fn one_line(s: &str) -> String {
    s.split(char::is_control)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    one_line(&text.chars().take(200).collect::<String>())
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e;
    while let Some(next) = cur.source() {
        parts.push(next.to_string());
        cur = next;
    }
    one_line(&parts.join(": "))
}

/// The bearer token: from `--token-file`, else from `CHARTER_TOKEN`.
pub fn load_token(token_file: Option<&Path>) -> anyhow::Result<String> {
    let token = match token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?
            .trim()
            .to_owned(),
        None => std::env::var("CHARTER_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    };
    if token.is_empty() {
        anyhow::bail!("no token: set CHARTER_TOKEN or pass --token-file FILE");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!("the token contains characters a bearer token cannot hold");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_escape_ids_and_skip_empty_query_values() {
        let c = Client::new("http://127.0.0.1:7600/", "t".into()).unwrap();
        let url = c
            .url(
                &["v1", "grants", "a/b?c"],
                &[("status", "active".into()), ("after", String::new())],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7600/v1/grants/a%2Fb%3Fc?status=active"
        );
        let prefixed = Client::new("https://host/charter", "t".into()).unwrap();
        assert_eq!(
            prefixed.url(&["v1", "apis"], &[]).unwrap().as_str(),
            "https://host/charter/v1/apis"
        );
    }

    #[test]
    fn http_errors_are_one_line() {
        let e = http_error(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "error_description": "no such\ngrant"}),
        );
        assert_eq!(e.to_string(), "404 not_found: no such grant");
        let e = http_error(StatusCode::BAD_GATEWAY, &json!("upstream\r\nfailed"));
        assert_eq!(e.to_string(), "502 bad_gateway: upstream failed");
    }

    #[test]
    fn rejects_non_http_servers() {
        assert!(Client::new("ftp://x", "t".into()).is_err());
        assert!(Client::new("127.0.0.1:7600", "t".into()).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = Client::new("http://127.0.0.1:7600", "secret-token".into()).unwrap();
        assert!(!format!("{c:?}").contains("secret-token"));
    }
}
