//! Request paths to operations. Paths are normalised first — unreserved characters
//! percent-decoded, `.` and `..` segments resolved, encoded slashes and empty segments
//! refused — and the upstream receives exactly the normalised path that matched. What an
//! upstream framework could read as another path is refused outright ([`PathError::is_refused`]):
//! path parameters (`;`), control characters raw or encoded (NUL included), encoded percent
//! signs (`%25`, a second decoding away from anything) and segments ending in `.`. Each API's
//! operations are compiled into one router per method when the API is (re)published, so a
//! call is matched without scanning.

use std::collections::HashMap;

use charter_core::{Api, Method, Operation};

/// An API's operations, compiled for matching.
pub struct CompiledApi {
    by_method: HashMap<Method, matchit::Router<usize>>,
}

impl CompiledApi {
    /// Compiles the operations; fails if two templates cannot coexist in one router.
    pub fn compile(api: &Api) -> Result<Self, String> {
        let mut by_method: HashMap<Method, matchit::Router<usize>> = HashMap::new();
        for (i, op) in api.operations.iter().enumerate() {
            by_method
                .entry(op.method)
                .or_default()
                .insert(op.path.as_str(), i)
                .map_err(|e| format!("{:?} {}: {e}", op.method, op.path.as_str()))?;
        }
        Ok(Self { by_method })
    }

    /// The operation a normalised path matches, if any.
    pub fn find<'a>(&self, api: &'a Api, method: Method, path: &str) -> Option<&'a Operation> {
        let router = self.by_method.get(&method)?;
        let m = router.at(path).ok()?;
        api.operations.get(*m.value)
    }
}

/// Why a path was refused before matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not absolute, or no API segment.
    Malformed,
    /// An encoded `/` or `\` inside a segment.
    EncodedSeparator,
    /// An empty segment (`//`), or `..` above the API.
    Ambiguous,
    /// A path parameter: `;`, raw or encoded.
    Parameter,
    /// A control character, raw or encoded (NUL included).
    ControlCharacter,
    /// An encoded percent sign (`%25`).
    EncodedPercent,
    /// A segment ending in `.` (other than `.` and `..`), which some servers drop.
    TrailingDot,
}

impl PathError {
    /// Errors that refuse the call as malformed (400) rather than deny it as an unknown
    /// operation.
    pub fn is_refused(self) -> bool {
        matches!(
            self,
            Self::Parameter | Self::ControlCharacter | Self::EncodedPercent | Self::TrailingDot
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "path_malformed",
            Self::EncodedSeparator => "path_encoded_separator",
            Self::Ambiguous => "path_ambiguous",
            Self::Parameter => "path_parameter",
            Self::ControlCharacter => "path_control_character",
            Self::EncodedPercent => "path_encoded_percent",
            Self::TrailingDot => "path_trailing_dot",
        }
    }
}

/// A normalised gateway path: `/{api}/{operation path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub api: String,
    /// The operation path, starting with `/`.
    pub path: String,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes percent-escapes of unreserved characters, upper-cases the others, and refuses
/// encoded separators.
fn normalise_segment(seg: &str) -> Result<String, PathError> {
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex_val),
                bytes.get(i + 2).copied().and_then(hex_val),
            ) else {
                return Err(PathError::Malformed);
            };
            let decoded = h * 16 + l;
            if decoded == b'/' || decoded == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            if decoded.is_ascii_control() {
                return Err(PathError::ControlCharacter);
            }
            if decoded == b'%' {
                return Err(PathError::EncodedPercent);
            }
            if decoded == b';' {
                return Err(PathError::Parameter);
            }
            if is_unreserved(decoded) {
                out.push(decoded as char);
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
            }
            i += 3;
        } else if b == b'\\' {
            return Err(PathError::EncodedSeparator);
        } else if b.is_ascii_control() {
            return Err(PathError::ControlCharacter);
        } else if b == b';' {
            return Err(PathError::Parameter);
        } else {
            out.push(b as char);
            i += 1;
        }
    }
    Ok(out)
}

/// Splits and normalises `/{api}/{path}` (no query).
pub fn normalise(raw: &str) -> Result<Target, PathError> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(PathError::Malformed);
    };
    if !raw.is_ascii() {
        return Err(PathError::Malformed);
    }
    let mut segments: Vec<String> = Vec::new();
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err(PathError::Ambiguous);
        }
        let seg = normalise_segment(seg)?;
        match seg.as_str() {
            s if s.ends_with('.') && s != "." && s != ".." => return Err(PathError::TrailingDot),
            "." => {}
            ".." => {
                // Never above the API segment.
                if segments.len() <= 1 {
                    return Err(PathError::Ambiguous);
                }
                segments.pop();
            }
            _ => segments.push(seg),
        }
    }
    let mut it = segments.into_iter();
    let Some(api) = it.next() else {
        return Err(PathError::Malformed);
    };
    let path: Vec<String> = it.collect();
    Ok(Target {
        api,
        path: format!("/{}", path.join("/")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(api: &str, path: &str) -> Target {
        Target {
            api: api.into(),
            path: path.into(),
        }
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalise("/orders/orders/42"),
            Ok(t("orders", "/orders/42"))
        );
        assert_eq!(
            normalise("/orders/%6Frders/4%32"),
            Ok(t("orders", "/orders/42"))
        );
        assert_eq!(
            normalise("/orders/orders/./42"),
            Ok(t("orders", "/orders/42"))
        );
        assert_eq!(
            normalise("/orders/admin/../orders/42"),
            Ok(t("orders", "/orders/42"))
        );
        assert_eq!(
            normalise("/orders/orders/a%20b"),
            Ok(t("orders", "/orders/a%20b"))
        );
        assert_eq!(
            normalise("/orders/orders/a%2fb"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(
            normalise("/orders/orders/a%5Cb"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(normalise("/orders//orders/42"), Err(PathError::Ambiguous));
        assert_eq!(
            normalise("/orders/../customers/x"),
            Err(PathError::Ambiguous)
        );
        assert_eq!(normalise("/orders/%zz"), Err(PathError::Malformed));
        assert_eq!(normalise("orders"), Err(PathError::Malformed));
        assert_eq!(normalise("/orders"), Ok(t("orders", "/")));
        for (raw, e) in [
            ("/orders/orders/export;x=1", PathError::Parameter),
            ("/orders/orders/export%3bx=1", PathError::Parameter),
            ("/orders/orders/export.", PathError::TrailingDot),
            ("/orders/orders/export%2E", PathError::TrailingDot),
            ("/orders/orders/42%00", PathError::ControlCharacter),
            ("/orders/orders/42%0a", PathError::ControlCharacter),
            ("/orders/orders/42\x7f", PathError::ControlCharacter),
            (
                "/orders/orders/42%252f..%252fexport",
                PathError::EncodedPercent,
            ),
        ] {
            assert_eq!(normalise(raw), Err(e), "{raw}");
            assert!(e.is_refused());
        }
    }
}

#[cfg(test)]
mod match_tests {
    use super::*;

    #[test]
    fn compiled_routes_match() {
        let api: Api = serde_json::from_value(serde_json::json!({
            "id": "api_01m8nyb980bt6725akrpmfm4vc", "name": "orders", "audience": "a", "upstream": "http://x",
            "owner": "prn_01m8nyb980bt6725akrpmfm4vc", "revision": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "operations": [
                { "scope": "orders:read", "method": "GET", "path": "/orders/{id}", "data_class": "confidential", "region": "eu" },
                { "scope": "orders:list", "method": "GET", "path": "/orders", "data_class": "internal", "region": "eu" },
                { "scope": "orders:export", "method": "GET", "path": "/orders/export", "data_class": "restricted", "region": "us" }
            ]
        }))
        .unwrap();
        let c = CompiledApi::compile(&api).unwrap();
        let scope = |p: &str| c.find(&api, Method::Get, p).map(|o| o.scope.to_string());
        assert_eq!(scope("/orders/1").as_deref(), Some("orders:read"));
        assert_eq!(scope("/orders").as_deref(), Some("orders:list"));
        assert_eq!(scope("/orders/export").as_deref(), Some("orders:export"));
        assert_eq!(scope("/orders/1/lines"), None);
        assert_eq!(c.find(&api, Method::Post, "/orders"), None);
    }
}
