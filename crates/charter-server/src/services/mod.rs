//! Charter's workflows, one module each. A service takes the [`Repo`](crate::repo::Repo) (and
//! whatever else it needs: keys, settings), applies the domain rules of `charter-core`, writes
//! the result with its audit record and returns a typed result. The admin API's handlers and
//! the console both call these functions: parse → authorise → call a service → render.

pub mod compliance;
pub mod credentials;
pub mod evidence;
pub mod findings;
pub mod grants;
pub mod issuance;
pub mod offboarding;
pub mod partners;
pub mod reviews;
pub mod snapshot;
pub mod upstreams;
