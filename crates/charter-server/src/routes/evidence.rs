//! `GET /v1/grants/{id}/evidence`, `GET /v1/partners/{id}/evidence`: parse, authorise, call
//! `services::evidence`, render the signed bundle as JSON or as an HTML timeline.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use charter_core::Partner;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::services::evidence;
use crate::services::grants::Visibility;
use crate::state::Shared;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParams {
    /// `json` (default) or `html`.
    pub format: Option<String>,
}

fn answer(bundle: Value, format: Option<String>) -> ApiResult<Response> {
    match format.as_deref() {
        None | Some("json") => Ok(Json(bundle).into_response()),
        Some("html") => {
            Ok(([(header::CACHE_CONTROL, "no-store")], Html(html(&bundle))).into_response())
        }
        Some(_) => Err(ApiError::Invalid("format is json or html".into())),
    }
}

#[utoipa::path(get, path = "/v1/grants/{id}/evidence", tag = "evidence", params(EvidenceParams),
    responses((status = 200, description = "signed evidence bundle (JSON) or its HTML timeline"), (status = 404)),
    security(("bearer" = [])))]
pub async fn for_grant(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<EvidenceParams>,
) -> ApiResult<Response> {
    let vis = Visibility::of(&caller.principal)?;
    let grant = vis.load(&state.repo, &id).await?;
    let key = state.keys.evidence()?;
    let bundle = evidence::for_grant(&state.repo, &key, &state.settings.issuer, &grant).await?;
    answer(bundle, p.format)
}

#[utoipa::path(get, path = "/v1/partners/{id}/evidence", tag = "evidence", params(EvidenceParams),
    responses((status = 200, description = "signed evidence bundle (JSON) or its HTML timeline"), (status = 404)),
    security(("bearer" = [])))]
pub async fn for_partner(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<EvidenceParams>,
) -> ApiResult<Response> {
    let vis = Visibility::of(&caller.principal)?;
    let partner = state.repo.load::<Partner>(&id, "partner").await?.value;
    let key = state.keys.evidence()?;
    let bundle =
        evidence::for_partner(&state.repo, &key, &state.settings.issuer, &vis, &partner).await?;
    answer(bundle, p.format)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The bundle as a page: a timeline of statements with the events that prove them.
fn html(bundle: &Value) -> String {
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for st in bundle["statements"].as_array().into_iter().flatten() {
        let at = st["facts"]["at"]
            .as_str()
            .or_else(|| st["facts"]["first_at"].as_str())
            .unwrap_or("")
            .to_owned();
        let events = st["events"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        rows.push((
            at,
            st["kind"].as_str().unwrap_or("").to_owned(),
            st["text"].as_str().unwrap_or("").to_owned(),
            events,
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body = String::new();
    for (at, kind, text, events) in rows {
        body.push_str(&format!(
            "<tr><td>{}</td><td><span class=\"k\">{}</span></td><td>{}</td><td class=\"ev\">{}</td></tr>\n",
            esc(&at), esc(&kind), esc(&text), esc(&events)
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Evidence: {subject}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse;width:100%}}\
td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}}.k{{font-weight:600}}\
.ev{{font-family:monospace;font-size:.85em;color:#555}}code{{font-size:.85em}}</style></head><body>\
<h1>Evidence for {subject}</h1><p>Issued by {issuer} at {generated}. Chain head <code>{head_seq}</code> \
<code>{head_hash}</code>; signed with evidence key <code>{kid}</code>. Verify offline with \
<code>charter evidence verify FILE</code> on the JSON form.</p><table><thead><tr><th>when</th><th>what</th>\
<th>statement</th><th>audit events</th></tr></thead><tbody>\n{body}</tbody></table></body></html>",
        subject = esc(&format!(
            "{} {}",
            bundle["subject"]["type"].as_str().unwrap_or(""),
            bundle["subject"]["id"].as_str().unwrap_or("")
        )),
        issuer = esc(bundle["issuer"].as_str().unwrap_or("")),
        generated = esc(bundle["generated_at"].as_str().unwrap_or("")),
        head_seq = esc(&bundle["head"]["seq"].to_string()),
        head_hash = esc(bundle["head"]["hash"].as_str().unwrap_or("")),
        kid = esc(bundle["keys"]
            .as_array()
            .and_then(|k| k.last())
            .and_then(|k| k["kid"].as_str())
            .unwrap_or("")),
    )
}
