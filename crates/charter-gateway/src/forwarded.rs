//! Who is really calling, and what the gateway tells upstreams about it.
//!
//! The client address is the TCP peer, unless that peer is one of the configured trusted
//! proxies: then it is the nearest untrusted address of the `X-Forwarded-For` chain (or of
//! `Forwarded: for=` when there is no `X-Forwarded-For`). Forwarding headers written by anyone
//! else are never believed. The listener resolves it once per request ([`ClientAddr`], a
//! request extension); failure throttles and audit records use it.
//!
//! Upstreams receive `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` and
//! `Forwarded` set from what the gateway saw, extended (never replaced) only when the peer is
//! a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, header};
use ipnet::IpNet;

/// The configured trusted proxies (CIDR blocks or single addresses); empty by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32` …; the first bad entry is the error.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, String> {
        list.iter()
            .map(|s| {
                let s = s.as_ref().trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an address or CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Where a request came from, as the listener resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The real client: the peer, or the address a trusted proxy named.
    pub client: IpAddr,
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy (its forwarding headers are extended, not reset).
    pub peer_trusted: bool,
    /// The listener's own bound address.
    pub local: SocketAddr,
}

impl ClientAddr {
    /// Resolves the client address of a request from `peer` received on `local`.
    pub fn resolve(
        peer: IpAddr,
        local: SocketAddr,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> Self {
        let peer = canonical(peer);
        let peer_trusted = trusted.contains(peer);
        let mut client = peer;
        if peer_trusted {
            let mut chain = forwarded_for_chain(headers);
            // From the nearest hop outwards: the first address no trusted proxy owns is the
            // client; an entry that is not an address stops the walk at the hop that wrote it.
            while let Some(hop) = chain.pop() {
                match hop {
                    Some(ip) if trusted.contains(ip) => client = ip,
                    Some(ip) => {
                        client = ip;
                        break;
                    }
                    None => break,
                }
            }
        }
        Self {
            client,
            peer,
            peer_trusted,
            local,
        }
    }

    /// The address of a request's extensions, else the TCP peer (tests that call a router
    /// without the listener), else the unspecified address.
    pub fn of(extensions: &axum::http::Extensions) -> IpAddr {
        if let Some(c) = extensions.get::<ClientAddr>() {
            return c.client;
        }
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| canonical(c.0.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
}

/// The `X-Forwarded-For` chain (every header, in order), or `Forwarded`'s `for=` values when
/// there is no `X-Forwarded-For`; `None` for an entry that is not an address.
fn forwarded_for_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().ok().unwrap_or("?").split(','))
        .map(|s| parse_node(s.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all(header::FORWARDED)
        .iter()
        .flat_map(|v| v.to_str().ok().unwrap_or("for=?").split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(v.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]:80` → the address.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(canonical)
}

/// Headers that would let a client change the operation behind the gateway's back (method
/// overrides, URL rewrites, the check-mode originals); none reaches an upstream.
pub const OPERATION_OVERRIDES: [&str; 7] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
];

/// Forwarding headers, replaced by [`set_forwarding_headers`].
const FORWARDING: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "forwarded",
];

fn node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// Sets the forwarding headers of an upstream request (`out`) from what the gateway saw of
/// the inbound one: the chain is extended from a trusted proxy and started afresh otherwise.
pub fn set_forwarding_headers(
    out: &mut HeaderMap,
    inbound: &HeaderMap,
    addr: &ClientAddr,
    proto: &str,
) {
    for h in FORWARDING {
        out.remove(h);
    }
    let joined = |name: &str| -> Option<String> {
        let values: Vec<&str> = inbound
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let host = inbound
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    let kept = |name: &str| {
        if addr.peer_trusted {
            joined(name)
        } else {
            None
        }
    };

    let xff = match kept("x-forwarded-for") {
        Some(chain) => format!("{chain}, {}", addr.peer),
        None => addr.peer.to_string(),
    };
    let fwd_host = kept("x-forwarded-host").or_else(|| host.map(str::to_owned));
    let fwd_proto = kept("x-forwarded-proto").unwrap_or_else(|| proto.to_owned());
    let mut element = format!("for={};proto={proto}", node(addr.peer));
    if let Some(h) = host {
        element.push_str(&format!(";host=\"{h}\""));
    }
    let forwarded = match kept("forwarded") {
        Some(chain) => format!("{chain}, {element}"),
        None => element,
    };
    for (name, value) in [
        ("x-forwarded-for", Some(xff)),
        ("x-forwarded-host", fwd_host),
        ("x-forwarded-proto", Some(fwd_proto)),
        ("forwarded", Some(forwarded)),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            out.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn resolve(peer: &str, h: &[(&str, &str)], trusted: &[&str]) -> IpAddr {
        let local: SocketAddr = "127.0.0.1:7601".parse().unwrap();
        ClientAddr::resolve(
            peer.parse().unwrap(),
            local,
            &headers(h),
            &TrustedProxies::parse(trusted).unwrap(),
        )
        .client
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let xff = [("x-forwarded-for", "198.51.100.9")];
        assert_eq!(
            resolve("203.0.113.5", &xff, &[]),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            resolve("10.0.0.2", &xff, &["10.0.0.0/8"]),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        // A client that writes its own chain behind a trusted proxy gets the proxy's view.
        let forged = [("x-forwarded-for", "1.2.3.4, 198.51.100.9")];
        assert_eq!(
            resolve("10.0.0.2", &forged, &["10.0.0.0/8"]),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        let two_proxies = [("x-forwarded-for", "198.51.100.9, 10.0.0.3")];
        assert_eq!(
            resolve("10.0.0.2", &two_proxies, &["10.0.0.0/8"]),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        let garbage = [("x-forwarded-for", "198.51.100.9, not-an-ip")];
        assert_eq!(
            resolve("10.0.0.2", &garbage, &["10.0.0.0/8"]),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        let rfc7239 = [("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
        assert_eq!(
            resolve("10.0.0.2", &rfc7239, &["10.0.0.2"]),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert!(TrustedProxies::parse(&["nonsense"]).is_err());
    }

    #[test]
    fn upstream_forwarding_headers_are_the_gateways_own() {
        let inbound = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("host", "gw.example"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        let addr = ClientAddr {
            client: "203.0.113.5".parse().unwrap(),
            peer: "203.0.113.5".parse().unwrap(),
            peer_trusted: false,
            local: "127.0.0.1:7601".parse().unwrap(),
        };
        let mut out = inbound.clone();
        set_forwarding_headers(&mut out, &inbound, &addr, "http");
        assert_eq!(out["x-forwarded-for"], "203.0.113.5");
        assert_eq!(out["x-forwarded-host"], "gw.example");
        assert_eq!(
            out["forwarded"],
            "for=203.0.113.5;proto=http;host=\"gw.example\""
        );
        let trusted = ClientAddr {
            peer_trusted: true,
            ..addr
        };
        let mut out = inbound.clone();
        set_forwarding_headers(&mut out, &inbound, &trusted, "http");
        assert_eq!(out["x-forwarded-for"], "1.2.3.4, 203.0.113.5");
    }
}
