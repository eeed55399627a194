//! RFC 9449 DPoP proofs: a JWT signed with the client's own key, carried per request, that
//! binds the request (method and URI) and, at resources, the access token to that key.

use aws_lc_rs::{constant_time, digest};
use serde_json::Value;

use crate::b64;
use crate::jwk::{CLIENT_SIGNING_ALGS, JwkError, PublicJwk};
use crate::jws::{self, ShapeError};

/// Longest proof looked at (bytes).
pub const MAX_PROOF_BYTES: usize = 8192;
/// How far ahead of `now` a proof's `iat` may lie (clock skew, seconds).
pub const MAX_FUTURE_SKEW_SECS: i64 = 5;
/// Longest `jti` accepted (bytes).
pub const MAX_JTI_LEN: usize = 256;
/// The `typ` header of a DPoP proof.
pub const DPOP_TYP: &str = "dpop+jwt";

/// Header members refused in a proof (the key is the embedded `jwk`, nothing else).
const FORBIDDEN_HEADERS: [&str; 4] = ["jku", "x5u", "x5c", "crit"];

/// A verified proof: the key's thumbprint (compare with the token's `cnf.jkt`), and the
/// `jti`/`iat` the caller uses to refuse replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("DPoP proof longer than {MAX_PROOF_BYTES} bytes")]
    TooLarge,
    #[error("DPoP proof is not three base64url parts")]
    Malformed,
    #[error("DPoP proof header is not a JSON object")]
    HeaderNotJson,
    #[error("DPoP proof typ is not dpop+jwt")]
    WrongType,
    #[error("DPoP proof algorithm is not EdDSA, Ed25519 or ES256")]
    UnsupportedAlgorithm,
    #[error("DPoP proof header carries `{0}`, which is never honoured")]
    ForbiddenHeader(&'static str),
    #[error("DPoP proof header has no jwk")]
    MissingJwk,
    #[error("DPoP proof jwk refused: {0}")]
    InvalidJwk(JwkError),
    #[error("DPoP proof alg does not match its jwk")]
    AlgorithmMismatch,
    #[error("DPoP proof signature does not verify")]
    BadSignature,
    #[error("DPoP proof claims are malformed")]
    InvalidClaims,
    #[error("DPoP proof htm does not match the request method")]
    MethodMismatch,
    #[error("DPoP proof htu does not match the request URI")]
    UriMismatch,
    #[error("DPoP proof has no iat")]
    MissingIat,
    #[error("DPoP proof is too old")]
    IatTooOld,
    #[error("DPoP proof iat is in the future")]
    IatInFuture,
    #[error("DPoP proof has no jti")]
    MissingJti,
    #[error("DPoP proof has no ath")]
    MissingAth,
    #[error("DPoP proof ath does not match the access token")]
    AthMismatch,
}

impl From<ShapeError> for DpopError {
    fn from(e: ShapeError) -> Self {
        match e {
            ShapeError::TooLarge => DpopError::TooLarge,
            ShapeError::Malformed => DpopError::Malformed,
            ShapeError::HeaderNotJson => DpopError::HeaderNotJson,
        }
    }
}

/// Verifies a DPoP proof for a request with `method` (exact match) to `htu` (compared after
/// normalisation: query and fragment dropped, scheme and host lowercased, default port
/// removed, percent-encoding and dot segments normalised).
///
/// The header's `alg` is `EdDSA` or its RFC 9864 name `Ed25519` with an Ed25519 `jwk`, or
/// `ES256` with a P-256 `jwk` ([`PublicJwk::accepts_alg`]); anything else is refused.
/// `iat` must lie in `[now - max_age_secs, now + 5 s]`. With `access_token` (at a resource)
/// the proof must carry `ath` = base64url(SHA-256(access_token)). Returns the embedded key's
/// RFC 7638 thumbprint as `jkt`. Replay (`jti` seen before) is the caller's check.
pub fn verify_proof(
    proof: &str,
    method: &str,
    htu: &str,
    now: i64,
    max_age_secs: i64,
    access_token: Option<&str>,
) -> Result<DpopProof, DpopError> {
    let compact = jws::parse_compact(proof, MAX_PROOF_BYTES)?;
    if !compact
        .header_str("typ")
        .is_some_and(|typ| jws::typ_is(typ, DPOP_TYP))
    {
        return Err(DpopError::WrongType);
    }
    let alg = match compact.header_str("alg") {
        Some(alg) if CLIENT_SIGNING_ALGS.contains(&alg) => alg,
        _ => return Err(DpopError::UnsupportedAlgorithm),
    };
    if let Some(name) = compact.forbidden_header(&FORBIDDEN_HEADERS) {
        return Err(DpopError::ForbiddenHeader(name));
    }
    let jwk = compact.header.get("jwk").ok_or(DpopError::MissingJwk)?;
    let jwk = PublicJwk::parse(jwk).map_err(DpopError::InvalidJwk)?;
    if !jwk.accepts_alg(alg) {
        return Err(DpopError::AlgorithmMismatch);
    }
    let key = jwk.decoding_key().map_err(DpopError::InvalidJwk)?;
    compact
        .verify_signature(&key, jwk.algorithm())
        .map_err(|()| DpopError::BadSignature)?;

    let claims = compact.payload_object().ok_or(DpopError::InvalidClaims)?;
    if claims.get("htm").and_then(Value::as_str) != Some(method) {
        return Err(DpopError::MethodMismatch);
    }
    let claimed_htu = claims.get("htu").and_then(Value::as_str);
    match (claimed_htu.and_then(normalize_htu), normalize_htu(htu)) {
        (Some(claimed), Some(actual)) if claimed == actual => {}
        _ => return Err(DpopError::UriMismatch),
    }
    let iat = match claims.get("iat") {
        None => return Err(DpopError::MissingIat),
        Some(v) => jws::numeric_date(v).ok_or(DpopError::InvalidClaims)?,
    };
    if iat < now.saturating_sub(max_age_secs) {
        return Err(DpopError::IatTooOld);
    }
    if iat > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
        return Err(DpopError::IatInFuture);
    }
    let jti = match claims.get("jti") {
        None => return Err(DpopError::MissingJti),
        Some(Value::String(jti)) if jti.is_empty() => return Err(DpopError::MissingJti),
        Some(Value::String(jti)) if jti.len() <= MAX_JTI_LEN => jti.clone(),
        Some(_) => return Err(DpopError::InvalidClaims),
    };
    if let Some(token) = access_token {
        let ath = claims
            .get("ath")
            .and_then(Value::as_str)
            .ok_or(DpopError::MissingAth)?;
        let expected = access_token_hash(token);
        constant_time::verify_slices_are_equal(ath.as_bytes(), expected.as_bytes())
            .map_err(|_| DpopError::AthMismatch)?;
    }
    Ok(DpopProof {
        jkt: jwk.thumbprint(),
        jti,
        iat,
    })
}

/// `ath`: base64url(SHA-256(ASCII access token)) (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// Normalises an `http`/`https` URI for `htu` comparison (RFC 9449 §4.3, RFC 3986 §6.2.2 and
/// §6.2.3): query and fragment dropped, scheme and host lowercased, default or empty port
/// removed, empty path as `/`, percent-encoding hex uppercased and unreserved characters
/// decoded, dot segments removed. `None` for anything that is not such a URI (including one
/// with userinfo).
pub fn normalize_htu(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let without_fragment = rest.split('#').next().unwrap_or_default();
    let without_query = without_fragment.split('?').next().unwrap_or_default();
    let (authority, path) = match without_query.find('/') {
        Some(i) => without_query.split_at(i),
        None => (without_query, ""),
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'[' | b']' | b':' | b'%')
        })
    {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let p: u16 = p.parse().ok()?;
            (p != default_port).then_some(p)
        }
        Some(_) => return None,
    };
    let path = normalize_percent_encoding(if path.is_empty() { "/" } else { path })?;
    let path = remove_dot_segments(&path);
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(port) = port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(&path);
    Some(out)
}

/// Uppercases the hex digits of percent-escapes and decodes escaped unreserved characters
/// (RFC 3986 §6.2.2.1–2). `None` for a `%` not followed by two hex digits.
fn normalize_percent_encoding(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            let value = hi << 4 | lo;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(value);
            } else {
                out.extend_from_slice(format!("%{value:02X}").as_bytes());
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §5.2.4 for an absolute path (starts with `/`).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        if i == last && matches!(*segment, "." | "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation() {
        let n = |s: &str| normalize_htu(s);
        assert_eq!(
            n("https://AS.Example.com/token").as_deref(),
            Some("https://as.example.com/token")
        );
        assert_eq!(
            n("HTTPS://as.example.com:443/token?x=1#f").as_deref(),
            Some("https://as.example.com/token")
        );
        assert_eq!(n("http://h:80").as_deref(), Some("http://h/"));
        assert_eq!(n("http://h:").as_deref(), Some("http://h/"));
        assert_eq!(n("http://h:8080/a").as_deref(), Some("http://h:8080/a"));
        assert_eq!(n("https://h:80/a").as_deref(), Some("https://h:80/a"));
        assert_eq!(
            n("http://[::1]:7600/a").as_deref(),
            Some("http://[::1]:7600/a")
        );
        assert_eq!(n("http://[::1]/a").as_deref(), Some("http://[::1]/a"));
        assert_eq!(n("http://h/a/%7e%2fb").as_deref(), Some("http://h/a/~%2Fb"));
        assert_eq!(n("http://h/a/./b/../c").as_deref(), Some("http://h/a/c"));
        assert_eq!(n("http://h/a/b/..").as_deref(), Some("http://h/a/"));
        assert_eq!(n("http://h/Path").as_deref(), Some("http://h/Path"));
        assert_eq!(n("ftp://h/a"), None);
        assert_eq!(n("http://user@h/a"), None);
        assert_eq!(n("http:///a"), None);
        assert_eq!(n("http://h:99999/a"), None);
        assert_eq!(n("http://h:8x/a"), None);
        assert_eq!(n("http://h/%zz"), None);
        assert_eq!(n("/relative"), None);
    }

    #[test]
    fn dot_segments() {
        assert_eq!(remove_dot_segments("/"), "/");
        assert_eq!(remove_dot_segments("/.."), "/");
        assert_eq!(remove_dot_segments("/a/."), "/a/");
        assert_eq!(remove_dot_segments("/a//b"), "/a//b");
        assert_eq!(remove_dot_segments("/a/b/../../.."), "/");
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
    }

    #[test]
    fn ath_vector() {
        // RFC 9449 §7.1 example access token and its ath.
        let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
        assert_eq!(
            access_token_hash(token),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
