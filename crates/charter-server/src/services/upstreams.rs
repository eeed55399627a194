//! Where an API's upstream may point, checked when it is published or republished.
//!
//! Refused whatever the deployment says: userinfo (`user:secret@host`, refused by
//! `UpstreamUrl` itself, never stored nor echoed), link-local addresses (`169.254.0.0/16`,
//! `fe80::/10`), cloud metadata endpoints (`fd00:ec2::254`, `100.100.100.200`, the metadata
//! host names), unspecified, broadcast and multicast addresses, and Charter's own listeners.
//! A deployment may narrow the rest with `upstream_allow` / `upstream_deny` (CIDR lists);
//! loopback and private ranges stay allowed by default, since internal APIs live there.
//!
//! Every spelling of an address is judged by the address it means: the URL is parsed as a
//! browser and the gateway's client would (decimal `2852039166`, hex `0xa9.0xfe.0xa9.0xfe`,
//! octal, trailing dots), IPv4-mapped and NAT64 IPv6 addresses are judged as the IPv4 address
//! they carry, and a literal IPv4 host must be written in dotted decimal. Host names are
//! resolved here, and refused if any address they resolve to is refused or if they do not
//! resolve. The gateway does not resolve again against this policy when it connects, so a name
//! whose DNS answer changes after publishing (DNS rebinding) is outside what this check sees;
//! a deployment that publishes names it does not control should narrow `upstream_allow`
//! at the network layer too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use charter_core::UpstreamUrl;
use url::{Host, Url};

use crate::error::{ApiError, ApiResult};
use crate::settings::{Settings, UpstreamPolicy};

/// Host names of cloud metadata services (compared without a trailing dot, lowercase).
const METADATA_NAMES: [&str; 6] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
];

/// Refuses an upstream the policy does not allow, with a reason naming the address (never
/// the URL as written: it may be long or carry what it should not).
pub async fn check(settings: &Settings, upstream: &UpstreamUrl) -> ApiResult<()> {
    let url = Url::parse(upstream.as_str())
        .map_err(|e| refuse(format!("it does not parse as a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("its scheme is not http or https".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it carries userinfo (user:password@)".into()));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refuse("it has no port".into()))?;
    let policy = &settings.upstreams;
    match url.host() {
        Some(Host::Ipv4(ip)) => {
            if literal_host(upstream.as_str()).is_none_or(|h| h != ip.to_string()) {
                return Err(refuse(format!(
                    "its host means {ip} but is not written in dotted decimal; write {ip}"
                )));
            }
            check_address(policy, settings, IpAddr::V4(ip), port)
        }
        Some(Host::Ipv6(ip)) => check_address(policy, settings, IpAddr::V6(ip), port),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if METADATA_NAMES.contains(&name.as_str()) {
                return Err(refuse(format!("{name} is a cloud metadata service")));
            }
            if own_issuer(settings).is_some_and(|(h, p)| h == name && p == port) {
                return Err(refuse(format!("{name}:{port} is this Charter deployment")));
            }
            let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|_| refuse(format!("{name} does not resolve")))?
                .collect();
            if addrs.is_empty() {
                return Err(refuse(format!("{name} does not resolve")));
            }
            for a in addrs {
                check_address(policy, settings, a.ip(), port)
                    .map_err(|e| ApiError::Invalid(format!("{e} ({name} resolves to it)")))?;
            }
            Ok(())
        }
        None => Err(refuse("it has no host".into())),
    }
}

fn refuse(why: String) -> ApiError {
    ApiError::Invalid(format!("upstream refused: {why}"))
}

/// The host of `http(s)://host[:port]/…` exactly as written, lowercase, without brackets
/// or a trailing dot.
fn literal_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// The issuer's host (lowercase) and port: a name under which this deployment answers.
fn own_issuer(settings: &Settings) -> Option<(String, u16)> {
    let url = Url::parse(&settings.issuer).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    Some((host, url.port_or_known_default()?))
}

/// The IPv4 address an IPv6 address carries (IPv4-mapped `::ffff:a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`), if any.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// Why `ip` is never an upstream, whatever the deployment allows.
fn always_refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_link_local() {
                Some("a link-local address (cloud metadata lives there)")
            } else if v4 == Ipv4Addr::new(100, 100, 100, 200) {
                Some("a cloud metadata address")
            } else if o[0] == 0 {
                Some("an unspecified (this-host) address")
            } else if v4.is_broadcast() || v4.is_multicast() {
                Some("a broadcast or multicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return always_refused(IpAddr::V4(v4));
            }
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("a cloud metadata address")
            } else if v6.is_unspecified() {
                Some("an unspecified (this-host) address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

/// Whether `ip:port` reaches one of this node's listeners: the same address, or any local
/// address when the listener is bound to the unspecified address or to loopback.
fn is_own_listener(policy: &UpstreamPolicy, settings: &Settings, ip: IpAddr, port: u16) -> bool {
    let local = |a: IpAddr| a.is_loopback() || a.is_unspecified();
    let same = |own: IpAddr| own == ip || ((local(own)) && local(ip));
    let issuer_ip = own_issuer(settings).and_then(|(h, p)| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|a| (a, p))
    });
    policy
        .own_listeners
        .iter()
        .map(|a| (a.ip(), a.port()))
        .chain(issuer_ip)
        .any(|(own, p)| p == port && same(own))
}

fn check_address(
    policy: &UpstreamPolicy,
    settings: &Settings,
    ip: IpAddr,
    port: u16,
) -> ApiResult<()> {
    let judged = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if let Some(why) = always_refused(ip) {
        return Err(refuse(format!("{judged} is {why}")));
    }
    if is_own_listener(policy, settings, judged, port) {
        return Err(refuse(format!(
            "{judged}:{port} is one of Charter's own listeners"
        )));
    }
    if policy.deny.iter().any(|n| n.contains(&judged)) {
        return Err(refuse(format!("{judged} is in upstream_deny")));
    }
    if !policy.allow.is_empty() && !policy.allow.iter().any(|n| n.contains(&judged)) {
        return Err(refuse(format!("{judged} is outside upstream_allow")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn embedded_addresses_are_judged_as_ipv4() {
        assert!(always_refused(v6("::ffff:169.254.169.254")).is_some());
        assert!(always_refused(v6("64:ff9b::a9fe:a9fe")).is_some());
        assert!(always_refused(v6("fe80::1")).is_some());
        assert!(always_refused(v6("fd00:ec2::254")).is_some());
        assert!(always_refused(v6("::ffff:10.0.0.1")).is_none());
        assert!(always_refused(v6("::1")).is_none());
        assert!(always_refused("10.1.2.3".parse().unwrap()).is_none());
        assert!(always_refused("127.0.0.1".parse().unwrap()).is_none());
    }

    #[test]
    fn literal_hosts_are_read_as_written() {
        assert_eq!(
            literal_host("http://0xa9.0xfe.0xa9.0xfe/x").as_deref(),
            Some("0xa9.0xfe.0xa9.0xfe")
        );
        assert_eq!(
            literal_host("http://10.0.0.1:8080/x").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            literal_host("http://169.254.169.254./").as_deref(),
            Some("169.254.169.254")
        );
        assert_eq!(literal_host("http://[::1]:80").as_deref(), Some("::1"));
    }
}
