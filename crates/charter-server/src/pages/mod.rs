//! HTML for people, from compiled askama templates (`crates/charter-server/templates/`):
//! one shared layout (`layout.html`) and one stylesheet (`charter.css`, served at
//! [`STYLESHEET_PATH`]), reused by every page — the evidence timeline, the compliance report
//! and the console to come. Each page is a view built from the data its JSON route answers
//! with; nothing here reads the store.
//!
//! Invariants: every value reaches the page through a template, which escapes it (there is
//! no hand-written escaper and no HTML built with `format!`); the only values marked safe are
//! the output of other templates ([`Who`], [`Node`], the statement sentences). Pages carry a
//! CSP that allows nothing but the stylesheet from this origin: no script, no inline style.

mod compliance;
mod evidence;

use std::sync::LazyLock;

use askama::Template;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use compliance::CompliancePage;
pub use evidence::EvidencePage;

use crate::error::{ApiError, ApiResult};

/// The stylesheet every page links to.
pub const STYLESHEET: &str = include_str!("../../templates/charter.css");
/// Where the control plane serves it.
pub const STYLESHEET_PATH: &str = "/static/charter.css";
/// The policy of every page: the stylesheet from this origin and nothing else.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The stylesheet's URL with a digest of its content, so that it can be cached for a year
/// and still change with a release.
pub fn stylesheet_href() -> &'static str {
    static HREF: LazyLock<String> = LazyLock::new(|| {
        let digest = Sha256::digest(STYLESHEET.as_bytes());
        format!("{STYLESHEET_PATH}?v={}", hex::encode(&digest[..8]))
    });
    &HREF
}

/// `GET /static/charter.css`: public, cached for a year (its URL changes with its content).
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A rendered page with its headers: HTML, the page CSP, never stored by caches.
pub fn respond(page: &impl Template) -> ApiResult<Response> {
    let body = page
        .render()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("rendering a page: {e}")))?;
    let mut resp = Html(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// An object named by id, with its name when the data at hand carries one (never invented).
#[derive(Debug, Clone, PartialEq, Template)]
#[template(path = "who.html")]
pub struct Who {
    pub id: String,
    pub name: Option<String>,
}

/// A template's output is already escaped.
impl askama::filters::HtmlSafe for Who {}

/// The console's navigation in the masthead: who is signed in, the pages they may open (the
/// current one marked), and the sign-out form with the session's CSRF token.
#[derive(Debug, Clone, PartialEq, Template)]
#[template(path = "console/nav.html")]
pub struct Nav {
    pub name: String,
    pub roles: String,
    pub csrf: String,
    /// `(href, label, current)`.
    pub links: Vec<(&'static str, &'static str, bool)>,
}

/// A template's output is already escaped.
impl askama::filters::HtmlSafe for Nav {}

/// A JSON value as a person reads it: scalars as text (`null` as a dash, booleans as yes/no,
/// lists of scalars joined with commas), lists as bullets, objects as definition lists.
#[derive(Debug, Clone, PartialEq, Template)]
#[template(path = "value.html")]
pub enum Node {
    Text(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// A template's output is already escaped.
impl askama::filters::HtmlSafe for Node {}

impl Node {
    pub fn of(v: &Value) -> Self {
        match v {
            Value::Array(items) if items.iter().any(|i| i.is_array() || i.is_object()) => {
                Self::List(items.iter().map(Self::of).collect())
            }
            Value::Object(map) if !map.is_empty() => {
                Self::Map(map.iter().map(|(k, v)| (k.clone(), Self::of(v))).collect())
            }
            other => Self::Text(plain(other)),
        }
    }
}

/// A JSON value as plain text: strings as they are, `null` as a dash, booleans as yes/no,
/// lists joined with commas (`eu, us`), an empty list or object as "none".
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "none".to_owned(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", plain(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_as_text_lists_and_definitions_escaped() {
        let node = Node::of(
            &json!({ "name": "<b>", "ids": ["a<", "b"], "n": 3, "none": [],
                                     "x": null, "ok": true, "rows": [{ "grant": "g&1" }] }),
        );
        let out = node.render().unwrap();
        assert!(!out.contains("<b>"), "{out}");
        assert!(out.contains("<dt>name</dt><dd>&#60;b&#62;</dd>"), "{out}");
        assert!(out.contains("<dd>a&#60;, b</dd>"), "{out}");
        assert!(out.contains("<dt>none</dt><dd>none</dd>"), "{out}");
        assert!(out.contains("<dt>x</dt><dd>—</dd>"), "{out}");
        assert!(out.contains("<dt>ok</dt><dd>yes</dd>"), "{out}");
        assert!(
            out.contains("<ul><li><dl><dt>grant</dt><dd>g&#38;1</dd></dl></li></ul>"),
            "{out}"
        );
    }

    #[test]
    fn names_stand_beside_ids_only_when_known() {
        let known = Who {
            id: "api_1".into(),
            name: Some("orders <v2>".into()),
        };
        assert_eq!(
            known.render().unwrap(),
            "orders &#60;v2&#62; <code>api_1</code>"
        );
        let unknown = Who {
            id: "prn_1".into(),
            name: None,
        };
        assert_eq!(unknown.render().unwrap(), "<code>prn_1</code>");
    }

    #[test]
    fn the_stylesheet_url_names_its_content() {
        let href = stylesheet_href();
        assert!(href.starts_with("/static/charter.css?v="), "{href}");
        assert_eq!(href.len(), STYLESHEET_PATH.len() + 3 + 16);
    }
}
