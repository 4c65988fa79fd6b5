//! Lists in pages (SPEC §16): every list route answers at most [`MAX_PAGE`] items and a
//! `nextToken` where the next page starts, so no answer grows with the number of records
//! (API Gateway and Lambda cap an answer at 6 MB; a project's history grows every hour).
//!
//! A page starts strictly after a *position*: the sort key of the last item of the page
//! before. Stores order a list by (instant, tie-break) and write a position as
//! `<13-digit epoch milliseconds>#<tie-break>` ([`instant_position`]), which sorts as text
//! in the same order, so the in-memory store compares strings, SQLite compares the row
//! `(ms, tie-break)` and DynamoDB puts it in the key condition (`sk < :after`). Clusters,
//! listed by id, use the id. A position never names an item that must still exist: a page
//! after a deleted item starts where that item was.
//!
//! The `nextToken` a client sees is the position in URL-safe base64, opaque on purpose: it
//! is ours to change, and it needs no escaping in a query string.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::error::EngineError;

/// The most items one list answer carries, and how many it carries when the request does
/// not say (SPEC §16: the newest 1,000 and a `nextToken`).
pub const MAX_PAGE: usize = 1000;

/// Which page a store lists: at most `limit` items, strictly after the position `after`
/// (one the same store gave as a page's [`Page::next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<String>,
}

impl PageRequest {
    /// The first `limit` items.
    pub fn first(limit: usize) -> PageRequest {
        PageRequest { limit, after: None }
    }

    /// Every item, in one page (for tests and small internal lists).
    pub fn everything() -> PageRequest {
        PageRequest::first(usize::MAX)
    }

    /// The page after `position`.
    pub fn after(limit: usize, position: impl Into<String>) -> PageRequest {
        PageRequest {
            limit,
            after: Some(position.into()),
        }
    }

    /// How many items a store fetches to know whether another page follows.
    pub fn fetch(&self) -> usize {
        self.limit.saturating_add(1)
    }
}

/// One page of a list and where the next starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Cuts a page out of `candidates`: the items after the request's position, in list
    /// order, of which a store fetched up to [`PageRequest::fetch`]. One more than the
    /// limit means another page follows, starting after the last item kept.
    pub fn cut(
        mut candidates: Vec<T>,
        request: &PageRequest,
        position: impl Fn(&T) -> String,
    ) -> Page<T> {
        if candidates.len() > request.limit {
            candidates.truncate(request.limit);
            let next = candidates.last().map(position);
            Page {
                items: candidates,
                next,
            }
        } else {
            Page {
                items: candidates,
                next: None,
            }
        }
    }

    /// A page of a whole list held in memory, in list order (`ascending` when positions
    /// grow along the list, as for jobs and clusters; newest-first lists descend).
    pub fn of_list(
        all: impl IntoIterator<Item = T>,
        request: &PageRequest,
        ascending: bool,
        position: impl Fn(&T) -> String,
    ) -> Page<T> {
        let after = request.after.as_deref();
        let candidates = all
            .into_iter()
            .filter(|item| match after {
                None => true,
                Some(after) if ascending => position(item).as_str() > after,
                Some(after) => position(item).as_str() < after,
            })
            .take(request.fetch())
            .collect();
        Page::cut(candidates, request, position)
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// The position of an item ordered by `instant`, then `tie_break`.
pub fn instant_position(instant: DateTime<Utc>, tie_break: &str) -> String {
    format!("{:013}#{tie_break}", instant.timestamp_millis().max(0))
}

/// Splits a position of [`instant_position`] into its milliseconds and tie-break (for
/// stores that compare them as values). `None` for anything else.
pub fn split_instant_position(position: &str) -> Option<(i64, &str)> {
    let (ms, rest) = position.split_once('#')?;
    if ms.len() != 13 || !ms.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    Some((ms.parse().ok()?, rest))
}

/// What a list request asks for, as the API takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub next_token: Option<String>,
}

/// One page of a list as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// How a list's positions look, so a token for another list (or a made-up one) is refused
/// before any store reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Positions {
    /// `<ms>#<id>`: jobs, backups.
    InstantThenId,
    /// `<ms>#<digits>`: history (the tie-break is the order of recording).
    InstantThenOrder,
    /// An id: clusters.
    Id,
}

impl ListQuery {
    /// The store's page request, or a 400 saying what to write instead.
    pub(crate) fn request(&self, positions: Positions) -> Result<PageRequest, EngineError> {
        let limit = self.limit.unwrap_or(MAX_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(EngineError::invalid(
                "limit",
                format!(
                    "A page holds 1 to {MAX_PAGE} items; {limit} is not. Leave `limit` out for \
                     {MAX_PAGE}."
                ),
            ));
        }
        let after = match &self.next_token {
            None => None,
            Some(token) => Some(decode_token(token, positions).ok_or_else(|| {
                EngineError::invalid(
                    "nextToken",
                    "This nextToken was not given by this list. Pass the `nextToken` of the \
                     previous answer unchanged, or leave it out to start from the first page.",
                )
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}

impl<T> Listed<T> {
    pub(crate) fn from_page(page: Page<T>) -> Listed<T> {
        Listed {
            items: page.items,
            next_token: page.next.map(|p| URL_SAFE_NO_PAD.encode(p)),
        }
    }
}

/// The longest position a token may carry (an id of at most a few hundred characters).
const MAX_POSITION_BYTES: usize = 512;

fn decode_token(token: &str, positions: Positions) -> Option<String> {
    if token.len() > MAX_POSITION_BYTES * 2 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let position = String::from_utf8(bytes).ok()?;
    if position.is_empty() || position.chars().any(char::is_control) {
        return None;
    }
    let shaped = match positions {
        Positions::Id => true,
        Positions::InstantThenId => split_instant_position(&position).is_some(),
        Positions::InstantThenOrder => {
            split_instant_position(&position).is_some_and(|(_, order)| {
                order.len() <= 20 && order.bytes().all(|b| b.is_ascii_digit())
            })
        }
    };
    shaped.then_some(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(request: &PageRequest, ascending: bool) -> Page<u32> {
        let list: Vec<u32> = if ascending {
            (1..=5).collect()
        } else {
            (1..=5).rev().collect()
        };
        Page::of_list(list, request, ascending, |n| format!("{n:03}"))
    }

    #[test]
    fn pages_follow_each_other_without_gap_or_repeat() {
        for ascending in [true, false] {
            let mut seen = Vec::new();
            let mut request = PageRequest::first(2);
            loop {
                let page = numbers(&request, ascending);
                seen.extend(page.items.iter().copied());
                match page.next {
                    Some(next) => request = PageRequest::after(2, next),
                    None => break,
                }
            }
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, vec![1, 2, 3, 4, 5]);
            assert_eq!(seen.len(), 5);
        }
    }

    #[test]
    fn an_exact_fit_has_no_next_page() {
        let page = numbers(&PageRequest::first(5), true);
        assert_eq!(page.items.len(), 5);
        assert_eq!(page.next, None);
        let page = numbers(&PageRequest::first(4), true);
        assert_eq!(page.next.as_deref(), Some("004"));
    }

    #[test]
    fn tokens_round_trip_and_strangers_are_refused() {
        let position = instant_position(
            DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            "abc",
        );
        assert_eq!(position, "1700000000000#abc");
        let listed = Listed::from_page(Page {
            items: vec![1],
            next: Some(position.clone()),
        });
        let token = listed.next_token.unwrap();
        let query = ListQuery {
            limit: None,
            next_token: Some(token.clone()),
        };
        let request = query.request(Positions::InstantThenId).unwrap();
        assert_eq!(request.after.as_deref(), Some(position.as_str()));
        assert_eq!(request.limit, MAX_PAGE);
        // A backups token is no history token (its tie-break is not a number).
        assert!(query.request(Positions::InstantThenOrder).is_err());
        for bad in ["", "!!!", "bm9wZQ", &"A".repeat(5000)] {
            let query = ListQuery {
                limit: None,
                next_token: Some(bad.to_owned()),
            };
            assert!(query.request(Positions::InstantThenId).is_err(), "{bad}");
        }
        for limit in [0, MAX_PAGE + 1] {
            let query = ListQuery {
                limit: Some(limit),
                next_token: None,
            };
            assert!(query.request(Positions::Id).is_err());
        }
    }
}
