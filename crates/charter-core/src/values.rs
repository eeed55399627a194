//! Value types parsed at the edge. Each has a fallible constructor and deserialises through
//! it, so nothing downstream re-checks strings.
//!
//! Serde here is the stored document format (and audit `after`), not the API; the API's types
//! are in charter-server's `wire` module.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(DomainError::invalid(format!(concat!("invalid ", $what, ": {:?}"), truncate(s))))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, DomainError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

/// Echo at most 64 characters of rejected input back in an error.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Bidirectional embedding, override and isolate controls: they make a name display in
/// another order than it is stored (an approver would read another name than the record's).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn is_name(s: &str) -> bool {
    let n = s.chars().count();
    (1..=256).contains(&n)
        && !s.chars().any(|c| c.is_control() || is_bidi_control(c))
        && s.trim() == s
}

/// RFC 6749 scope-token characters.
fn is_scope(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn is_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

string_value!(/// A display name or free-text label: 1–256 characters, no control characters, no
    /// surrounding whitespace.
    Name, is_name, "name (1-256 characters, no control or bidirectional control characters)");
string_value!(/// An OAuth scope name such as `orders:read`.
    Scope, is_scope, "scope");
string_value!(/// A data-residency or processing region such as `eu` or `us-east`.
    Region, is_slug, "region (lowercase letters, digits, '-' or '_')");
string_value!(/// A deployment environment such as `production`.
    Environment, is_slug, "environment (lowercase letters, digits, '-' or '_')");

/// Data classification, ordered from least to most sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    Public,
    Internal,
    Confidential,
    Restricted,
}

wire_names!(DataClass, "data class", {
    Public => "public",
    Internal => "internal",
    Confidential => "confidential",
    Restricted => "restricted",
});

/// What a principal may do on the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    ApiOwner,
    Steward,
    Approver,
    Auditor,
    Gateway,
}

wire_names!(Role, "role", {
    Admin => "admin",
    ApiOwner => "api_owner",
    Steward => "steward",
    Approver => "approver",
    Auditor => "auditor",
    Gateway => "gateway",
});

/// HTTP methods an operation can be published with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    /// The method as it appears on the wire (`GET`, `POST`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// A method exactly as written on the wire (methods are case-sensitive); anything
    /// outside the known set is `None`.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::parse(s)
            .ok_or_else(|| DomainError::invalid(format!("unknown method {:?}", truncate(s))))
    }
}

/// An operation's path template: `/orders/{id}`. Segments are literals or `{name}`
/// placeholders; no empty, `.` or `..` segments, no query or fragment.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathTemplate(String);

impl PathTemplate {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| {
            DomainError::invalid(format!("invalid path template {:?}: {why}", truncate(s)))
        };
        if s.len() > 1024 {
            return Err(bad("longer than 1024 characters"));
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(bad("must start with '/'"));
        };
        if rest.is_empty() {
            return Ok(Self(s.to_owned()));
        }
        let mut names = Vec::new();
        for seg in rest.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(bad("empty, '.' or '..' segment"));
            }
            if let Some(inner) = seg.strip_prefix('{') {
                let Some(name) = inner.strip_suffix('}') else {
                    return Err(bad("unterminated placeholder"));
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(bad("placeholder names are letters, digits and '_'"));
                }
                if names.contains(&name) {
                    return Err(bad("duplicate placeholder"));
                }
                names.push(name);
            } else if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b))
            {
                return Err(bad("literal segments take unreserved characters only"));
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The template with every placeholder replaced by `{}`: two templates with the same
    /// shape match the same paths.
    pub fn shape(&self) -> String {
        self.0
            .split('/')
            .map(|seg| if seg.starts_with('{') { "{}" } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl TryFrom<String> for PathTemplate {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}
impl From<PathTemplate> for String {
    fn from(v: PathTemplate) -> String {
        v.0
    }
}
impl fmt::Debug for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Day of the week in a time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    fn from_jiff(d: jiff::civil::Weekday) -> Self {
        use jiff::civil::Weekday as W;
        match d {
            W::Monday => Self::Mon,
            W::Tuesday => Self::Tue,
            W::Wednesday => Self::Wed,
            W::Thursday => Self::Thu,
            W::Friday => Self::Fri,
            W::Saturday => Self::Sat,
            W::Sunday => Self::Sun,
        }
    }
}

/// The IANA time zones windows resolve against: the copy compiled into the binary (jiff's
/// `tzdb-bundle-always`), never the host's `/usr/share/zoneinfo` or `TZDIR`, so a window
/// means the same on every node whatever tzdata each host has installed.
fn time_zones() -> &'static jiff::tz::TimeZoneDatabase {
    static BUNDLED: std::sync::LazyLock<jiff::tz::TimeZoneDatabase> =
        std::sync::LazyLock::new(jiff::tz::TimeZoneDatabase::bundled);
    &BUNDLED
}

/// When calls are allowed: on `days`, from `start` to `end` local time in `timezone`. A
/// window whose end is before its start runs past midnight (and belongs to the day it
/// started on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawWindow", into = "RawWindow")]
pub struct TimeWindow {
    days: Vec<Weekday>,
    start: u16,
    end: u16,
    timezone: String,
    tz: jiff::tz::TimeZone,
}

/// The stored form of a [`TimeWindow`]: `{days, start: "HH:MM", end: "HH:MM", timezone}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Vec<Weekday>,
    start: String,
    end: String,
    timezone: String,
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl TryFrom<RawWindow> for TimeWindow {
    type Error = DomainError;
    fn try_from(raw: RawWindow) -> Result<Self, DomainError> {
        if raw.days.is_empty() {
            return Err(DomainError::invalid(
                "time_window.days must name at least one day",
            ));
        }
        let start = parse_hhmm(&raw.start)
            .ok_or_else(|| DomainError::invalid("time_window.start must be HH:MM"))?;
        let end = parse_hhmm(&raw.end)
            .ok_or_else(|| DomainError::invalid("time_window.end must be HH:MM"))?;
        if start == end {
            return Err(DomainError::invalid(
                "time_window.start and end must differ",
            ));
        }
        let tz = time_zones().get(&raw.timezone).map_err(|_| {
            DomainError::invalid(format!("unknown time zone {:?}", truncate(&raw.timezone)))
        })?;
        Ok(Self {
            days: raw.days,
            start,
            end,
            timezone: raw.timezone,
            tz,
        })
    }
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl From<TimeWindow> for RawWindow {
    fn from(w: TimeWindow) -> Self {
        RawWindow {
            days: w.days,
            start: hhmm(w.start),
            end: hhmm(w.end),
            timezone: w.timezone,
        }
    }
}

impl TimeWindow {
    /// The days the window opens on.
    pub fn days(&self) -> &[Weekday] {
        &self.days
    }

    /// Local opening time, `HH:MM`.
    pub fn start(&self) -> String {
        hhmm(self.start)
    }

    /// Local closing time, `HH:MM`.
    pub fn end(&self) -> String {
        hhmm(self.end)
    }

    /// The IANA time zone name the window is read in.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: jiff::Timestamp) -> bool {
        let local = self.tz.to_datetime(now);
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        let today = Weekday::from_jiff(local.weekday());
        let yesterday = Weekday::from_jiff(local.weekday().previous());
        if self.start < self.end {
            self.days.contains(&today) && (self.start..self.end).contains(&minute)
        } else {
            (self.days.contains(&today) && minute >= self.start)
                || (self.days.contains(&yesterday) && minute < self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_userinfo_is_refused_without_echo() {
        for url in [
            "http://user:hunter2@10.0.0.1/",
            "https://hunter2@internal.example",
            "http://a:hunter2@b@c/",
        ] {
            let err = UpstreamUrl::parse(url).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert!(UpstreamUrl::parse("http://x\\@169.254.169.254/").is_err());
        // An `@` after the authority is part of the path.
        assert!(UpstreamUrl::parse("http://10.0.0.1:8080/a@b").is_ok());
        assert!(UpstreamUrl::parse("http:///x").is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert!(Name::parse("Acme Logistics").is_ok());
        assert!(Name::parse(&"x".repeat(256)).is_ok());
        assert!(Name::parse(&"x".repeat(257)).is_err());
        assert!(Name::parse("").is_err());
        assert!(Name::parse("a\nb").is_err());
        // Bidirectional controls make a name read differently than it is stored.
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}',
        ] {
            assert!(
                Name::parse(&format!("acme{c}gpj.exe")).is_err(),
                "{c:?} refused"
            );
        }
        assert!(Name::parse("Zürich — Ölwerke").is_ok());
    }

    #[test]
    fn path_templates() {
        assert!(PathTemplate::parse("/orders/{id}").is_ok());
        assert!(PathTemplate::parse("/").is_ok());
        for bad in [
            "orders",
            "/orders/",
            "/a//b",
            "/a/../b",
            "/a/{id",
            "/a/{}",
            "/a/{x}/{x}",
            "/a?b",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PathTemplate::parse("/o/{id}/x").unwrap().shape(), "/o/{}/x");
    }

    #[test]
    fn data_classes_are_ordered() {
        assert!(DataClass::Public < DataClass::Internal);
        assert!(DataClass::Confidential < DataClass::Restricted);
    }

    #[test]
    fn time_window_over_midnight() {
        let raw = RawWindow {
            days: vec![Weekday::Mon],
            start: "22:00".into(),
            end: "02:00".into(),
            timezone: "UTC".into(),
        };
        let w = TimeWindow::try_from(raw).unwrap();
        // 2026-11-30 is a Monday.
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert!(w.contains(at("2026-11-30T23:00:00Z")));
        assert!(w.contains(at("2026-12-01T01:59:00Z")));
        assert!(!w.contains(at("2026-12-01T02:00:00Z")));
        assert!(!w.contains(at("2026-11-30T21:59:00Z")));
        assert!(!w.contains(at("2026-11-30T01:00:00Z")));
    }

    #[test]
    fn time_window_rejects_bad_input() {
        let raw = |start: &str, tz: &str| RawWindow {
            days: vec![Weekday::Mon],
            start: start.into(),
            end: "10:00".into(),
            timezone: tz.into(),
        };
        assert!(TimeWindow::try_from(raw("25:00", "UTC")).is_err());
        assert!(TimeWindow::try_from(raw("09:00", "Mars/Olympus")).is_err());
        assert!(TimeWindow::try_from(raw("09:00", "Europe/Berlin")).is_ok());
    }
}

string_value!(/// An API's name, used as the first path segment at the gateway: `/{name}/…`.
    ApiName, is_slug, "API name (lowercase letters, digits, '-' or '_', at most 64)");
string_value!(/// The `aud` value of tokens for an API (usually a URI).
    Audience, |s| (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()), "audience");
/// An upstream base URL: `http://` or `https://`, a host, no whitespace, no backslash and no
/// userinfo (`user:secret@host` is refused without echoing the URL: it may hold a secret).
/// Where the host may point is the server's policy (it resolves names and knows its own
/// listeners); this type only fixes the shape.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UpstreamUrl(String);

impl UpstreamUrl {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"));
        let shape_ok = s.len() <= 2048
            && s.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
            && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
        if !shape_ok {
            return Err(DomainError::invalid(format!(
                "invalid upstream URL (http:// or https://, a host, printable ASCII): {:?}",
                truncate(s.split('@').next_back().unwrap_or_default())
            )));
        }
        let authority = rest
            .unwrap_or_default()
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.contains('@') {
            return Err(DomainError::invalid(
                "an upstream URL must not carry userinfo (user:password@host): give the upstream its credentials another way",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UpstreamUrl {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<UpstreamUrl> for String {
    fn from(v: UpstreamUrl) -> String {
        v.0
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
