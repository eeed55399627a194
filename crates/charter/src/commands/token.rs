//! `charter token`: gets an access token with a `client_secret` credential, the way a
//! partner workload would, so an operator can check that the credential works. The token
//! endpoint comes from the server's RFC 8414 metadata; the client authenticates with HTTP
//! Basic, its id and secret form-urlencoded first as RFC 6749 §2.3.1 asks. The secret is
//! read from an environment variable, never from the command line, where `ps` and the shell
//! history would show it. No admin token is needed, and none is sent.

use std::ffi::OsString;
use std::fmt::Write;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use reqwest::{Method, RequestBuilder, Url};
use serde_json::Value;

use super::emit;
use crate::GlobalArgs;
use crate::client::{Client, http_error};
use crate::table::print_detail;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The credential's client id (chc_…).
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// The environment variable that holds the client secret.
    #[arg(long, value_name = "VAR", default_value = "CHARTER_CLIENT_SECRET")]
    client_secret_env: String,
    /// Ask for these scopes only (repeat, or separate with commas or spaces) [default: all
    /// the grant's scopes].
    #[arg(long = "scope", value_name = "S", value_delimiter = ',')]
    scopes: Vec<String>,
    /// The API the token is for, by its audience (RFC 8707) [default: the grant's API].
    #[arg(long, value_name = "URI")]
    resource: Option<String>,
}

const ORDER: &[&str] = &["access_token", "token_type", "expires_in", "scope"];

/// Where the server publishes its OAuth metadata (RFC 8414).
const METADATA: &[&str] = &[".well-known", "oauth-authorization-server"];

pub async fn run(global: &GlobalArgs, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let secret = client_secret(
        &args.client_secret_env,
        std::env::var_os(&args.client_secret_env),
    )?;
    let client = Client::anonymous(&global.server)?;
    let metadata = client
        .get(METADATA, &[])
        .await
        .context("discovering the token endpoint")?;
    let advertised = metadata
        .get("token_endpoint")
        .and_then(Value::as_str)
        .context("the server's OAuth metadata names no token_endpoint")?;
    let endpoint = token_endpoint(advertised, &global.server)?;
    let request = client_secret_basic(
        client.request(Method::POST, endpoint),
        &args.client_id,
        &secret,
    )
    .header(
        reqwest::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    )
    .body(token_form(&args.scopes, args.resource.as_deref()));
    let reply = client.execute(request).await?;
    if !reply.status.is_success() {
        return Err(http_error(reply.status, &reply.body).into());
    }
    emit(global, &reply.body, |r| print_detail(r, ORDER, &[]))?;
    Ok(ExitCode::SUCCESS)
}

/// The secret held by the environment variable `var` (its `value`), trimmed.
fn client_secret(var: &str, value: Option<OsString>) -> anyhow::Result<String> {
    let Some(value) = value else {
        anyhow::bail!(
            "no client secret: set {var} (the secret is read from the environment, never from the command line)"
        );
    };
    let value = value
        .into_string()
        .map_err(|_| anyhow::anyhow!("{var} is not valid UTF-8"))?;
    let secret = value.trim();
    if secret.is_empty() {
        anyhow::bail!("no client secret: {var} is empty");
    }
    Ok(secret.to_owned())
}

/// The advertised token endpoint, if the secret may go there: over https, or over plain
/// http only to this machine or to the very server `--server` names.
fn token_endpoint(advertised: &str, server: &str) -> anyhow::Result<Url> {
    let url = Url::parse(advertised).map_err(|e| {
        anyhow::anyhow!("the server advertises an invalid token_endpoint {advertised:?}: {e}")
    })?;
    let same_server = Url::parse(server).is_ok_and(|s| s.origin() == url.origin());
    let allowed = match url.scheme() {
        "https" => true,
        "http" => same_server || is_loopback(&url),
        _ => false,
    };
    if !allowed {
        anyhow::bail!(
            "refusing to send the client secret to {}: the advertised token endpoint is neither https nor on this machine or the --server",
            url.origin().ascii_serialization()
        );
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// HTTP Basic client authentication (RFC 6749 §2.3.1): the client id and the secret are
/// each form-urlencoded, then joined with `:` and base64-encoded. The header is marked
/// sensitive, so it never shows in debug output.
fn client_secret_basic(req: RequestBuilder, client_id: &str, secret: &str) -> RequestBuilder {
    req.basic_auth(form_urlencode(client_id), Some(form_urlencode(secret)))
}

/// The token request: `client_credentials`, with the scopes (space-separated) and the
/// resource if given.
fn token_form(scopes: &[String], resource: Option<&str>) -> String {
    let mut pairs = vec![("grant_type", "client_credentials".to_owned())];
    let scope = scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ");
    if !scope.is_empty() {
        pairs.push(("scope", scope));
    }
    if let Some(resource) = resource {
        pairs.push(("resource", resource.to_owned()));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", form_urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 appendix B): ASCII
/// letters, digits and `*-._` stay, a space becomes `+`, every other byte becomes `%XX`.
fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::AUTHORIZATION;

    fn basic_header(client_id: &str, secret: &str) -> (String, bool) {
        let client = Client::anonymous("http://127.0.0.1:7600").unwrap();
        let url = Url::parse("http://127.0.0.1:7600/oauth/token").unwrap();
        let req = client_secret_basic(client.request(Method::POST, url), client_id, secret)
            .build()
            .unwrap();
        let value = &req.headers()[AUTHORIZATION];
        (value.to_str().unwrap().to_owned(), value.is_sensitive())
    }

    #[test]
    fn basic_auth_form_urlencodes_id_and_secret_before_base64() {
        // base64("chc_1:a+b%3Ac%2F%2B%25%C3%A9%7E")
        let (header, sensitive) = basic_header("chc_1", "a b:c/+%é~");
        assert_eq!(header, "Basic Y2hjXzE6YStiJTNBYyUyRiUyQiUyNSVDMyVBOSU3RQ==");
        assert!(sensitive);
        // Charter's own ids and secrets (base64url) pass through unchanged.
        // base64("chc_0f:chs_Ab-_9")
        let (header, _) = basic_header("chc_0f", "chs_Ab-_9");
        assert_eq!(header, "Basic Y2hjXzBmOmNoc19BYi1fOQ==");
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_urlencode("AZaz09*-._"), "AZaz09*-._");
        assert_eq!(form_urlencode("a b&c=d"), "a+b%26c%3Dd");
        assert_eq!(form_urlencode("é"), "%C3%A9");
        assert_eq!(
            token_form(&[], None),
            "grant_type=client_credentials",
            "no scope and no resource unless asked"
        );
        assert_eq!(
            token_form(
                &["orders:read orders:write".into(), "x".into()],
                Some("https://api.example.com/orders")
            ),
            "grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite+x\
             &resource=https%3A%2F%2Fapi.example.com%2Forders"
        );
    }

    #[test]
    fn the_secret_comes_from_the_environment() {
        let v = |s: &str| Some(OsString::from(s));
        assert_eq!(
            client_secret("CHARTER_CLIENT_SECRET", v(" chs_x\n")).unwrap(),
            "chs_x"
        );
        let e = client_secret("MY_SECRET", None).unwrap_err().to_string();
        assert!(e.contains("set MY_SECRET"), "{e}");
        assert!(client_secret("MY_SECRET", v("  ")).is_err());
    }

    #[test]
    fn the_secret_goes_only_to_safe_token_endpoints() {
        let server = "http://127.0.0.1:7600";
        for ok in [
            "http://127.0.0.1:7600/oauth/token",
            "http://localhost:9000/oauth/token",
            "http://[::1]:7600/oauth/token",
            "https://auth.example.com/oauth/token",
        ] {
            assert!(token_endpoint(ok, server).is_ok(), "{ok}");
        }
        assert!(token_endpoint("http://10.0.0.5:7600/oauth/token", "http://10.0.0.5:7600").is_ok());
        for bad in [
            "http://auth.example.com/oauth/token",
            "ftp://127.0.0.1/token",
            "/oauth/token",
        ] {
            assert!(token_endpoint(bad, server).is_err(), "{bad}");
        }
    }
}
