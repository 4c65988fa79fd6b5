//! Where a copied file's bytes are hashed: in the copying thread ([`Inline`], for a read
//! that writes nothing) or beside it ([`Piped`], for a copy).
//!
//! A copy reads each chunk once, writes it, and hands the same buffer to a hashing thread,
//! so on a machine with a second core the SHA-256 of one chunk is computed while the next is
//! read and written: the copy costs about what reading and writing cost, not that plus the
//! hash. The buffers come from a small pool (four chunks), so a hash that falls behind holds
//! the copy back instead of growing memory. Files end in order, so the `k`-th file ended is
//! the `k`-th digest; the copy records which entry that is and fills (or, in a restore,
//! compares) the checksums once the walk is done, before anything is published.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use backup_engine::Progress;
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::copy::{Moved, CHUNK, ZEROS};
use super::walk::FsError;

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
#[derive(Default)]
pub(crate) struct Inline {
    hasher: Sha256,
    buf: Vec<u8>,
}

impl Inline {
    /// The digest of the file fed so far; the next bytes start a new file.
    pub(crate) fn finish_file(&mut self) -> [u8; 32] {
        self.hasher.finalize_reset().into()
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

/// How many chunks may be read ahead of the hash.
const BUFFERS: usize = 4;

enum Msg {
    Data(Vec<u8>, usize),
    Zeros(u64),
    End,
}

/// Hashing in a thread of its own (see the module docs). Dropping it abandons the hashes:
/// the thread stops at its next message or hole block.
pub(crate) struct Piped {
    to_hash: Option<SyncSender<Msg>>,
    free: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<Vec<[u8; 32]>>>,
    stop: Arc<AtomicBool>,
    ended: usize,
}

impl Piped {
    /// Starts the hashing thread; it ticks `progress` while it hashes a long hole, which the
    /// copying thread has already passed.
    pub(crate) fn start(progress: &Progress) -> Result<Piped, FsError> {
        let (to_hash, inbox) = mpsc::sync_channel::<Msg>(BUFFERS + 4);
        let (give_back, free) = mpsc::channel();
        for _ in 0..BUFFERS {
            // Cannot fail: the receiver is alive.
            let _ = give_back.send(vec![0; CHUNK]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (halt, progress) = (stop.clone(), progress.clone());
        let worker = std::thread::Builder::new()
            .name("backup-hash".to_owned())
            .spawn(move || {
                let mut digests = Vec::new();
                let mut hasher = Sha256::new();
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
                                let take =
                                    usize::try_from(n).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
                                hasher.update(&ZEROS[..take]);
                                progress.tick();
                                n -= take as u64;
                            }
                        }
                        Msg::End => digests.push(hasher.finalize_reset().into()),
                    }
                }
                digests
            })
            .map_err(|e| {
                FsError::io(
                    "start the hashing thread for",
                    "the copy",
                    Errno::from_io_error(&e).unwrap_or(Errno::AGAIN),
                )
            })?;
        Ok(Piped {
            to_hash: Some(to_hash),
            free,
            worker: Some(worker),
            stop,
            ended: 0,
        })
    }

    fn send(&self, msg: Msg) -> Result<(), FsError> {
        match &self.to_hash {
            Some(tx) if tx.send(msg).is_ok() => Ok(()),
            _ => Err(gone()),
        }
    }

    /// Waits for the hashes of every file ended, in the order they ended.
    pub(crate) fn finish(mut self) -> Result<Vec<[u8; 32]>, FsError> {
        self.to_hash = None;
        let digests = self
            .worker
            .take()
            .ok_or_else(gone)?
            .join()
            .map_err(|_| gone())?;
        if digests.len() == self.ended {
            Ok(digests)
        } else {
            Err(gone())
        }
    }
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
        // A send that fails is found by `finish`, which then has fewer digests than ends.
        let _ = self.send(Msg::End);
        self.ended += 1;
        Ended::Later(self.ended - 1)
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.to_hash = None;
    }
}
