//! The answers to `GET …/jobs`, kept serialised until a job changes or the first run they
//! list has come (issue "a fast jobs list"; [`EngineConfig::cache_job_lists`]).
//!
//! A list of 1,000 jobs is about 450 KB of JSON: reading the records, rendering each job
//! and serialising the page cost milliseconds per request even once every schedule's view is
//! memoised ([`crate::schedule_cache`]). The answer depends only on the jobs' records and on
//! which runs are still to come, so it is exact to keep it while
//! - no job was created, changed or deleted through this engine since (a generation counter
//!   every job write bumps, read before the store so a write during a miss can only make the
//!   entry stale, never keep a stale one), and
//! - no run it lists has come yet (the earliest `nextRuns[0]` of the page).
//!
//! That holds only where this process is the only writer of jobs: the local server, which
//! owns its data directory exclusively (SPEC §12). On AWS several `jobs-api` instances and
//! the `job-resource` function write the same table, so the cache is off there.
//!
//! Bounded: at most [`MAX_ENTRIES`] pages (scope × limit × token) are kept; past that the
//! cache starts afresh.
//!
//! [`EngineConfig::cache_job_lists`]: crate::EngineConfig::cache_job_lists

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The most pages kept at once.
pub const MAX_ENTRIES: usize = 256;

/// Which page of which project's jobs: organisation, project, limit, token.
type Key = (String, String, Option<usize>, Option<String>);

#[derive(Debug)]
struct Entry {
    generation: u64,
    computed_at: DateTime<Utc>,
    /// The earliest first run of the listed jobs: the answer holds until then.
    until: Option<DateTime<Utc>>,
    body: Arc<[u8]>,
}

/// Serialised job lists of one engine.
#[derive(Debug, Default)]
pub struct JobListCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// A lookup's ticket: what a miss stores its answer under.
#[derive(Debug)]
pub struct Ticket {
    key: Key,
    generation: u64,
}

impl JobListCache {
    /// Forgets every answer: a job was created, changed or deleted.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The kept answer for this page at `now`, or the ticket to keep the one about to be
    /// made. The generation is read here, before the caller reads the store.
    pub fn lookup(
        &self,
        organization: &str,
        project: &str,
        limit: Option<usize>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Arc<[u8]>, Ticket> {
        let generation = self.generation.load(Ordering::SeqCst);
        let key = (
            organization.to_owned(),
            project.to_owned(),
            limit,
            token.map(str::to_owned),
        );
        if let Ok(entries) = self.entries.lock() {
            if let Some(entry) = entries.get(&key) {
                let fresh = entry.generation == generation
                    && now >= entry.computed_at
                    && entry.until.is_none_or(|until| now < until);
                if fresh {
                    return Ok(entry.body.clone());
                }
            }
        }
        Err(Ticket { key, generation })
    }

    /// Keeps `body`, made at `now` from the store read after [`lookup`](Self::lookup),
    /// until `until` (the earliest first run it lists) or the next job write.
    pub fn keep(
        &self,
        ticket: Ticket,
        now: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        body: Arc<[u8]>,
    ) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&ticket.key) {
            entries.clear();
        }
        entries.insert(
            ticket.key,
            Entry {
                generation: ticket.generation,
                computed_at: now,
                until,
                body,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, minute, 0)
            .single()
            .expect("a valid instant")
    }

    fn body(text: &str) -> Arc<[u8]> {
        Arc::from(text.as_bytes())
    }

    #[test]
    fn an_answer_holds_until_its_first_run_and_no_longer() {
        let cache = JobListCache::default();
        let ticket = cache
            .lookup("o", "p", None, None, at(0))
            .expect_err("empty");
        cache.keep(ticket, at(0), Some(at(30)), body("a"));
        assert_eq!(&*cache.lookup("o", "p", None, None, at(29)).unwrap(), b"a");
        assert!(cache.lookup("o", "p", None, None, at(30)).is_err());
        // A clock that went back cannot use an answer made later.
        let ticket = cache.lookup("o", "p", None, None, at(40)).unwrap_err();
        cache.keep(ticket, at(40), Some(at(50)), body("b"));
        assert!(cache.lookup("o", "p", None, None, at(35)).is_err());
    }

    #[test]
    fn a_job_write_forgets_every_answer_also_one_made_during_the_write() {
        let cache = JobListCache::default();
        let ticket = cache.lookup("o", "p", None, None, at(0)).unwrap_err();
        cache.keep(ticket, at(0), None, body("a"));
        cache.invalidate();
        assert!(cache.lookup("o", "p", None, None, at(1)).is_err());
        // A miss that read the store before a write keeps an answer the write makes stale.
        let ticket = cache.lookup("o", "p", None, None, at(1)).unwrap_err();
        cache.invalidate();
        cache.keep(ticket, at(1), None, body("old"));
        assert!(cache.lookup("o", "p", None, None, at(2)).is_err());
    }

    #[test]
    fn pages_and_projects_are_kept_apart_and_bounded() {
        let cache = JobListCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            let token = i.to_string();
            let ticket = cache
                .lookup("o", "p", Some(5), Some(&token), at(0))
                .unwrap_err();
            cache.keep(ticket, at(0), None, body(&token));
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        let ticket = cache.lookup("o", "q", None, None, at(0)).unwrap_err();
        cache.keep(ticket, at(0), None, body("q"));
        assert!(cache.lookup("o", "p", None, None, at(0)).is_err());
        assert_eq!(&*cache.lookup("o", "q", None, None, at(0)).unwrap(), b"q");
    }
}
