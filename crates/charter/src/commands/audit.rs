//! `charter audit …`: the newest audit records (`tail`), and a full verification of the
//! hash chain (`verify`: exit 0 when intact, 2 when broken).

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{connect, emit, items};
use crate::GlobalArgs;
use crate::client::http_error;
use crate::table::{Table, field, time_secs};

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// The newest audit records, oldest first.
    Tail {
        /// How many records (1–500).
        #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
        n: u32,
    },
    /// Recompute the whole hash chain on the server.
    Verify,
}

/// Exit code of `audit verify` for a broken chain.
const CHAIN_BROKEN: u8 = 2;

pub async fn run(global: &GlobalArgs, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    let client = connect(global)?;
    match cmd {
        AuditCmd::Tail { n } => {
            let query = [("order", "desc".to_owned()), ("limit", n.to_string())];
            let reply = client.get(&["v1", "audit"], &query).await?;
            emit(global, &reply, |r| {
                let mut t = Table::new(&["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "REASON"]);
                for item in items(r).iter().rev() {
                    let rec = item.get("record").unwrap_or(&Value::Null);
                    t.row(vec![
                        field(item, "seq"),
                        time_secs(rec, "at"),
                        field(rec, "actor"),
                        field(rec, "action"),
                        field(rec, "target"),
                        field(rec, "reason"),
                    ]);
                }
                t.print();
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify => {
            let reply = client
                .send(Method::GET, &["v1", "audit", "verify"], &[], None)
                .await?;
            match reply.status {
                StatusCode::OK => {
                    emit(global, &reply.body, |b| {
                        let head = b.get("head").unwrap_or(&Value::Null);
                        println!(
                            "audit chain intact: {} records, head {} {}",
                            field(b, "records"),
                            field(head, "seq"),
                            field(head, "hash")
                        );
                    })?;
                    Ok(ExitCode::SUCCESS)
                }
                StatusCode::CONFLICT if reply.body.get("valid") == Some(&Value::Bool(false)) => {
                    emit(global, &reply.body, |b| {
                        println!(
                            "audit chain BROKEN at record {}: {}",
                            field(b, "first_bad_record"),
                            field(b, "error_description")
                        );
                    })?;
                    Ok(ExitCode::from(CHAIN_BROKEN))
                }
                status => Err(http_error(status, &reply.body).into()),
            }
        }
    }
}
