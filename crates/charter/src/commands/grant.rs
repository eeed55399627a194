//! `charter grant …`: request a grant (or open break-glass access with `--incident`),
//! approve or reject it, read it back, and move it through its lifecycle (suspend, resume,
//! revoke). Expiry is required: `--expires-at` (RFC 3339) or `--for` (e.g. `90d`, `4h`).

use std::process::ExitCode;

use charter_core::DataClass;
use clap::{ArgGroup, Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::{PageArgs, connect, core_enum, emit_named, items, next_page_hint, no_help};
use crate::GlobalArgs;
use crate::client::Client;
use crate::names::Names;
use crate::table::{Table, field, print_detail, short_time};

/// `--ceiling`: one of core's data classes.
pub fn data_class() -> impl clap::builder::TypedValueParser<Value = DataClass> {
    core_enum(&DataClass::ALL, DataClass::as_str, no_help)
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("expiry").required(true).multiple(false).args(["expires_at", "duration"])
))]
pub struct RequestArgs {
    /// The partner (prt_…).
    #[arg(long)]
    partner: String,
    /// The API (api_…).
    #[arg(long)]
    api: String,
    /// What the partner does with the access, in one sentence.
    #[arg(long)]
    use_case: String,
    /// A scope of the API; repeat (or separate with commas) for several.
    #[arg(long = "scope", required = true, value_delimiter = ',')]
    scopes: Vec<String>,
    /// The most sensitive data class the grant may reach.
    #[arg(long, value_parser = data_class())]
    ceiling: DataClass,
    /// A data region the grant may reach; repeat for several.
    #[arg(long = "region", required = true, value_delimiter = ',')]
    regions: Vec<String>,
    /// Hard end of the access (RFC 3339, e.g. 2027-03-01T00:00:00Z).
    #[arg(long, value_parser = parse_timestamp, value_name = "RFC3339")]
    expires_at: Option<Timestamp>,
    /// Hard end of the access from now: 90d, 4h, 30m, 2w.
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<SignedDuration>,
    /// An environment the grant covers (default: production); repeat for several.
    #[arg(long = "environment", value_delimiter = ',')]
    environments: Vec<String>,
    /// Access-token lifetime in seconds (default 600, at most 3600).
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u32>,
    /// Recertification interval in days (default 90).
    #[arg(long, value_name = "N")]
    recertify_days: Option<u32>,
    /// Distinct owner approvals needed (default 1; a reseller needs at least 2).
    #[arg(long, value_name = "N")]
    approvals: Option<u32>,
    /// Legal basis for reaching a region outside the partner's processing regions.
    #[arg(long, value_name = "TEXT")]
    transfer_basis: Option<String>,
    /// Require DPoP-bound tokens.
    #[arg(long)]
    require_dpop: bool,
    /// Break-glass: open the grant at once under this incident reference (at most 4 h).
    #[arg(long, value_name = "INC")]
    incident: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    /// Request a grant (pending until approved), or an emergency grant with --incident.
    Request(Box<RequestArgs>),
    /// Approve a pending grant (an owner of the partner who did not request it).
    Approve {
        id: String,
        #[arg(long)]
        justification: String,
        /// Change or ticket reference.
        #[arg(long)]
        ticket: Option<String>,
        /// Why data above `internal` is accepted for a SaaS connector's grant (required to
        /// approve such a grant; recorded with the approval).
        #[arg(long, value_name = "TEXT")]
        data_exception: Option<String>,
    },
    /// Reject a pending grant; one rejection ends the request.
    Reject {
        id: String,
        #[arg(long)]
        justification: String,
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Show one grant with its approvals.
    Show { id: String },
    /// List grants.
    List {
        /// Only grants of this partner (prt_…).
        #[arg(long)]
        partner: Option<String>,
        /// Only grants in this state (pending, active, suspended, revoked, expired, rejected).
        #[arg(long)]
        status: Option<String>,
        /// Only grants on this API (api_…).
        #[arg(long)]
        api: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Suspend an active grant.
    Suspend {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Resume a suspended grant.
    Resume {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Revoke a grant for good: every outstanding token dies.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// The members of a grant that refer to a partner, an API or a principal.
pub const REFERENCES: &[&str] = &["partner", "api", "requested_by", "approver"];

const ORDER: &[&str] = &[
    "id",
    "status",
    "status_reason",
    "partner",
    "api",
    "use_case",
    "scopes",
    "data_class_ceiling",
    "regions",
    "transfer_basis",
    "environments",
    "time_window",
    "require_dpop",
    "emergency",
    "expires_at",
    "token_ttl_seconds",
    "recertify_every_days",
    "approvals_required",
    "requested_by",
    "requested_at",
    "activated_at",
    "review_due_at",
    "ended_at",
    "epoch",
];

pub async fn run(global: &GlobalArgs, cmd: GrantCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        GrantCmd::Request(args) => {
            let body = request_body(&args, &charter_server::clock::SystemClock)?;
            let client = connect(global)?;
            let reply = client.post(&["v1", "grants"], &body).await?;
            emit_named(global, &client, &reply, REFERENCES, print_summary).await?;
        }
        GrantCmd::Approve {
            id,
            justification,
            ticket,
            data_exception,
        } => {
            let body = decision_body("approve", justification, ticket, data_exception);
            decide(global, &id, &body).await?;
        }
        GrantCmd::Reject {
            id,
            justification,
            ticket,
        } => {
            let body = decision_body("reject", justification, ticket, None);
            decide(global, &id, &body).await?;
        }
        GrantCmd::Show { id } => {
            let client = connect(global)?;
            let reply = client.get(&["v1", "grants", &id], &[]).await?;
            emit_named(global, &client, &reply, REFERENCES, print_grant).await?;
        }
        GrantCmd::List {
            partner,
            status,
            api,
            page,
        } => {
            let mut query = page.query();
            query.push(("partner", partner.unwrap_or_default()));
            query.push(("status", status.unwrap_or_default()));
            query.push(("api", api.unwrap_or_default()));
            let client = connect(global)?;
            let reply = client.get(&["v1", "grants"], &query).await?;
            emit_named(global, &client, &reply, &["partner", "api"], |r, names| {
                let mut t = Table::new(&[
                    "ID", "PARTNER", "API", "STATUS", "SCOPES", "CEILING", "REGIONS", "EXPIRES",
                ]);
                for g in items(r) {
                    t.row(vec![
                        field(g, "id"),
                        names.field(g, "partner"),
                        names.field(g, "api"),
                        field(g, "status"),
                        field(g, "scopes"),
                        field(g, "data_class_ceiling"),
                        field(g, "regions"),
                        short_time(g, "expires_at"),
                    ]);
                }
                t.print();
                next_page_hint(r);
            })
            .await?;
        }
        GrantCmd::Suspend { id, reason } => lifecycle(global, &id, "suspend", reason).await?,
        GrantCmd::Resume { id, reason } => lifecycle(global, &id, "resume", reason).await?,
        GrantCmd::Revoke { id, reason } => lifecycle(global, &id, "revoke", reason).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(global: &GlobalArgs, id: &str, body: &Value) -> anyhow::Result<()> {
    let client = connect(global)?;
    let reply = client
        .post(&["v1", "grants", id, "approvals"], body)
        .await?;
    summarise(global, &client, &reply).await
}

async fn summarise(global: &GlobalArgs, client: &Client, reply: &Value) -> anyhow::Result<()> {
    emit_named(global, client, reply, &["partner", "api"], print_summary).await
}

/// The JSON body of `POST /v1/grants/{id}/approvals`.
fn decision_body(
    decision: &str,
    justification: String,
    ticket: Option<String>,
    data_exception: Option<String>,
) -> Value {
    let mut body = Map::new();
    body.insert("decision".into(), json!(decision));
    body.insert("justification".into(), json!(justification));
    if let Some(t) = ticket {
        body.insert("ticket".into(), json!(t));
    }
    if let Some(e) = data_exception {
        body.insert("data_exception".into(), json!(e));
    }
    Value::Object(body)
}

async fn lifecycle(
    global: &GlobalArgs,
    id: &str,
    verb: &str,
    reason: String,
) -> anyhow::Result<()> {
    let client = connect(global)?;
    let reply = client
        .post(&["v1", "grants", id, verb], &json!({ "reason": reason }))
        .await?;
    summarise(global, &client, &reply).await
}

/// The JSON body of `POST /v1/grants`; `clock` resolves `--for`.
pub fn request_body(args: &RequestArgs, clock: &dyn charter_core::Clock) -> anyhow::Result<Value> {
    let expires_at = match (args.expires_at, args.duration) {
        (Some(at), _) => at,
        (None, Some(d)) => clock
            .now()
            .checked_add(d)
            .map_err(|_| anyhow::anyhow!("--for {d:#} reaches past the end of time"))?,
        (None, None) => anyhow::bail!("give --expires-at or --for"),
    };
    let mut body = Map::new();
    body.insert("partner".into(), json!(args.partner));
    body.insert("api".into(), json!(args.api));
    body.insert("use_case".into(), json!(args.use_case));
    body.insert("scopes".into(), json!(args.scopes));
    body.insert("data_class_ceiling".into(), json!(args.ceiling.as_str()));
    body.insert("regions".into(), json!(args.regions));
    body.insert("expires_at".into(), json!(expires_at.to_string()));
    if !args.environments.is_empty() {
        body.insert("environments".into(), json!(args.environments));
    }
    if let Some(ttl) = args.ttl {
        body.insert("token_ttl_seconds".into(), json!(ttl));
    }
    if let Some(days) = args.recertify_days {
        body.insert("recertify_every_days".into(), json!(days));
    }
    if let Some(n) = args.approvals {
        body.insert("approvals_required".into(), json!(n));
    }
    if let Some(basis) = &args.transfer_basis {
        body.insert("transfer_basis".into(), json!(basis));
    }
    if args.require_dpop {
        body.insert("require_dpop".into(), json!(true));
    }
    if let Some(incident) = &args.incident {
        body.insert("emergency".into(), json!({ "incident": incident }));
    }
    Ok(Value::Object(body))
}

/// One line per grant after a change: where it stands and how many approvals it has.
fn print_summary(g: &Value, names: &Names) {
    let mut t = Table::new(&["ID", "PARTNER", "API", "STATUS", "APPROVALS", "EXPIRES"]);
    t.row(vec![
        field(g, "id"),
        names.field(g, "partner"),
        names.field(g, "api"),
        field(g, "status"),
        approvals(g),
        short_time(g, "expires_at"),
    ]);
    t.print();
}

/// A grant as `key: value` lines, then its approvals.
pub fn print_grant(g: &Value, names: &Names) {
    print_detail(&names.annotate(g, REFERENCES), ORDER, &["approvals"]);
    let list = g
        .get("approvals")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    println!();
    if list.is_empty() && g.get("emergency").is_some_and(|e| !e.is_null()) {
        println!("approvals: none (break-glass: active without approval)");
        return;
    }
    if list.is_empty() {
        println!(
            "approvals: none yet ({} needed)",
            field(g, "approvals_required")
        );
        return;
    }
    let mut t = Table::new(&["APPROVER", "DECISION", "AT", "TICKET", "JUSTIFICATION"]);
    for a in list {
        t.row(vec![
            names.field(a, "approver"),
            field(a, "decision"),
            short_time(a, "at"),
            field(a, "ticket"),
            field(a, "justification"),
        ]);
    }
    t.print();
}

/// `approved/required`.
fn approvals(g: &Value) -> String {
    let approved = g
        .get("approvals")
        .and_then(Value::as_array)
        .map_or(0, |list| {
            list.iter()
                .filter(|a| a.get("decision").and_then(Value::as_str) == Some("approve"))
                .count()
        });
    format!("{approved}/{}", field(g, "approvals_required"))
}

fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("expected an RFC 3339 timestamp such as 2027-03-01T00:00:00Z ({e})"))
}

/// `90d`, `4h`, `30m`, `45s`, `2w`.
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    const HINT: &str = "expected a number and a unit: 90d, 4h, 30m, 45s or 2w";
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| HINT.to_owned())?;
    let (number, unit) = s.split_at(split);
    let n: i64 = number.parse().map_err(|_| HINT.to_owned())?;
    let per: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(HINT.to_owned()),
    };
    if n == 0 {
        return Err("the duration must be longer than zero".into());
    }
    n.checked_mul(per)
        .map(SignedDuration::from_secs)
        .ok_or_else(|| "the duration is too long".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use charter_server::clock::ManualClock;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: GrantCmd,
    }

    fn parse(args: &[&str]) -> Result<GrantCmd, clap::Error> {
        let mut all = vec!["t", "request"];
        all.extend_from_slice(args);
        Wrap::try_parse_from(all).map(|w| w.cmd)
    }

    const BASE: &[&str] = &[
        "--partner",
        "prt_1",
        "--api",
        "api_1",
        "--use-case",
        "Shipment tracking",
        "--scope",
        "orders:read,orders:write",
        "--ceiling",
        "confidential",
        "--region",
        "eu",
    ];

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90d"),
            Ok(SignedDuration::from_hours(90 * 24))
        );
        assert_eq!(parse_duration("4h"), Ok(SignedDuration::from_hours(4)));
        assert_eq!(parse_duration("30m"), Ok(SignedDuration::from_mins(30)));
        assert_eq!(
            parse_duration("2w"),
            Ok(SignedDuration::from_hours(14 * 24))
        );
        for bad in [
            "",
            "90",
            "d",
            "0d",
            "9x",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_body_from_for() {
        let mut args = BASE.to_vec();
        args.extend(["--for", "90d", "--incident", "INC-7", "--ttl", "300"]);
        let GrantCmd::Request(req) = parse(&args).unwrap() else {
            panic!("not a request")
        };
        let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let body = request_body(&req, &clock).unwrap();
        assert_eq!(
            body,
            json!({
                "partner": "prt_1", "api": "api_1", "use_case": "Shipment tracking",
                "scopes": ["orders:read", "orders:write"], "data_class_ceiling": "confidential",
                "regions": ["eu"], "expires_at": "2026-04-01T00:00:00Z",
                "token_ttl_seconds": 300, "emergency": {"incident": "INC-7"},
            })
        );
    }

    #[test]
    fn approvals_carry_the_data_exception() {
        let w = Wrap::try_parse_from([
            "t",
            "approve",
            "grt_1",
            "--justification",
            "Contract ACM-2025-17",
            "--data-exception",
            "DPA signed, customer owns the risk",
        ])
        .unwrap();
        let GrantCmd::Approve {
            justification,
            ticket,
            data_exception,
            ..
        } = w.cmd
        else {
            panic!("not approve")
        };
        assert_eq!(
            decision_body("approve", justification, ticket, data_exception),
            json!({ "decision": "approve", "justification": "Contract ACM-2025-17",
                    "data_exception": "DPA signed, customer owns the risk" })
        );
        assert_eq!(
            decision_body("reject", "no".into(), Some("CHG-1".into()), None),
            json!({ "decision": "reject", "justification": "no", "ticket": "CHG-1" })
        );
        assert!(
            Wrap::try_parse_from([
                "t",
                "reject",
                "grt_1",
                "--justification",
                "x",
                "--data-exception",
                "y"
            ])
            .is_err(),
            "a rejection records no exception"
        );
    }

    #[test]
    fn expiry_is_required_and_exclusive() {
        assert!(parse(BASE).is_err());
        let mut both = BASE.to_vec();
        both.extend(["--for", "1d", "--expires-at", "2027-01-01T00:00:00Z"]);
        assert!(parse(&both).is_err());
        let mut at = BASE.to_vec();
        at.extend(["--expires-at", "2027-01-01T00:00:00+01:00"]);
        let GrantCmd::Request(req) = parse(&at).unwrap() else {
            panic!("not a request")
        };
        let body = request_body(&req, &ManualClock::new(Timestamp::UNIX_EPOCH)).unwrap();
        assert_eq!(body["expires_at"], "2026-12-31T23:00:00Z");
    }
}
