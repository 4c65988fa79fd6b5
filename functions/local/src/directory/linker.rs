//! The hard links of an incremental backup, made on worker threads while the walk goes on.
//!
//! # Why
//! On a second backup nearly every file is linked from the base, and a `linkat` is a
//! directory insertion in the kernel: on ext4 it is most of the run (a lookup for the name,
//! then a search of the directory's block for room). Insertions into different directories
//! go on in parallel, since each locks only its own directory, so the walk hands each
//! directory's links to one of a few workers and walks on: on two cores, 20,000 links in 20
//! directories take about 0.6 of the time one thread takes.
//!
//! # Decisions
//! - **A batch is one destination directory's links** (split when it grows past [`BATCH`]),
//!   with its own descriptors of the source directory, the destination directory and the
//!   base's directory, so it needs nothing of the walk's once sent.
//! - **Every batch of a directory goes to the same worker** (the directory's number modulo
//!   the workers): two workers linking into one directory only spin on its lock, which on
//!   two cores took an eighth of the links' time.
//! - **The workers only link and check** (see [`Expected::link`]). A file that must be copied
//!   instead comes back to the walk's thread, which copies it through the batch's
//!   descriptors, with the same checks and hashing as any copy.
//! - **A destination directory's mode and times are set once every batch of it is done**:
//!   a link made later would move its modification time.
//! - **A batch is sent when the walk leaves its directory** (or it is full), not before a
//!   file of the directory is copied: the copy creates its file in the directory the worker
//!   is linking into, and on 20,000 files flushing before each of the 200 copies made the
//!   run a quarter slower (0.42–0.47 s against 0.33–0.36 s).
//! - **At most two batches wait per worker**: the walk blocks on a full queue; and at most
//!   64 directories left by the walk wait (each with its descriptor) for links in flight
//!   before their metadata is set, after which the walk waits for the links. So the
//!   descriptors held are bounded whatever the tree's shape, a tree thousands of
//!   directories deep included.
//! - **Stopping** (a failure, a cancelled run, or the end) sets a flag the workers read
//!   before each link, then joins them: nothing links into a partial backup after its
//!   owner has dropped the pool, before it removes the partial backup.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::io::Errno;

use super::base::{Expected, Linked};
use super::walk::{FsError, Meta};

/// Links per batch: enough that handing one over costs nothing beside its links, few
/// enough that a large directory's first links are made while the walk is still in it.
pub(crate) const BATCH: usize = 256;

/// Workers at most, whatever the cores: a bound on the threads one run starts (measured on
/// two cores only).
const MAX_WORKERS: usize = 4;

/// One file to link.
pub(crate) struct Item {
    /// Its name, in the source, the base's directory and the new backup alike.
    pub name: CString,
    /// Its manifest entry's index (an entry is recorded as linked when queued).
    pub at: usize,
    pub expected: Expected,
}

/// One directory's links (see the module docs).
pub(crate) struct Batch {
    seq: u64,
    /// The directory, relative to `data/` (`""` for `data/` itself).
    pub parent: String,
    /// The walk's depth of the directory: whose metadata waits for the batch.
    pub depth: usize,
    pub src: OwnedFd,
    pub dest: OwnedFd,
    pub base: OwnedFd,
    pub items: Vec<Item>,
}

impl Batch {
    pub(crate) fn new(
        parent: String,
        depth: usize,
        src: OwnedFd,
        dest: OwnedFd,
        base: OwnedFd,
    ) -> Batch {
        Batch {
            seq: 0,
            parent,
            depth,
            src,
            dest,
            base,
            items: Vec::new(),
        }
    }
}

/// A batch back from a worker.
pub(crate) struct Done {
    pub batch: Batch,
    /// Whether each item was linked (else it is to be copied); items after a failure are
    /// neither.
    pub linked: Vec<bool>,
    /// The item whose link failed, and why.
    pub failed: Option<(usize, Errno)>,
    /// The pool was stopped before the batch was through.
    pub stopped: bool,
    /// The worker panicked (a bug): the run fails.
    pub broke: bool,
}

/// A destination directory whose metadata waits for its batches.
pub(crate) struct Pending {
    pub fd: OwnedFd,
    pub meta: Meta,
    pub rel: String,
    /// The last batch of it.
    pub after: u64,
}

/// The workers, and what the walk's thread knows of the batches it sent.
pub(crate) struct Linker {
    /// Each worker's queue.
    jobs: Vec<SyncSender<Batch>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    next: u64,
    in_flight: usize,
    /// Every batch below `low` is back; `back` holds those above it that are.
    low: u64,
    back: BTreeSet<u64>,
    /// Each open directory of the walk, by depth: its number, and the last batch sent for
    /// it.
    levels: Vec<(u64, Option<u64>)>,
    dirs: u64,
    /// Directories left whose metadata waits.
    pub pending: Vec<Pending>,
}

impl Linker {
    /// Starts one worker per core (at most [`MAX_WORKERS`]); `owners` as for the copy.
    pub(crate) fn start(owners: bool) -> Result<Linker, FsError> {
        let workers = super::digest::cores().clamp(1, MAX_WORKERS);
        let (report, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut linker = Linker {
            jobs: Vec::new(),
            done,
            workers: Vec::new(),
            stop: stop.clone(),
            next: 0,
            in_flight: 0,
            low: 0,
            back: BTreeSet::new(),
            levels: vec![(0, None)],
            dirs: 1,
            pending: Vec::new(),
        };
        for n in 0..workers {
            let (jobs, queue) = mpsc::sync_channel::<Batch>(2);
            linker.jobs.push(jobs);
            let report = report.clone();
            let stop = stop.clone();
            let handle = std::thread::Builder::new()
                .name(format!("backup-link-{n}"))
                .spawn(move || work(&queue, &report, &stop, owners))
                .map_err(|e| {
                    FsError::Refused(format!("cannot start a thread to link files: {e}"))
                })?;
            linker.workers.push(handle);
        }
        Ok(linker)
    }

    /// Hands `batch` to the workers (waiting while the queue is full) and records it as the
    /// last batch of its directory.
    pub(crate) fn send(&mut self, mut batch: Batch) -> Result<(), FsError> {
        batch.seq = self.next;
        let (seq, depth) = (batch.seq, batch.depth);
        let dir = self.levels.get(depth).map_or(0, |level| level.0);
        let worker = usize::try_from(dir).unwrap_or(0) % self.jobs.len().max(1);
        let sent = self.jobs.get(worker).map(|jobs| jobs.send(batch));
        if !matches!(sent, Some(Ok(()))) {
            return Err(FsError::Refused(
                "the threads that link files stopped".into(),
            ));
        }
        self.next += 1;
        self.in_flight += 1;
        if let Some(level) = self.levels.get_mut(depth) {
            level.1 = Some(seq);
        }
        Ok(())
    }

    /// The walk's depth now (`0` at `data/`).
    pub(crate) fn depth(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// The walk entered a directory.
    pub(crate) fn enter(&mut self) {
        self.levels.push((self.dirs, None));
        self.dirs += 1;
    }

    /// The walk left a directory: the last batch sent for it, if any.
    pub(crate) fn leave(&mut self) -> Option<u64> {
        self.levels.pop().and_then(|level| level.1)
    }

    /// A batch that is back, if any; with `wait`, waits for one while any is out.
    pub(crate) fn back(&mut self, wait: bool) -> Result<Option<Done>, FsError> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let done = if wait {
            match self.done.recv() {
                Ok(done) => done,
                Err(_) => {
                    return Err(FsError::Refused(
                        "the threads that link files stopped".into(),
                    ))
                }
            }
        } else {
            match self.done.try_recv() {
                Ok(done) => done,
                Err(mpsc::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(FsError::Refused(
                        "the threads that link files stopped".into(),
                    ))
                }
            }
        };
        self.in_flight -= 1;
        self.back.insert(done.batch.seq);
        while self.back.remove(&self.low) {
            self.low += 1;
        }
        Ok(Some(done))
    }

    /// Whether batch `seq`, and so every earlier batch of its directory, is back: one
    /// worker takes a directory's batches in order and answers in order.
    pub(crate) fn is_back(&self, seq: u64) -> bool {
        seq < self.low || self.back.contains(&seq)
    }
}

impl Drop for Linker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(queue: &Receiver<Batch>, report: &mpsc::Sender<Done>, stop: &AtomicBool, owners: bool) {
    while let Ok(batch) = queue.recv() {
        // A panic must still answer for its batch: the walk's thread waits for every batch,
        // and the other workers keep the answers' channel open.
        let made = std::panic::catch_unwind(AssertUnwindSafe(|| link_all(&batch, stop, owners)));
        let done = match made {
            Ok((linked, failed, stopped)) => Done {
                batch,
                linked,
                failed,
                stopped,
                broke: false,
            },
            Err(_) => Done {
                batch,
                linked: Vec::new(),
                failed: None,
                stopped: false,
                broke: true,
            },
        };
        if report.send(done).is_err() {
            return;
        }
    }
}

/// Links a batch's items in order: whether each was linked, the failure that stopped it,
/// and whether the pool was stopped first.
fn link_all(
    batch: &Batch,
    stop: &AtomicBool,
    owners: bool,
) -> (Vec<bool>, Option<(usize, Errno)>, bool) {
    let mut linked = Vec::with_capacity(batch.items.len());
    for (i, item) in batch.items.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return (linked, None, true);
        }
        let made = item.expected.link(
            batch.base.as_fd(),
            &item.name,
            batch.dest.as_fd(),
            &item.name,
            owners,
        );
        match made {
            Ok(Linked::Yes) => linked.push(true),
            Ok(Linked::Copy) => linked.push(false),
            Err(e) => return (linked, Some((i, e)), false),
        }
    }
    (linked, None, false)
}
