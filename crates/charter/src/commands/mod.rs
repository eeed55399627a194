//! The admin verbs. Each submodule mirrors one resource of the admin API: it turns flags
//! into a JSON request, sends it with [`crate::client::Client`], and prints the reply as a
//! table (or, with `--json`, as the server sent it). `token` is the exception: it talks to
//! the OAuth token endpoint as a partner workload would.

pub mod api;
pub mod audit;
pub mod breakglass;
pub mod compliance;
pub mod credential;
pub mod evidence;
pub mod findings;
pub mod grant;
pub mod key;
pub mod partner;
pub mod principal;
pub mod review;
pub mod token;

use clap::Args;
use serde_json::Value;

use crate::GlobalArgs;
use crate::client::{Client, load_token};
use crate::names::Names;

/// `--limit` and `--after` on list verbs.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// Items per page (1–500; the server's default is 50).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue after this cursor (the `next` of the previous page).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
}

impl PageArgs {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "limit",
                self.limit.map(|l| l.to_string()).unwrap_or_default(),
            ),
            ("after", self.after.clone().unwrap_or_default()),
        ]
    }
}

/// A client for the server and token the global options name.
pub fn connect(global: &GlobalArgs) -> anyhow::Result<Client> {
    let token = load_token(global.token_file.as_deref())?;
    Client::new(&global.server, token)
}

/// Prints a reply: raw JSON with `--json`, else through `human`.
pub fn emit(global: &GlobalArgs, reply: &Value, human: impl FnOnce(&Value)) -> anyhow::Result<()> {
    if global.json {
        println!("{}", serde_json::to_string_pretty(reply)?);
    } else {
        human(reply);
    }
    Ok(())
}

/// Prints a reply: raw JSON with `--json`, else through `human`, which gets the names of
/// the partners, APIs and principals the reply refers to under `keys` (see
/// [`crate::names`]).
pub async fn emit_named(
    global: &GlobalArgs,
    client: &Client,
    reply: &Value,
    keys: &[&str],
    human: impl FnOnce(&Value, &Names),
) -> anyhow::Result<()> {
    if global.json {
        println!("{}", serde_json::to_string_pretty(reply)?);
    } else {
        let names = Names::lookup(client, reply, keys).await;
        human(reply, &names);
    }
    Ok(())
}

/// The `items` of a list reply.
pub fn items(reply: &Value) -> &[Value] {
    reply
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Tells the reader how to fetch the next page, if there is one.
pub fn next_page_hint(reply: &Value) {
    if let Some(next) = reply.get("next").and_then(Value::as_str) {
        eprintln!("more results: repeat with --after {next}");
    }
}

/// The `id` of a reply, for follow-up calls.
pub fn id_of(v: &Value) -> anyhow::Result<String> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the server's reply has no id"))
}
