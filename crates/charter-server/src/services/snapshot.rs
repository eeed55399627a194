//! What the posture rules look at, read once per request: every partner, API, grant,
//! credential, principal, review, offboarding and signing key, the settings the rules compare
//! against, and the facts derived from the audit log (usage per grant, source networks per
//! client id, access decisions and outcomes, the chain's verdict).
//!
//! Invariant: [`Snapshot::load`] is the only place that reads the store for findings and
//! compliance; the rules in [`super::findings`] and [`super::compliance`] are pure functions
//! of a `Snapshot`, so they are tested by building one by hand. An audit-derived fact that
//! was not read is absent, and a rule concludes nothing from an absent fact (usage not read is
//! not "unused").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

use charter_core::offboarding::Offboarding;
use charter_core::review::Review;
use charter_core::{Api, Grant, Partner, Principal};
use charter_evidence::{ChainBreak, ChainHead, action};
use charter_store::{CredentialRecord, ListFilter, Record};
use jiff::{SignedDuration, Timestamp};

use super::{compliance, findings};
use crate::error::ApiResult;
use crate::keyring::KeyRecord;
use crate::repo::Repo;
use crate::settings::Settings;
use crate::usage::{self, ClientSources, Scan};

/// Which audit-derived facts a request needs (the objects are always read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// Per live grant: the last allowed call in the `grant_unused` window and the scopes used
    /// over its review period.
    pub usage: bool,
    /// Source networks per client id over the `credential_shared` window.
    pub sources: bool,
    /// Refused token requests per client id over the `credential_guessing` window.
    pub refusals: bool,
    /// Access decisions and outcomes over the compliance window, and the chain's verdict.
    pub access_log: bool,
}

impl Reads {
    pub const ALL: Self = Self {
        usage: true,
        sources: true,
        refusals: true,
        access_log: true,
    };
}

/// Usage facts read from `access.decision` records.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Per grant id: the last allowed call in `[now − UNUSED_DAYS, now]` (`None`: no call),
    /// for each live grant active for that whole window.
    pub last_call: HashMap<String, Option<Timestamp>>,
    /// Per grant id: the grant's scopes with an allowed call over its review period ending
    /// now, for each live grant active for that whole period.
    pub used_scopes: HashMap<String, BTreeSet<String>>,
    /// Per client id: where it called from over the last `SHARED_WINDOW_HOURS`.
    pub sources: BTreeMap<String, ClientSources>,
    pub sources_scan: Scan,
    /// Per client id of a known credential: its refused authentications over the last
    /// `GUESSING_WINDOW_HOURS`.
    pub refusals: BTreeMap<String, Refusals>,
}

/// Refused client authentications of one known client id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refusals {
    /// Wrong secrets, invalid or replayed assertions.
    pub failures: u64,
    /// Its failures went past the throttle at least once.
    pub throttled: bool,
    pub credential: Option<String>,
    pub grant: Option<String>,
    pub partner: Option<String>,
    /// Source addresses the failures came from.
    pub sources: BTreeSet<String>,
}

/// The refusal reasons that are someone trying credentials.
const GUESSES: [&str; 3] = ["secret_mismatch", "assertion_invalid", "assertion_replayed"];

/// One `access.decision` record, as the compliance rules need it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionFact {
    pub seq: u64,
    pub at: Timestamp,
    /// The grant it was judged against (`""` when none).
    pub target: String,
    pub allowed: bool,
    pub request_id: Option<String>,
    /// The record's reason (a denial's reason code).
    pub reason: Option<String>,
}

/// One `access.outcome` record (a call that reached an upstream).
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeFact {
    pub seq: u64,
    pub target: String,
    pub request_id: Option<String>,
}

/// Facts of the compliance window.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Start of the window (`now − WINDOW_DAYS`).
    pub since: Timestamp,
    /// Decisions from `since − DECISION_LEAD` on, newest first (the lead only pairs
    /// outcomes early in the window with their decision).
    pub decisions: Vec<DecisionFact>,
    pub decisions_scan: Scan,
    /// Outcomes from `since` on, newest first.
    pub outcomes: Vec<OutcomeFact>,
    pub outcomes_scan: Scan,
    /// The whole chain's verdict; `None` when it was not verified for this snapshot.
    pub chain: Option<Result<ChainHead, ChainBreak>>,
}

impl AccessLog {
    /// Nothing read: no decisions, no outcomes, the chain not verified.
    pub fn unread(since: Timestamp) -> Self {
        Self {
            since,
            decisions: Vec::new(),
            decisions_scan: Scan::default(),
            outcomes: Vec::new(),
            outcomes_scan: Scan::default(),
            chain: None,
        }
    }
}

/// Everything the rules look at, as of `taken_at`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken_at: Timestamp,
    pub partners: Vec<Partner>,
    pub apis: Vec<Api>,
    pub grants: Vec<Grant>,
    pub credentials: Vec<CredentialRecord>,
    pub principals: Vec<Principal>,
    pub reviews: Vec<Review>,
    /// In creation order.
    pub offboardings: Vec<Offboarding>,
    /// Token-signing keys.
    pub keys: Vec<KeyRecord>,
    /// The server's default (and highest) credential maximum age.
    pub policy_max_age_days: u32,
    /// Whether this node's live view is fresh.
    pub feed_fresh: bool,
    /// Per API id: the revision this node's live view holds (`None`: not in the view).
    pub live_revisions: HashMap<String, Option<u32>>,
    pub usage: Usage,
    pub access: AccessLog,
}

impl Snapshot {
    /// Reads the snapshot: every object, then the audit-derived facts `reads` asks for.
    pub async fn load(
        repo: &Repo,
        settings: &Settings,
        feed_fresh: bool,
        reads: Reads,
    ) -> ApiResult<Self> {
        let now = repo.now();
        let apis: Vec<Api> = all(repo).await?;
        let live_revisions = apis
            .iter()
            .map(|a| {
                let live = repo.live.api(a.id.as_str()).map(|l| l.revision);
                (a.id.to_string(), live)
            })
            .collect();
        let mut s = Self {
            taken_at: now,
            partners: all(repo).await?,
            apis,
            grants: all(repo).await?,
            credentials: all(repo).await?,
            principals: all(repo).await?,
            reviews: all(repo).await?,
            offboardings: all(repo).await?,
            keys: all(repo).await?,
            policy_max_age_days: settings.credential_max_age_days,
            feed_fresh,
            live_revisions,
            usage: Usage::default(),
            access: AccessLog::unread(compliance::window_start(now)),
        };
        if reads.usage {
            s.usage.read_grants(repo, &s.grants, now).await?;
        }
        if reads.sources {
            let since = now - SignedDuration::from_hours(findings::SHARED_WINDOW_HOURS);
            let (sources, scan) = usage::sources_by_client(repo.store.as_ref(), since, now).await?;
            s.usage.sources = sources;
            s.usage.sources_scan = scan;
        }
        if reads.refusals {
            let since = now - SignedDuration::from_hours(findings::GUESSING_WINDOW_HOURS);
            let refusals = &mut s.usage.refusals;
            usage::scan_action(
                repo.store.as_ref(),
                action::TOKEN_REFUSED,
                None,
                since,
                now,
                |_, r, _| {
                    let text = |k: &str| r.details[k].as_str().map(str::to_owned);
                    let (Some(client), Some(credential)) = (text("client_id"), text("credential"))
                    else {
                        return ControlFlow::Continue(());
                    };
                    let reason = r.reason.as_deref().unwrap_or("");
                    let guess = GUESSES.contains(&reason);
                    let throttled = reason == "rate_limited";
                    if guess || throttled {
                        let e = refusals.entry(client).or_default();
                        e.failures += u64::from(guess);
                        e.throttled |= throttled;
                        e.credential = Some(credential);
                        e.grant = text("grant");
                        e.partner = text("partner");
                        if let Some(src) = text("source") {
                            e.sources.insert(src);
                        }
                    }
                    ControlFlow::Continue(())
                },
            )
            .await?;
        }
        if reads.access_log {
            s.access.read(repo).await?;
        }
        Ok(s)
    }
}

/// Every object of `T`'s kind.
async fn all<T: Record>(repo: &Repo) -> ApiResult<Vec<T>> {
    let all = repo.list_all::<T>(ListFilter::default()).await?;
    Ok(all.into_iter().map(|v| v.value).collect())
}

impl Usage {
    /// Usage of each live grant over the windows the rules ask about, for the grants active
    /// for the whole window (a younger grant cannot have gone unused for it).
    async fn read_grants(
        &mut self,
        repo: &Repo,
        grants: &[Grant],
        now: Timestamp,
    ) -> ApiResult<()> {
        let store = repo.store.as_ref();
        for g in grants.iter().filter(|g| findings::is_active(g, now)) {
            if let Some(since) = findings::unused_window(g, now) {
                let last = usage::last_allowed_call(store, g.id.as_str(), since, now).await?;
                self.last_call.insert(g.id.to_string(), last);
            }
            if let Some(since) = findings::review_period(g, now) {
                let used = usage::used_scopes(store, g, since, now).await?;
                self.used_scopes.insert(g.id.to_string(), used);
            }
        }
        Ok(())
    }
}

impl AccessLog {
    /// The decisions and outcomes of the window, and the chain's verdict.
    async fn read(&mut self, repo: &Repo) -> ApiResult<()> {
        let store = repo.store.as_ref();
        let mut decisions = Vec::new();
        self.decisions_scan = usage::scan_action(
            store,
            action::ACCESS_DECISION,
            None,
            self.since - compliance::DECISION_LEAD,
            Timestamp::MAX,
            |seq, r, at| {
                decisions.push(DecisionFact {
                    seq,
                    at,
                    target: r.target.clone(),
                    allowed: r.details["decision"] == "allow",
                    request_id: r.details["request_id"].as_str().map(str::to_owned),
                    reason: r.reason.clone(),
                });
                ControlFlow::Continue(())
            },
        )
        .await?;
        let mut outcomes = Vec::new();
        self.outcomes_scan = usage::scan_action(
            store,
            action::ACCESS_OUTCOME,
            None,
            self.since,
            Timestamp::MAX,
            |seq, r, _| {
                outcomes.push(OutcomeFact {
                    seq,
                    target: r.target.clone(),
                    request_id: r.details["request_id"].as_str().map(str::to_owned),
                });
                ControlFlow::Continue(())
            },
        )
        .await?;
        self.decisions = decisions;
        self.outcomes = outcomes;
        self.chain = Some(charter_store::verify_chain(store).await?);
        Ok(())
    }
}

/// Hand-built snapshots for the rules' tests: no server, no store.
#[cfg(test)]
pub(crate) mod fixture {
    use charter_core::credential::DEFAULT_MAX_AGE_DAYS;
    use charter_core::values::{
        ApiName, Audience, DataClass, Environment, Method, Name, PathTemplate, Region, Scope,
        UpstreamUrl,
    };
    use charter_core::{
        ApiId, Approval, ApprovalDecision, Credential, CredentialId, CredentialKind, GrantId,
        GrantStatus, Operation, PartnerId, PartnerKind, PartnerStatus, PrincipalId, Role,
    };

    use super::*;

    pub fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The snapshot's time in every test.
    pub fn now() -> Timestamp {
        ts("2026-11-30T10:00:00Z")
    }

    pub fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    pub fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    pub fn region(s: &str) -> charter_core::values::Region {
        Region::parse(s).unwrap()
    }

    pub fn pid(n: u8) -> PrincipalId {
        PrincipalId::generate(1, [n; 10])
    }

    pub fn principal(n: u8, disabled: bool) -> Principal {
        Principal {
            id: pid(n),
            name: name(&format!("person-{n}")),
            roles: vec![Role::Approver],
            created_at: now() - days(100),
            token_expires_at: now() + days(30),
            disabled,
        }
    }

    /// A direct partner processing in the EU, owned by principal `owner`.
    pub fn partner(n: u8, owner: u8) -> Partner {
        Partner {
            id: PartnerId::generate(2, [n; 10]),
            name: name(&format!("Partner {n}")),
            kind: PartnerKind::Direct,
            regions: vec![region("eu")],
            owners: vec![pid(owner)],
            status: PartnerStatus::Active,
            created_at: now() - days(100),
            updated_at: now() - days(100),
            owner_changes: Vec::new(),
        }
    }

    /// The orders API (two operations, EU data), owned by principal `owner`.
    pub fn api(owner: u8) -> Api {
        let op = |scope: &str, path: &str| Operation {
            scope: Scope::parse(scope).unwrap(),
            method: Method::Get,
            path: PathTemplate::parse(path).unwrap(),
            data_class: DataClass::Internal,
            region: region("eu"),
        };
        Api {
            id: ApiId::generate(3, [1; 10]),
            name: ApiName::parse("orders").unwrap(),
            audience: Audience::parse("https://api.example.com/orders").unwrap(),
            upstream: UpstreamUrl::parse("http://127.0.0.1:9").unwrap(),
            owner: pid(owner),
            operations: vec![
                op("orders:read", "/orders/{id}"),
                op("orders:list", "/orders"),
            ],
            revision: 1,
            created_at: now() - days(100),
            updated_at: now() - days(100),
        }
    }

    /// An active grant of `p` on `a`, activated `age` ago, ending in 200 days, approved by
    /// the partner's first owner; recertified every 90 days.
    pub fn grant(n: u8, p: &Partner, a: &Api, age: SignedDuration) -> Grant {
        let activated = now() - age;
        Grant {
            id: GrantId::generate(4, [n; 10]),
            partner: p.id.clone(),
            api: a.id.clone(),
            use_case: name("Delivery sync"),
            scopes: a.operations.iter().map(|o| o.scope.clone()).collect(),
            data_class_ceiling: DataClass::Confidential,
            regions: vec![region("eu")],
            environments: vec![Environment::parse("production").unwrap()],
            transfer_basis: None,
            time_window: None,
            require_dpop: false,
            data_exception_required: false,
            emergency: None,
            expires_at: now() + days(200),
            token_ttl_seconds: 600,
            recertify_every_days: 90,
            approvals_required: 1,
            status: GrantStatus::Active,
            status_reason: None,
            requested_by: pid(50),
            requested_at: activated,
            approvers: p.owners.clone(),
            approvals: vec![Approval {
                approver: p.owners[0].clone(),
                decision: ApprovalDecision::Approve,
                justification: name("ok"),
                ticket: None,
                data_exception: None,
                at: activated,
            }],
            activated_at: Some(activated),
            review_due_at: Some(now() + days(60)),
            ended_at: None,
            epoch: 0,
        }
    }

    /// A client-secret credential of `g` issued `age` ago with the default maximum age.
    pub fn credential(n: u8, g: &Grant, age: SignedDuration) -> CredentialRecord {
        let credential = Credential::new(
            CredentialId::generate(5, [n; 10]),
            g,
            format!("chc_{n}"),
            CredentialKind::ClientSecret,
            DEFAULT_MAX_AGE_DAYS,
            None,
            now() - age,
        )
        .unwrap();
        CredentialRecord {
            credential,
            verifiers: Vec::new(),
        }
    }

    /// Nothing at all, as of [`now`].
    pub fn empty() -> Snapshot {
        Snapshot {
            taken_at: now(),
            partners: Vec::new(),
            apis: Vec::new(),
            grants: Vec::new(),
            credentials: Vec::new(),
            principals: Vec::new(),
            reviews: Vec::new(),
            offboardings: Vec::new(),
            keys: Vec::new(),
            policy_max_age_days: DEFAULT_MAX_AGE_DAYS,
            feed_fresh: true,
            live_revisions: HashMap::new(),
            usage: Usage::default(),
            access: AccessLog::unread(compliance::window_start(now())),
        }
    }

    /// Principals 1 (partner owner) and 9 (API owner), partner 1, the orders API, and one
    /// grant active for 100 days with a credential issued 10 days ago.
    pub fn world() -> Snapshot {
        let mut s = empty();
        s.principals = vec![principal(1, false), principal(9, false)];
        s.partners = vec![partner(1, 1)];
        s.apis = vec![api(9)];
        let g = grant(1, &s.partners[0], &s.apis[0], days(100));
        s.credentials = vec![credential(1, &g, days(10))];
        s.grants = vec![g];
        s.live_revisions = s
            .apis
            .iter()
            .map(|a| (a.id.to_string(), Some(a.revision)))
            .collect();
        s
    }
}
