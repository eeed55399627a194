//! `GET /v1/compliance`: parse, authorise, load a [`Snapshot`], compute the findings and the
//! report (`services::compliance`, pure rules), render it as JSON or — `?format=html` — as a
//! page for people (no script); every string that reaches it is escaped by [`escape_html`].

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use charter_core::{Partner, Role};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::services::compliance::{self, ComplianceReport, FRAMEWORKS, Status, text};
use crate::services::findings;
use crate::services::snapshot::{Reads, Snapshot};
use crate::state::Shared;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Html,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// Report on this partner only (default: the whole estate).
    pub partner: Option<String>,
    /// `json` (default) or `html`.
    pub format: Option<Format>,
}

/// The compliance report: NIST CSF 2.0 PR.AA-01/03/04/05, NIST SP 800-207 tenets 3, 4, 6
/// and 7, OWASP NHI Top 10 (2025) NHI1/2/3/5/7/9, each pass/fail from the current state
/// with its evidence. Auditors, stewards and admins read the estate and any partner; an
/// approver reads the partners they own (`?partner=`).
#[utoipa::path(get, path = "/v1/compliance", tag = "compliance", params(ComplianceQuery),
    responses((status = 200, body = ComplianceReport, description = "JSON, or text/html with `?format=html`"),
              (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<Shared>,
    caller: Caller,
    Params(q): Params<ComplianceQuery>,
) -> ApiResult<Response> {
    caller.require(&[Role::Auditor, Role::Steward, Role::Approver])?;
    let partner = match &q.partner {
        Some(id) => Some(state.repo.load::<Partner>(id, "partner").await?.value),
        None => None,
    };
    if !caller.reads_all() {
        let owns = partner
            .as_ref()
            .is_some_and(|p| p.owners.contains(&caller.principal.id));
        if !owns {
            return Err(ApiError::Forbidden(
                "an approver reads the compliance report of a partner they own (?partner=)".into(),
            ));
        }
    }
    let s = Snapshot::load(&state.repo, &state.settings, state.feed.fresh(), Reads::ALL).await?;
    let found = findings::findings(&s, s.taken_at);
    let report = compliance::report(&s, &found, partner.as_ref());
    Ok(match q.format.unwrap_or_default() {
        Format::Json => Json(report).into_response(),
        Format::Html => {
            let mut resp = render_html(&report).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            resp
        }
    })
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Evidence as nested definition lists; every string escaped.
fn html_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("&#8212;"),
        Value::Bool(b) => out.push_str(if *b { "yes" } else { "no" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&escape_html(s)),
        Value::Array(items) if items.is_empty() => out.push_str("none"),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| {
                    let mut s = String::new();
                    html_value(i, &mut s);
                    s
                })
                .collect();
            out.push_str(&parts.join(", "));
        }
        Value::Array(items) => {
            out.push_str("<ul>");
            for i in items {
                out.push_str("<li>");
                html_value(i, out);
                out.push_str("</li>");
            }
            out.push_str("</ul>");
        }
        Value::Object(map) if map.is_empty() => out.push_str("none"),
        Value::Object(map) => {
            out.push_str("<dl>");
            for (k, v) in map {
                let _ = write!(out, "<dt>{}</dt><dd>", escape_html(k));
                html_value(v, out);
                out.push_str("</dd>");
            }
            out.push_str("</dl>");
        }
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:2em}\
th,td{border:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}\
th{background:#f3f3f3}.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;\
font-weight:bold;color:#fff}.pass{background:#2e7d32}.fail{background:#c62828}\
.not_applicable{background:#757575}dl{margin:0}dt{font-weight:bold;float:left;clear:left;\
margin-right:.4em}dt:after{content:':'}dd{margin:0 0 .2em 0}dd dl{margin-left:1em}\
ul{margin:0;padding-left:1.2em}.rule{color:#444;font-size:.95em}";

fn badge(status: Status) -> String {
    let s = status.as_str();
    format!("<span class=\"badge {s}\">{}</span>", s.replace('_', " "))
}

/// The report as a page a person reads: a summary, then one table per framework.
pub fn render_html(r: &ComplianceReport) -> String {
    let scope = match (&r.scope.id, &r.scope.name) {
        (Some(id), Some(name)) => format!(
            "partner {} (<code>{}</code>)",
            escape_html(name),
            escape_html(id)
        ),
        _ => "the whole estate".to_owned(),
    };
    let generated = escape_html(&r.generated_at.to_string());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Charter compliance report</title><style>{STYLE}</style></head><body>\
         <h1>Compliance report</h1><p>Scope: {scope}. Generated at {generated} from the \
         current state; decision-based rules read the last {} days of the audit log.</p>\
         <p>{} {} &#160; {} {} &#160; {} {}</p>",
        r.window_days,
        badge(Status::Pass),
        r.summary.pass,
        badge(Status::Fail),
        r.summary.fail,
        badge(Status::NotApplicable),
        r.summary.not_applicable,
    );
    for framework in FRAMEWORKS {
        let _ = write!(
            out,
            "<h2>{}</h2><table><thead><tr><th>Control</th><th>Status</th><th>Rule</th>\
             <th>Evidence</th><th>Findings</th></tr></thead><tbody>",
            escape_html(framework)
        );
        for c in r.controls.iter().filter(|c| c.framework == framework) {
            let mut evidence = String::new();
            html_value(&c.evidence, &mut evidence);
            let findings: Vec<String> = c.findings.iter().map(|k| escape_html(&text(k))).collect();
            let _ = write!(
                out,
                "<tr id=\"{id}\"><td><strong>{id}</strong><br>{title}</td><td>{badge}</td>\
                 <td class=\"rule\">{rule}</td><td>{evidence}</td><td>{findings}</td></tr>",
                id = escape_html(c.control),
                title = escape_html(c.title),
                badge = badge(c.status),
                rule = escape_html(c.rule),
                findings = if findings.is_empty() {
                    "none".to_owned()
                } else {
                    findings.join(", ")
                },
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_escape() {
        assert_eq!(
            escape_html(r#"<script>alert("x & 'y'")</script>"#),
            "&lt;script&gt;alert(&quot;x &amp; &#39;y&#39;&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain"), "plain");
    }

    #[test]
    fn evidence_renders_escaped() {
        let mut out = String::new();
        html_value(
            &json!({ "name": "<b>", "ids": ["a<", "b"], "n": 3, "none": [], "x": null,
                     "rows": [{ "grant": "g&1" }] }),
            &mut out,
        );
        assert!(!out.contains("<b>"), "{out}");
        assert!(out.contains("&lt;b&gt;"), "{out}");
        assert!(out.contains("a&lt;, b"), "{out}");
        assert!(
            out.contains("<li><dl><dt>grant</dt><dd>g&amp;1</dd></dl></li>"),
            "{out}"
        );
    }
}
