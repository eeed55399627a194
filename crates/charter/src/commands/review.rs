//! `charter review …`: start a recertification campaign over a partner's or an API's grants
//! (stewards), list and show reviews with the usage evidence of each item, and attest an
//! item: keep, reduce (to the scopes given) or revoke its grant (an owner of the partner who
//! did not request the grant). Break-glass grants open their post-incident review themselves.

use std::process::ExitCode;

use charter_core::review::{AttestDecision, ReviewKind, ReviewStatus};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Map, Value, json};

use super::{PageArgs, connect, core_enum, emit_named, items, next_page_hint};
use crate::GlobalArgs;
use crate::names::Names;
use crate::table::{Table, cell, field, print_detail, short_time};

fn status_help(status: ReviewStatus) -> Option<&'static str> {
    Some(match status {
        ReviewStatus::Open => "Some item still awaits its decision",
        ReviewStatus::Completed => "Every item is decided",
    })
}

fn kind_help(kind: ReviewKind) -> Option<&'static str> {
    Some(match kind {
        ReviewKind::Recertification => "Campaigns over a partner's or an API's grants",
        ReviewKind::PostIncident => "The reviews break-glass grants open",
    })
}

fn decision_help(decision: AttestDecision) -> Option<&'static str> {
    Some(match decision {
        AttestDecision::Keep => "The access is still needed as it is",
        AttestDecision::Reduce => "Still needed, but only the scopes given with --scope",
        AttestDecision::Revoke => "No longer needed: the grant is revoked",
    })
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("subject").required(true).multiple(false).args(["partner", "api"])
))]
pub struct StartArgs {
    /// Review every active grant of this partner (prt_…).
    #[arg(long)]
    partner: Option<String>,
    /// Review every active grant on this API (api_…).
    #[arg(long)]
    api: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The review (rev_…).
    review: String,
    /// The item within the review (itm_1, itm_2, …).
    item: String,
    #[arg(long, value_parser = core_enum(&AttestDecision::ALL, AttestDecision::as_str, decision_help))]
    decision: AttestDecision,
    /// With --decision reduce: a scope to keep; repeat (or separate with commas) for several.
    #[arg(long = "scope", value_delimiter = ',')]
    scopes: Vec<String>,
    #[arg(long)]
    justification: String,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCmd {
    /// Start a recertification campaign over a partner's or an API's active grants.
    Start(StartArgs),
    /// List reviews.
    List {
        /// Only open or only completed reviews.
        #[arg(long, value_parser = core_enum(&ReviewStatus::ALL, ReviewStatus::as_str, status_help))]
        status: Option<ReviewStatus>,
        /// Only campaigns or only post-incident reviews.
        #[arg(long, value_parser = core_enum(&ReviewKind::ALL, ReviewKind::as_str, kind_help))]
        kind: Option<ReviewKind>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a review and its items with their usage evidence.
    Show { id: String },
    /// Decide one item: keep, reduce or revoke its grant.
    Attest(AttestArgs),
}

/// The members of a review that refer to a partner, an API or a principal (a subject's
/// `id`, an attestation's `by`).
const REFERENCES: &[&str] = &["id", "created_by", "by"];

const ORDER: &[&str] = &[
    "id",
    "kind",
    "subject",
    "status",
    "created_by",
    "created_at",
    "completed_at",
];

pub async fn run(global: &GlobalArgs, cmd: ReviewCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ReviewCmd::Start(args) => {
            let client = connect(global)?;
            let reply = client.post(&["v1", "reviews"], &start_body(&args)).await?;
            emit_named(global, &client, &reply, REFERENCES, print_review).await?;
        }
        ReviewCmd::List { status, kind, page } => {
            let mut query = page.query();
            query.push((
                "status",
                status.map(ReviewStatus::as_str).unwrap_or_default().into(),
            ));
            query.push((
                "kind",
                kind.map(ReviewKind::as_str).unwrap_or_default().into(),
            ));
            let client = connect(global)?;
            let reply = client.get(&["v1", "reviews"], &query).await?;
            emit_named(global, &client, &reply, &["id"], |r, names| {
                let mut t = Table::new(&["ID", "KIND", "SUBJECT", "STATUS", "DECIDED", "CREATED"]);
                for review in items(r) {
                    t.row(vec![
                        field(review, "id"),
                        field(review, "kind"),
                        subject(review, names),
                        field(review, "status"),
                        decided(review),
                        short_time(review, "created_at"),
                    ]);
                }
                t.print();
                next_page_hint(r);
            })
            .await?;
        }
        ReviewCmd::Show { id } => {
            let client = connect(global)?;
            let reply = client.get(&["v1", "reviews", &id], &[]).await?;
            emit_named(global, &client, &reply, REFERENCES, print_review).await?;
        }
        ReviewCmd::Attest(args) => {
            let body = attest_body(&args)?;
            let client = connect(global)?;
            let reply = client
                .post(
                    &["v1", "reviews", &args.review, "items", &args.item, "attest"],
                    &body,
                )
                .await?;
            emit_named(global, &client, &reply, REFERENCES, print_review).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON body of `POST /v1/reviews`.
fn start_body(args: &StartArgs) -> Value {
    match (&args.partner, &args.api) {
        (Some(partner), _) => json!({ "partner": partner }),
        (None, api) => json!({ "api": api }),
    }
}

/// The JSON body of `POST /v1/reviews/{id}/items/{item}/attest`. Scopes go with `reduce`
/// only, and `reduce` needs them.
fn attest_body(args: &AttestArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("decision".into(), json!(args.decision.as_str()));
    match (args.decision, args.scopes.is_empty()) {
        (AttestDecision::Reduce, true) => {
            anyhow::bail!("--decision reduce needs --scope: the scopes the grant keeps")
        }
        (AttestDecision::Reduce, false) => {
            body.insert("scopes".into(), json!(args.scopes));
        }
        (other, false) => anyhow::bail!(
            "--scope goes with --decision reduce; {} keeps or removes every scope",
            other.as_str()
        ),
        (_, true) => {}
    }
    body.insert("justification".into(), json!(args.justification));
    Ok(Value::Object(body))
}

/// `partner Acme Logistics (prt_…)`, `api orders (api_…)` or `grant grt_…`.
fn subject(review: &Value, names: &Names) -> String {
    let s = review.get("subject").unwrap_or(&Value::Null);
    match (s.get("type"), s.get("id")) {
        (Some(kind), Some(_)) => format!("{} {}", cell(kind), names.field(s, "id")),
        _ => cell(s),
    }
}

/// `decided/total` items.
fn decided(review: &Value) -> String {
    let list = review_items(review);
    let done = list.iter().filter(|i| is_decided(i)).count();
    format!("{done}/{}", list.len())
}

fn review_items(review: &Value) -> &[Value] {
    review
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn is_decided(item: &Value) -> bool {
    item.get("decision").is_some_and(|d| !d.is_null())
}

/// `keep by alice (prn_…)`, `reduce to a,b by prn_…`, or `-` while undecided.
fn decision(item: &Value, names: &Names) -> String {
    let Some(d) = item.get("decision").filter(|d| !d.is_null()) else {
        return "-".into();
    };
    let what = field(d, "decision");
    let by = names.field(d, "by");
    match d.get("scopes").filter(|s| !s.is_null()) {
        Some(scopes) => format!("{what} to {} by {by}", cell(scopes)),
        None => format!("{what} by {by}"),
    }
}

fn print_review(review: &Value, names: &Names) {
    let mut head = names.annotate(review, &["created_by"]);
    if let Some(map) = head.as_object_mut() {
        map.insert("subject".into(), json!(subject(review, names)));
    }
    print_detail(&head, ORDER, &["items"]);
    println!();
    let mut t = Table::new(&[
        "ITEM",
        "KIND",
        "GRANT",
        "SCOPES",
        "LAST CALL",
        "NEVER USED",
        "DENIALS",
        "DUE",
        "DECISION",
    ]);
    for item in review_items(review) {
        let evidence = item.get("evidence").unwrap_or(&Value::Null);
        t.row(vec![
            field(item, "id"),
            field(item, "kind"),
            field(item, "grant"),
            field(item, "scopes"),
            short_time(evidence, "last_call_at"),
            field(evidence, "scopes_never_used"),
            field(evidence, "denials"),
            short_time(item, "due_at"),
            decision(item, names),
        ]);
    }
    t.print();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: ReviewCmd,
    }

    fn parse(args: &[&str]) -> Result<ReviewCmd, clap::Error> {
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        Wrap::try_parse_from(all).map(|w| w.cmd)
    }

    fn attest(args: &[&str]) -> anyhow::Result<Value> {
        let mut all = vec![
            "attest",
            "rev_1",
            "itm_1",
            "--justification",
            "still needed",
        ];
        all.extend_from_slice(args);
        let ReviewCmd::Attest(a) = parse(&all)? else {
            panic!("not attest")
        };
        attest_body(&a)
    }

    #[test]
    fn a_review_names_a_partner_or_an_api() {
        let ReviewCmd::Start(a) = parse(&["start", "--partner", "prt_1"]).unwrap() else {
            panic!("not start")
        };
        assert_eq!(start_body(&a), json!({ "partner": "prt_1" }));
        let ReviewCmd::Start(a) = parse(&["start", "--api", "api_1"]).unwrap() else {
            panic!("not start")
        };
        assert_eq!(start_body(&a), json!({ "api": "api_1" }));
        assert!(parse(&["start"]).is_err());
        assert!(parse(&["start", "--partner", "prt_1", "--api", "api_1"]).is_err());
    }

    #[test]
    fn attest_bodies() {
        assert_eq!(
            attest(&["--decision", "keep"]).unwrap(),
            json!({ "decision": "keep", "justification": "still needed" })
        );
        assert_eq!(
            attest(&["--decision", "reduce", "--scope", "orders:read"]).unwrap(),
            json!({ "decision": "reduce", "scopes": ["orders:read"], "justification": "still needed" })
        );
        let e = attest(&["--decision", "reduce"]).unwrap_err();
        assert!(e.to_string().contains("--scope"), "{e}");
        let e = attest(&["--decision", "revoke", "--scope", "orders:read"]).unwrap_err();
        assert!(e.to_string().contains("reduce"), "{e}");
        assert!(attest(&["--decision", "maybe"]).is_err());
    }

    #[test]
    fn rendering_helpers() {
        let review = json!({
            "subject": { "type": "partner", "id": "prt_1" },
            "items": [
                { "decision": null },
                { "decision": { "decision": "reduce", "scopes": ["a", "b"], "by": "prn_1" } },
                { "decision": { "decision": "keep", "by": "prn_2" } },
            ],
        });
        assert_eq!(subject(&review, &Names::default()), "partner prt_1");
        assert_eq!(decided(&review), "2/3");
        let list = review_items(&review);
        assert_eq!(decision(&list[0], &Names::default()), "-");
        assert_eq!(
            decision(&list[1], &Names::default()),
            "reduce to a,b by prn_1"
        );
        assert_eq!(decision(&list[2], &Names::default()), "keep by prn_2");
        assert_eq!(decided(&json!({})), "0/0");
    }
}
