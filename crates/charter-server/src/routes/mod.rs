//! The admin API's handlers, one module per resource. Each handler parses its input on its
//! first lines, checks the caller's role, loads what it needs, applies a domain rule from
//! `charter-core`, and writes the result together with its audit record.

pub mod apis;
pub mod audit;
pub mod compliance;
pub mod credentials;
pub mod evidence;
pub mod export;
pub mod findings;
pub mod grants;
pub mod keys;
pub mod offboarding;
pub mod ops;
pub mod partners;
pub mod principals;
pub mod reviews;

use charter_core::Name;
use charter_store::{ListFilter, Record, Versioned};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// `?limit=&after=` on list routes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListReply<T> {
    pub items: Vec<T>,
    /// Cursor for `?after=`; `null` on the last page.
    pub next: Option<String>,
}

impl<T> ListReply<T> {
    /// The same page with each item rendered for the wire.
    pub fn render<W: for<'a> From<&'a T>>(self) -> ListReply<W> {
        ListReply {
            items: self.items.iter().map(W::from).collect(),
            next: self.next,
        }
    }
}

/// `{reason}` for lifecycle calls.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[schema(value_type = String)]
    pub reason: Name,
}

pub(crate) fn page_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// One page of objects of a kind that pass `visible`. The cursor advances over what was
/// read, so a filtered page may hold fewer than `limit` items and still have a `next`.
pub async fn list_page<T: Record>(
    state: &AppState,
    filter: ListFilter,
    page: Page,
    mut visible: impl FnMut(&T) -> bool,
) -> ApiResult<ListReply<T>> {
    let limit = page_limit(page.limit)?;
    let docs = state
        .repo
        .store
        .list(T::KIND, &filter, page.after.as_deref(), limit)
        .await?;
    let next = (docs.len() == limit as usize)
        .then(|| docs.last().map(|d| d.id.clone()))
        .flatten();
    let mut items = Vec::with_capacity(docs.len());
    for doc in &docs {
        let v = Versioned::<T>::from_doc(doc)?.value;
        if visible(&v) {
            items.push(v);
        }
    }
    Ok(ListReply { items, next })
}
