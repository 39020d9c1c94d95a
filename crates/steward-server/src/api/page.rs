//! Pagination: every list answers one [`Page`] — `{"items": [...], "next_cursor": "…" | null}` —
//! and takes `?cursor=` and `?limit=` (1–500, default 100), parsed once here for all of them.
//!
//! Cursors are keyset, not offsets: a cursor is the sort key of the last item a page returned
//! (base64url of `["<list>", key]`, opaque to clients), and the next page is the rows strictly
//! after that key in the list's order (`WHERE key < $last ORDER BY key DESC LIMIT n + 1` in SQL).
//! So a row inserted while someone pages never shifts the rows after it, and paging to the end
//! returns every row that existed throughout exactly once. Handlers fetch [`PageRequest::fetch`]
//! rows (one more than the page) and hand them to [`PageRequest::page`], which keeps `limit` and
//! makes the cursor from the last one kept. A page may hold fewer than `limit` items where a
//! list filters after the query (say so in its docs); only a null `next_cursor` means the end.
//!
//! [`Paged`] is the query extractor of every list: it takes `cursor` and `limit` out of the
//! query and deserializes the rest into the list's own filters (a struct with
//! `#[serde(deny_unknown_fields)]`, or [`NoFilters`]), so an unknown parameter — a misspelt
//! filter, or `offset` / `page` from another API's habits — is a 422 naming it.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_core::submission::FieldError;
use utoipa::{IntoParams, ToSchema};

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most items one page holds.
pub const MAX_LIMIT: usize = 500;

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item converted (e.g. a domain record into its view).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// The paging parameters every list takes (documentation for OpenAPI; [`Paged`] parses them).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Parsed by `Paged`, which names a bad value; this is its schema.
pub struct PageQuery {
    /// The previous page's `next_cursor`, unchanged; absent for the first page.
    pub cursor: Option<String>,
    /// Items per page: 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A list without filters of its own: it takes only `cursor` and `limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilters {}

/// The page a caller asked for: where to start and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The decoded cursor: `[list, key]`.
    after: Option<Value>,
    limit: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            after: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

const BAD_CURSOR: &str = "is not a cursor this list gave out: pass the previous page's `next_cursor` unchanged, or leave it out for the first page";

fn bad_cursor() -> ApiError {
    ApiError::invalid_field("cursor", BAD_CURSOR)
}

impl PageRequest {
    /// Parses `cursor` and `limit` as they came in the query; every bad one is named.
    pub fn parse(
        cursor: Option<&str>,
        limit: Option<&str>,
    ) -> Result<PageRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("'{text}' is not a whole number from 1 to {MAX_LIMIT}"),
                    ));
                    DEFAULT_LIMIT
                }
            },
        };
        let after = match cursor {
            None => None,
            Some(text) => match decode(text) {
                Some(value) => Some(value),
                None => {
                    errors.push(FieldError::new("cursor", BAD_CURSOR));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(PageRequest { after, limit })
        } else {
            Err(errors)
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }

    /// The sort key the previous page of `list` ended at; a cursor of another list, or of
    /// another shape, is a 422.
    pub fn after<K: DeserializeOwned>(&self, list: &str) -> Result<Option<K>, ApiError> {
        let Some(after) = &self.after else {
            return Ok(None);
        };
        match after.as_array().map(Vec::as_slice) {
            Some([Value::String(tag), key]) if tag == list => serde_json::from_value(key.clone())
                .map(Some)
                .map_err(|_| bad_cursor()),
            _ => Err(bad_cursor()),
        }
    }

    /// The page of `rows`, fetched in the list's order with [`Self::fetch`] as the limit: the
    /// first `limit` of them, and a cursor at the last one kept when more followed.
    pub fn page<T, K: Serialize>(
        &self,
        list: &str,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> Page<T> {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next_cursor = if more {
            rows.last().map(|last| encode(list, &key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// A page of a list computed in memory, `items` already in the list's order by `key`
    /// (ascending, or descending when `descending`): the same cursor contract as a query's.
    pub fn page_in_memory<T, K>(
        &self,
        list: &str,
        items: Vec<T>,
        key: impl Fn(&T) -> K,
        descending: bool,
    ) -> Result<Page<T>, ApiError>
    where
        K: Serialize + DeserializeOwned + Ord,
    {
        let after: Option<K> = self.after(list)?;
        let rows: Vec<T> = items
            .into_iter()
            .filter(|item| match &after {
                None => true,
                Some(after) if descending => key(item) < *after,
                Some(after) => key(item) > *after,
            })
            .take(self.limit + 1)
            .collect();
        Ok(self.page(list, rows, key))
    }
}

/// The cursor for `key` in `list`: base64url (no padding) of `["list", key]`.
pub fn encode<K: Serialize>(list: &str, key: &K) -> String {
    URL_SAFE_NO_PAD.encode(json!([list, key]).to_string())
}

fn decode(cursor: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    matches!(value.as_array().map(Vec::len), Some(2)).then_some(value)
}

/// The query of a list: its page, and its own filters (`F`, whose unknown fields are refused).
#[derive(Debug)]
pub struct Paged<F = NoFilters> {
    pub page: PageRequest,
    pub filters: F,
}

impl<S: Send + Sync, F: DeserializeOwned> FromRequestParts<S> for Paged<F> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| {
            ApiError::invalid_field("(query)", format!("the query string cannot be read: {e}"))
        })?;
        let mut cursor = None;
        let mut limit = None;
        let mut rest = Vec::new();
        let mut errors = Vec::new();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "cursor" => &mut cursor,
                "limit" => &mut limit,
                _ => {
                    rest.push((key, value));
                    continue;
                }
            };
            if slot.replace(value).is_some() {
                errors.push(FieldError::new(key, "is given more than once"));
            }
        }
        let page = PageRequest::parse(cursor.as_deref(), limit.as_deref());
        // Re-encoded from the pairs just decoded, so it always encodes.
        let rest = serde_urlencoded::to_string(&rest).unwrap_or_default();
        let filters = serde_urlencoded::from_str::<F>(&rest)
            .map_err(|e| query_error(&e.to_string(), &["cursor", "limit"]));
        let page = match page {
            Ok(page) => Some(page),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let filters = match filters {
            Ok(filters) => Some(filters),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        match (page, filters) {
            (Some(page), Some(filters)) if errors.is_empty() => Ok(Paged { page, filters }),
            _ => Err(ApiError::Invalid(errors)),
        }
    }
}

/// The field error for a query `serde` could not read: an unknown parameter is named as the
/// field (with what the endpoint takes, and for `offset` / `page` that lists page by cursor).
pub fn query_error(message: &str, also_takes: &[&str]) -> FieldError {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return FieldError::new("(query)", message);
    };
    let Some((name, tail)) = rest.split_once('`') else {
        return FieldError::new("(query)", message);
    };
    let mut known: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    known.extend_from_slice(also_takes);
    let takes = if known.is_empty() {
        "this endpoint takes no query parameters".to_owned()
    } else {
        format!("this endpoint takes {}", known.join(", "))
    };
    let text = match name {
        "offset" | "page" => format!(
            "is not a parameter here: lists page by `cursor` — pass the previous answer's `next_cursor` (and `limit`, 1 to {MAX_LIMIT})"
        ),
        _ => format!("is not a parameter here: {takes}"),
    };
    FieldError::new(name, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_limit(text: Option<&str>, expected: Result<usize, ()>) {
        let parsed = PageRequest::parse(None, text)
            .map(|p| p.limit())
            .map_err(|_| ());
        assert_eq!(parsed, expected, "{text:?}");
    }

    #[test]
    fn limits_are_one_to_five_hundred_defaulting_to_a_hundred() {
        check_limit(None, Ok(100));
        check_limit(Some("1"), Ok(1));
        check_limit(Some("500"), Ok(500));
        check_limit(Some("0"), Err(()));
        check_limit(Some("501"), Err(()));
        check_limit(Some("-3"), Err(()));
        check_limit(Some("x"), Err(()));
        check_limit(Some(""), Err(()));
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_list() {
        let cursor = encode("changes", &41u64);
        let page = PageRequest::parse(Some(&cursor), None).expect("decodes");
        assert_eq!(page.after::<u64>("changes").expect("ours"), Some(41));
        assert!(
            page.after::<u64>("targets").is_err(),
            "another list's cursor"
        );
        assert!(
            page.after::<String>("changes").is_err(),
            "another key shape"
        );
        assert!(PageRequest::parse(Some("not a cursor"), None).is_err());
        assert!(PageRequest::parse(Some(&URL_SAFE_NO_PAD.encode("[1]")), None).is_err());
    }

    #[test]
    fn a_page_keeps_limit_rows_and_points_after_the_last() {
        let page = PageRequest::parse(None, Some("2")).expect("valid");
        let first = page.page("n", vec![9, 8, 7], |n| *n);
        assert_eq!(first.items, vec![9, 8]);
        let next = PageRequest::parse(first.next_cursor.as_deref(), Some("2")).expect("valid");
        assert_eq!(next.after::<i32>("n").expect("ours"), Some(8));
        let last = page.page("n", vec![2, 1], |n| *n);
        assert_eq!(last.next_cursor, None, "no row beyond the page");
    }

    #[test]
    fn in_memory_pages_visit_each_item_once_in_either_direction() {
        for descending in [false, true] {
            let mut items: Vec<u32> = (0..23).collect();
            if descending {
                items.reverse();
            }
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let request = PageRequest::parse(cursor.as_deref(), Some("5")).expect("valid");
                let page = request
                    .page_in_memory("n", items.clone(), |n| *n, descending)
                    .expect("pages");
                seen.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, items);
        }
    }

    #[test]
    fn unknown_parameters_are_named_with_what_the_endpoint_takes() {
        let e = query_error(
            "unknown field `sate`, expected one of `state`, `type`",
            &["cursor"],
        );
        assert_eq!(e.field, "sate");
        assert!(e.message.contains("state, type, cursor"), "{}", e.message);
        let e = query_error("unknown field `offset`, there are no fields", &[]);
        assert_eq!(e.field, "offset");
        assert!(e.message.contains("cursor"), "{}", e.message);
        let e = query_error("invalid type: expected bool", &[]);
        assert_eq!(e.field, "(query)");
    }
}
