//! Cursor pagination: `?limit=&cursor=` in, `{items, nextCursor}` out.

use crate::problem::Problem;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 500;

/// Pagination query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    /// Page size (1-500, default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page's `nextCursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The validated page size.
    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l),
            Some(_) => Err(Problem::validation(format!("limit must be between 1 and {MAX_LIMIT}"))),
        }
    }

    /// The decoded cursor key.
    pub fn key(&self) -> Result<Option<String>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| Problem::validation("cursor is not valid"))
            })
            .transpose()
    }

    /// The cursor as an integer key.
    pub fn int_key(&self) -> Result<Option<i64>, Problem> {
        self.key()?
            .map(|k| k.parse::<i64>().map_err(|_| Problem::validation("cursor is not valid")))
            .transpose()
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor of the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page; a full page gets a cursor made from its last item's key.
    pub fn new(items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if items.len() as i64 >= limit {
            items.last().map(|last| URL_SAFE_NO_PAD.encode(key(last)))
        } else {
            None
        };
        Page { items, next_cursor }
    }
}
