//! Where a copied file's bytes are hashed: in the copying thread ([`Inline`]) or beside it
//! ([`Piped`], for a copy or a restore), or whole files at once on every core
//! ([`FileHashers`], for a verify, which writes nothing), with the manifest's algorithm
//! ([`HashAlgorithm`]: BLAKE3 for what this version writes, SHA-256 for older manifests).
//!
//! A copy reads each chunk once, writes it, and hands the same buffer to a hashing thread,
//! so on a machine with a second core the digest of one chunk is computed while the next is
//! read and written: the copy costs about what reading and writing cost, not that plus the
//! hash. Whole files are dealt to one hashing thread per core in turn, since one file's hash
//! is sequential and SHA-256 (well under a gigabyte a second per core) is slower than
//! copying. The buffers come from a small pool (four chunks per thread), so hashes that fall
//! behind hold the copy back instead of growing memory. Files end in order, so the `k`-th
//! file ended is the `k`-th digest; the copy records which entry that is and fills (or, in a
//! restore or a verify, compares) the checksums once the walk is done, before anything is
//! published.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use backup_engine::Progress;
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::copy::{Moved, CHUNK, ZEROS};
use super::manifest::HashAlgorithm;
use super::walk::FsError;

/// The cores this process may use, read once: `available_parallelism` reads the cgroup's
/// CPU quota files on every call, and each copy, restore and verify starts threads by it.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// One file's running hash, of either algorithm; both digests are 32 bytes.
pub(crate) enum Hasher {
    Sha256(Sha256),
    // Boxed: BLAKE3's state (its chunk stack) is about two kilobytes.
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    pub(crate) fn new(algorithm: HashAlgorithm) -> Hasher {
        match algorithm {
            HashAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlgorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    /// The digest of what was fed; the hasher starts afresh.
    pub(crate) fn finalize_reset(&mut self) -> [u8; 32] {
        match self {
            Hasher::Sha256(h) => h.finalize_reset().into(),
            Hasher::Blake3(h) => {
                let digest = *h.finalize().as_bytes();
                h.reset();
                digest
            }
        }
    }
}

/// What ending a file gives: its digest now, or the index of a digest the hashing thread
/// hands over at the end.
pub(crate) enum Ended {
    Now([u8; 32]),
    Later(usize),
}

/// A file's bytes in order, as [`stream`](super::copy::stream) reads them.
pub(crate) trait Digester {
    /// A buffer to read the next chunk into.
    fn buffer(&mut self) -> Result<Vec<u8>, FsError>;
    /// The first `n` bytes of `buf` are the file's next bytes.
    fn data(&mut self, buf: Vec<u8>, n: usize) -> Result<(), FsError>;
    /// `n` zero bytes (a hole) come next; `on` ticks while they are hashed.
    fn zeros(
        &mut self,
        n: u64,
        on: &mut dyn FnMut(Moved) -> Result<(), FsError>,
    ) -> Result<(), FsError>;
    /// The file is complete.
    fn end(&mut self) -> Ended;
}

/// Hashing in the calling thread, in one reused buffer (allocated at first use).
pub(crate) struct Inline {
    hasher: Hasher,
    buf: Vec<u8>,
}

impl Inline {
    pub(crate) fn new(algorithm: HashAlgorithm) -> Inline {
        Inline {
            hasher: Hasher::new(algorithm),
            buf: Vec::new(),
        }
    }

    /// The digest of the file fed so far; the next bytes start a new file.
    pub(crate) fn finish_file(&mut self) -> [u8; 32] {
        self.hasher.finalize_reset()
    }
}

impl Digester for Inline {
    fn buffer(&mut self) -> Result<Vec<u8>, FsError> {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        Ok(buf)
    }

    fn data(&mut self, buf: Vec<u8>, n: usize) -> Result<(), FsError> {
        self.hasher.update(&buf[..n]);
        self.buf = buf;
        Ok(())
    }

    fn zeros(
        &mut self,
        mut n: u64,
        on: &mut dyn FnMut(Moved) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        while n > 0 {
            let take = usize::try_from(n).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
            self.hasher.update(&ZEROS[..take]);
            on(Moved::Hole)?;
            n -= take as u64;
        }
        Ok(())
    }

    fn end(&mut self) -> Ended {
        Ended::Now(self.finish_file())
    }
}

/// How many chunks may be read ahead of the hashes, per hashing thread.
const BUFFERS: usize = 4;

/// The most hashing threads a copy starts.
const MOST_WORKERS: usize = 4;

enum Msg {
    Data(Vec<u8>, usize),
    Zeros(u64),
    /// The file ends: its digest is the copy's `usize`-th.
    End(usize),
}

/// One hashing thread: its queue and what it hands back.
struct Worker {
    to_hash: SyncSender<Msg>,
    done: JoinHandle<Vec<(usize, [u8; 32])>>,
}

/// Hashing beside the copy (see the module docs), in as many threads as the machine has
/// cores (at most [`MOST_WORKERS`]), whole files dealt to them in turn: one file's hash is
/// sequential, and on a small machine hashing may take longer than copying. Dropping
/// it abandons the hashes: the threads stop at their next message or hole block.
pub(crate) struct Piped {
    workers: Vec<Worker>,
    free: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    /// Files ended so far; the current file goes to worker `ended % workers.len()`.
    ended: usize,
}

impl Piped {
    /// Starts the hashing threads; they tick `progress` while they hash a long hole, which
    /// the copying thread has already passed.
    pub(crate) fn start(progress: &Progress, algorithm: HashAlgorithm) -> Result<Piped, FsError> {
        let count = cores().clamp(1, MOST_WORKERS);
        let (give_back, free) = mpsc::channel();
        for _ in 0..BUFFERS * count {
            // Cannot fail: the receiver is alive.
            let _ = give_back.send(vec![0; CHUNK]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(count);
        for n in 0..count {
            let (to_hash, inbox) = mpsc::sync_channel::<Msg>(BUFFERS + 4);
            let (halt, progress, give_back) = (stop.clone(), progress.clone(), give_back.clone());
            let done = std::thread::Builder::new()
                .name(format!("backup-hash-{n}"))
                .spawn(move || hash_files(&inbox, &give_back, &halt, &progress, algorithm))
                .map_err(|e| {
                    FsError::io(
                        "start the hashing thread for",
                        "the copy",
                        Errno::from_io_error(&e).unwrap_or(Errno::AGAIN),
                    )
                })?;
            workers.push(Worker { to_hash, done });
        }
        Ok(Piped {
            workers,
            free,
            stop,
            ended: 0,
        })
    }

    fn send(&self, msg: Msg) -> Result<(), FsError> {
        match self.workers.get(self.ended % self.workers.len().max(1)) {
            Some(worker) if worker.to_hash.send(msg).is_ok() => Ok(()),
            _ => Err(gone()),
        }
    }

    /// Waits for the hashes of every file ended, in the order they ended.
    pub(crate) fn finish(mut self) -> Result<Vec<[u8; 32]>, FsError> {
        let mut digests = vec![None; self.ended];
        for worker in std::mem::take(&mut self.workers) {
            let Worker { to_hash, done } = worker;
            drop(to_hash);
            for (k, digest) in done.join().map_err(|_| gone())? {
                if let Some(slot) = digests.get_mut(k) {
                    *slot = Some(digest);
                }
            }
        }
        digests.into_iter().map(|d| d.ok_or_else(gone)).collect()
    }
}

/// A hashing thread: the files dealt to it, each ended by `End`, until the copy hangs up.
fn hash_files(
    inbox: &Receiver<Msg>,
    give_back: &mpsc::Sender<Vec<u8>>,
    halt: &AtomicBool,
    progress: &Progress,
    algorithm: HashAlgorithm,
) -> Vec<(usize, [u8; 32])> {
    let mut digests = Vec::new();
    let mut hasher = Hasher::new(algorithm);
    while let Ok(msg) = inbox.recv() {
        match msg {
            Msg::Data(buf, n) => {
                hasher.update(&buf[..n]);
                // The copy may have stopped already; the buffer is then freed.
                let _ = give_back.send(buf);
            }
            Msg::Zeros(mut n) => {
                while n > 0 {
                    if halt.load(Ordering::Relaxed) {
                        return digests;
                    }
                    let take = usize::try_from(n).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
                    hasher.update(&ZEROS[..take]);
                    progress.tick();
                    n -= take as u64;
                }
            }
            Msg::End(k) => digests.push((k, hasher.finalize_reset())),
        }
    }
    digests
}

fn gone() -> FsError {
    FsError::Refused("the hashing thread of the copy stopped: the copy was abandoned".to_owned())
}

impl Digester for Piped {
    fn buffer(&mut self) -> Result<Vec<u8>, FsError> {
        self.free.recv().map_err(|_| gone())
    }

    fn data(&mut self, buf: Vec<u8>, n: usize) -> Result<(), FsError> {
        self.send(Msg::Data(buf, n))
    }

    fn zeros(
        &mut self,
        n: u64,
        on: &mut dyn FnMut(Moved) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        if n > 0 {
            self.send(Msg::Zeros(n))?;
            on(Moved::Hole)?;
        }
        Ok(())
    }

    fn end(&mut self) -> Ended {
        // A send that fails is found by `finish`, which then misses that digest.
        let k = self.ended;
        let _ = self.send(Msg::End(k));
        self.ended += 1;
        Ended::Later(k)
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The threads end once their queues are closed (dropped with `workers`).
    }
}

/// What a [`FileHashers`] thread found of one file: its length and digest, or why it could
/// not be read.
pub(crate) type FileDigest = Result<(u64, [u8; 32]), Errno>;

/// Whole files read and hashed by one thread per core (a verify, which writes nothing): each
/// thread reads a file into its own buffer and hashes it there, so the bytes are hashed
/// while they are still in that core's cache, and as many files are read at once as there
/// are cores. The walk opens each file (so every open is the walk's, checked as the walk
/// checks it) and hands the descriptor over; at most a few descriptors wait in the queue.
pub(crate) struct FileHashers {
    to_hash: Option<SyncSender<(usize, std::os::fd::OwnedFd)>>,
    threads: Vec<JoinHandle<Vec<(usize, FileDigest)>>>,
    stop: Arc<AtomicBool>,
    /// Files handed over so far; the next one is the `sent`-th.
    sent: usize,
}

impl FileHashers {
    pub(crate) fn start(algorithm: HashAlgorithm) -> Result<FileHashers, FsError> {
        let count = cores().clamp(1, MOST_WORKERS);
        let (to_hash, inbox) = mpsc::sync_channel::<(usize, std::os::fd::OwnedFd)>(2 * count);
        let inbox = Arc::new(std::sync::Mutex::new(inbox));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let (inbox, halt) = (inbox.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("backup-verify-{n}"))
                .spawn(move || {
                    let mut inline = Inline::new(algorithm);
                    let mut found = Vec::new();
                    loop {
                        // The lock is held only while a descriptor is taken off the queue.
                        let next = match inbox.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => break,
                        };
                        let Ok((k, fd)) = next else { break };
                        if halt.load(Ordering::Relaxed) {
                            break;
                        }
                        let hashed =
                            super::copy::hash_file(std::os::fd::AsFd::as_fd(&fd), &mut inline);
                        found.push((k, hashed));
                    }
                    found
                })
                .map_err(|e| {
                    FsError::io(
                        "start the hashing thread for",
                        "the check",
                        Errno::from_io_error(&e).unwrap_or(Errno::AGAIN),
                    )
                })?;
            threads.push(thread);
        }
        Ok(FileHashers {
            to_hash: Some(to_hash),
            threads,
            stop,
            sent: 0,
        })
    }

    /// Hands an open file over; answers its number, the index of its result in
    /// [`finish`](Self::finish)'s answer.
    pub(crate) fn hash(&mut self, fd: std::os::fd::OwnedFd) -> Result<usize, FsError> {
        let k = self.sent;
        match &self.to_hash {
            Some(queue) if queue.send((k, fd)).is_ok() => {
                self.sent += 1;
                Ok(k)
            }
            _ => Err(gone()),
        }
    }

    /// Waits for every file handed over; answers their results in the order they were.
    pub(crate) fn finish(mut self) -> Result<Vec<FileDigest>, FsError> {
        drop(self.to_hash.take());
        let mut results: Vec<Option<FileDigest>> = vec![None; self.sent];
        for thread in std::mem::take(&mut self.threads) {
            for (k, found) in thread.join().map_err(|_| gone())? {
                if let Some(slot) = results.get_mut(k) {
                    *slot = Some(found);
                }
            }
        }
        results.into_iter().map(|r| r.ok_or_else(gone)).collect()
    }
}

impl Drop for FileHashers {
    fn drop(&mut self) {
        // Abandoned (a cancelled check): the threads stop at their next file.
        self.stop.store(true, Ordering::Relaxed);
    }
}
