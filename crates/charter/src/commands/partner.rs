//! `charter partner …`: register partner organisations (kind, processing regions, business
//! owners), change their regions and owners, list and show them, and offboard them: revoke
//! everything, then show the checks that verified removal (exit 3 when one failed).

use std::process::ExitCode;

use charter_core::PartnerKind;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::{PageArgs, connect, core_enum, emit_named, items, next_page_hint};
use crate::GlobalArgs;
use crate::names::Names;
use crate::table::{Table, field, print_detail, time_secs};

fn kind_help(kind: PartnerKind) -> Option<&'static str> {
    Some(match kind {
        PartnerKind::Direct => "The partner integrates with us directly",
        PartnerKind::Reseller => "A marketplace: several business owners share one data path",
        PartnerKind::SaasConnector => "The vendor runs the integration; we own the data risk",
    })
}

#[derive(Debug, Subcommand)]
pub enum PartnerCmd {
    /// Register a partner.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = core_enum(&PartnerKind::ALL, PartnerKind::as_str, kind_help))]
        kind: PartnerKind,
        /// A processing region of the partner; repeat (or separate with commas) for several.
        #[arg(long = "region", required = true, value_delimiter = ',')]
        regions: Vec<String>,
        /// A business owner: an approver's principal id (prn_…); repeat for several.
        #[arg(long = "owner", value_delimiter = ',')]
        owners: Vec<String>,
    },
    /// List partners.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one partner.
    Show { id: String },
    /// Replace a partner's regions and/or owners.
    Update {
        id: String,
        /// The partner's processing regions (replaces them all); repeat for several.
        #[arg(long = "region", value_delimiter = ',')]
        regions: Vec<String>,
        /// The business owners, approvers' principal ids (prn_…), replacing them all; repeat
        /// for several.
        #[arg(long = "owner", value_delimiter = ',')]
        owners: Vec<String>,
    },
    /// Offboard a partner: revoke every grant and credential, then verify removal at the
    /// token endpoint, introspection and every gateway (exit 3 if a check failed).
    Offboard {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// Exit code of `partner offboard` when the offboarding is reported `failed` or
/// `incomplete`.
const OFFBOARDING_FAILED: u8 = 3;

/// The summary of an offboarding, before its checks.
const OFFBOARDING: &[&str] = &[
    "id",
    "partner",
    "status",
    "incomplete_reason",
    "reason",
    "requested_by",
    "revoked_grants",
    "revoked_credentials",
    "canaries",
    "checks",
    "started_at",
    "finished_at",
];

/// The members of an offboarding record that refer to a partner or a principal.
const OFFBOARDING_REFERENCES: &[&str] = &["partner", "requested_by"];

const ORDER: &[&str] = &[
    "id",
    "name",
    "kind",
    "status",
    "regions",
    "owners",
    "created_at",
    "updated_at",
];

pub async fn run(global: &GlobalArgs, cmd: PartnerCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PartnerCmd::Add {
            name,
            kind,
            regions,
            owners,
        } => {
            let body = json!({
                "name": name,
                "kind": kind.as_str(),
                "regions": regions,
                "owners": owners,
            });
            let client = connect(global)?;
            let reply = client.post(&["v1", "partners"], &body).await?;
            emit_named(global, &client, &reply, &["owners"], print_partner).await?;
        }
        PartnerCmd::List { page } => {
            let client = connect(global)?;
            let reply = client.get(&["v1", "partners"], &page.query()).await?;
            emit_named(global, &client, &reply, &["owners"], |r, names| {
                let mut t = Table::new(&["ID", "NAME", "KIND", "STATUS", "REGIONS", "OWNERS"]);
                for p in items(r) {
                    t.row(vec![
                        field(p, "id"),
                        field(p, "name"),
                        field(p, "kind"),
                        field(p, "status"),
                        field(p, "regions"),
                        names.field(p, "owners"),
                    ]);
                }
                t.print();
                next_page_hint(r);
            })
            .await?;
        }
        PartnerCmd::Show { id } => {
            let client = connect(global)?;
            let reply = client.get(&["v1", "partners", &id], &[]).await?;
            emit_named(global, &client, &reply, &["owners"], print_partner).await?;
        }
        PartnerCmd::Update {
            id,
            regions,
            owners,
        } => {
            let mut body = Map::new();
            if !regions.is_empty() {
                body.insert("regions".into(), json!(regions));
            }
            if !owners.is_empty() {
                body.insert("owners".into(), json!(owners));
            }
            if body.is_empty() {
                anyhow::bail!("nothing to update: give --region and/or --owner");
            }
            let client = connect(global)?;
            let reply = client
                .patch(&["v1", "partners", &id], &Value::Object(body))
                .await?;
            emit_named(global, &client, &reply, &["owners"], print_partner).await?;
        }
        PartnerCmd::Offboard { id, reason } => {
            let client = connect(global)?;
            let reply = client
                .post(
                    &["v1", "partners", &id, "offboard"],
                    &json!({ "reason": reason }),
                )
                .await?;
            emit_named(
                global,
                &client,
                &reply,
                OFFBOARDING_REFERENCES,
                print_offboarding,
            )
            .await?;
            if let Some(failed) = failed_checks(&reply) {
                match reply.get("incomplete_reason").and_then(Value::as_str) {
                    Some(why)
                        if reply.get("status").and_then(Value::as_str) == Some("incomplete") =>
                    {
                        eprintln!("offboarding INCOMPLETE: {why} — removal is not proven")
                    }
                    _ => eprintln!(
                        "offboarding FAILED: {failed} check(s) did not pass — access may remain; see the checks above"
                    ),
                }
                return Ok(ExitCode::from(OFFBOARDING_FAILED));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A partner as `key: value` lines, its owners by name where known.
fn print_partner(p: &Value, names: &Names) {
    print_detail(&names.annotate(p, &["owners"]), ORDER, &[]);
}

/// `None` for a completed offboarding; else how many of its checks did not pass. Anything
/// but `completed` counts as failed.
fn failed_checks(record: &Value) -> Option<usize> {
    if record.get("status").and_then(Value::as_str) == Some("completed") {
        return None;
    }
    Some(
        checks(record)
            .iter()
            .filter(|c| c.get("passed") != Some(&Value::Bool(true)))
            .count(),
    )
}

fn checks(record: &Value) -> &[Value] {
    record
        .get("checks")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The number of entries of the list `record[key]`.
fn count(record: &Value, key: &str) -> Value {
    json!(
        record
            .get(key)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    )
}

/// The offboarding's summary (counts instead of lists), then one row per check.
fn print_offboarding(record: &Value, names: &Names) {
    let list = checks(record);
    let passed = list
        .iter()
        .filter(|c| c.get("passed") == Some(&Value::Bool(true)))
        .count();
    let mut summary = Map::new();
    for key in [
        "id",
        "partner",
        "status",
        "incomplete_reason",
        "reason",
        "requested_by",
        "started_at",
        "finished_at",
    ] {
        summary.insert(key.into(), record.get(key).cloned().unwrap_or(Value::Null));
    }
    for key in ["revoked_grants", "revoked_credentials", "canaries"] {
        summary.insert(key.into(), count(record, key));
    }
    summary.insert(
        "checks".into(),
        json!(format!("{passed} passed, {} failed", list.len() - passed)),
    );
    let summary = names.annotate(&Value::Object(summary), OFFBOARDING_REFERENCES);
    print_detail(&summary, OFFBOARDING, &[]);
    println!();
    let mut t = Table::new(&["CHECK", "TARGET", "PASSED", "AT", "DETAIL"]);
    for c in list {
        let mark = if c.get("passed") == Some(&Value::Bool(true)) {
            "✓"
        } else {
            "✗"
        };
        t.row(vec![
            field(c, "name"),
            field(c, "target"),
            mark.into(),
            time_secs(c, "at"),
            field(c, "detail"),
        ]);
    }
    t.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_completed_offboarding_succeeds() {
        let check = |passed: bool| json!({ "name": "gateway_denies", "passed": passed });
        let done = json!({ "status": "completed", "checks": [check(true), check(true)] });
        assert_eq!(failed_checks(&done), None);
        let failed =
            json!({ "status": "failed", "checks": [check(true), check(false), check(false)] });
        assert_eq!(failed_checks(&failed), Some(2));
        let incomplete = json!({ "status": "incomplete", "checks": [check(true)] });
        assert_eq!(
            failed_checks(&incomplete),
            Some(0),
            "incomplete is not success"
        );
        assert_eq!(failed_checks(&json!({ "status": "running" })), Some(0));
        assert_eq!(failed_checks(&json!({})), Some(0));
    }

    #[test]
    fn counts_replace_lists_in_the_summary() {
        let r = json!({ "revoked_grants": ["grt_1", "grt_2"], "canaries": [] });
        assert_eq!(count(&r, "revoked_grants"), json!(2));
        assert_eq!(count(&r, "canaries"), json!(0));
        assert_eq!(count(&r, "missing"), json!(0));
    }
}
