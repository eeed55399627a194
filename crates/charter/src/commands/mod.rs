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
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde_json::Value;

use crate::GlobalArgs;
use crate::client::{Client, load_token};
use crate::names::Names;

/// A clap value parser for one of charter-core's closed enums: the possible values (listed
/// by `--help`, each with its `help` line when there is one) are the core type's wire names,
/// and the parsed value is the core type itself — the CLI keeps no copy of the names.
pub fn core_enum<T>(
    all: &'static [T],
    as_str: fn(T) -> &'static str,
    help: fn(T) -> Option<&'static str>,
) -> impl TypedValueParser<Value = T>
where
    T: Copy + Send + Sync + 'static + std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let values = all.iter().map(move |&v| {
        let value = PossibleValue::new(as_str(v));
        match help(v) {
            Some(text) => value.help(text),
            None => value,
        }
    });
    PossibleValuesParser::new(values).try_map(|name| name.parse::<T>())
}

/// No per-value help: the names say it all.
pub fn no_help<T>(_: T) -> Option<&'static str> {
    None
}

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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand)]
    enum Cmd {
        #[command(subcommand)]
        Principal(super::principal::PrincipalCmd),
        #[command(subcommand)]
        Partner(super::partner::PartnerCmd),
        #[command(subcommand)]
        Grant(super::grant::GrantCmd),
        #[command(subcommand)]
        Breakglass(super::breakglass::BreakglassCmd),
        #[command(subcommand)]
        Credential(super::credential::CredentialCmd),
        #[command(subcommand)]
        Review(super::review::ReviewCmd),
    }

    /// The long help of `charter <path…>`.
    fn help(path: &[&str]) -> String {
        let mut cmd = Cli::command();
        for name in path {
            cmd = cmd.find_subcommand(name).unwrap().clone();
        }
        cmd.render_long_help().to_string()
    }

    #[test]
    fn help_lists_the_possible_values_with_their_descriptions() {
        for (path, values) in [
            (
                &["principal", "add"][..],
                &[
                    "admin",
                    "api_owner",
                    "steward",
                    "approver",
                    "auditor",
                    "gateway",
                ][..],
            ),
            (
                &["partner", "add"],
                &["direct", "reseller", "saas_connector"],
            ),
            (
                &["grant", "request"],
                &["public", "internal", "confidential", "restricted"],
            ),
            (
                &["breakglass", "open"],
                &["public", "internal", "confidential", "restricted"],
            ),
            (
                &["credential", "issue"],
                &["client_secret", "private_key_jwt"],
            ),
            (
                &["review", "list"],
                &["open", "completed", "recertification", "post_incident"],
            ),
            (&["review", "attest"], &["keep", "reduce", "revoke"]),
        ] {
            let text = help(path);
            for value in values {
                assert!(
                    text.contains(value),
                    "{path:?} --help lacks {value}:\n{text}"
                );
            }
        }
        assert!(
            help(&["partner", "add"]).contains("saas_connector: The vendor runs the integration")
        );
        assert!(help(&["review", "attest"]).contains("reduce: Still needed, but only the scopes"));
    }

    #[test]
    fn values_parse_into_core_types_and_unknown_ones_are_refused() {
        use super::principal::PrincipalCmd;
        let parsed = Cli::try_parse_from([
            "t",
            "principal",
            "add",
            "--name",
            "ops",
            "--role",
            "api_owner,steward",
            "--role",
            "gateway",
        ])
        .unwrap();
        let Cmd::Principal(PrincipalCmd::Add { roles, .. }) = parsed.cmd else {
            panic!("not principal add");
        };
        use charter_core::Role;
        assert_eq!(roles, [Role::ApiOwner, Role::Steward, Role::Gateway]);

        for bad in [
            &["principal", "add", "--name", "x", "--role", "root"][..],
            &["principal", "add", "--name", "x", "--role", "Admin"],
            &[
                "partner",
                "add",
                "--name",
                "x",
                "--kind",
                "saas-connector",
                "--region",
                "eu",
            ],
            &["credential", "issue", "--grant", "grt_x", "--kind", "mtls"],
            &["review", "list", "--status", "closed"],
        ] {
            let argv = std::iter::once("t").chain(bad.iter().copied());
            let err = Cli::try_parse_from(argv).err().unwrap();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::InvalidValue,
                "{bad:?}: {err}"
            );
            assert!(err.to_string().contains("possible values"), "{err}");
        }
    }
}
