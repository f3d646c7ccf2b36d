//! Stdin as large blocks for `filter`: a reader thread reads straight into big buffers and
//! hands one over when it is full, or as soon as the input pauses (the next read would block)
//! while the main thread is waiting for work. A fast stream thus arrives in blocks of
//! several MiB, scanned on all cores, and the next block fills while one is scanned; a trickle
//! arrives record by record, at once.
//!
//! Each buffer keeps [`HEADROOM`] free bytes in front of its data, so that the main thread can
//! put the unfinished record carried over from the previous block in front of the new bytes by
//! copying only that record: no byte of a fast stream is copied in user space after `read`.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender, TrySendError};
use std::time::Duration;

/// Free bytes in front of a block's data, for the carried-over partial record.
pub const HEADROOM: usize = 1 << 20;
/// Data bytes per block.
const BLOCK: usize = 8 << 20;
/// A read asks for at least this much (a pipe holds 64 KiB by default); a block with less
/// room left is handed over as full.
const MIN_READ: usize = 64 << 10;
/// How long the reader waits for more input, while it holds data the main thread is too busy
/// to take, before it offers the data again.
const RETRY: Duration = Duration::from_millis(1);

/// A block of input: the bytes are `buf[start..end]`; `buf[..start]` is free headroom.
pub struct Block {
    /// The buffer (its whole length is usable).
    pub buf: Vec<u8>,
    /// Where the data starts.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
    /// Handed over because it was full (more input was waiting), not because the input paused.
    pub full: bool,
}

impl Block {
    fn new(pool: &Receiver<Vec<u8>>) -> Block {
        let buf = pool
            .try_recv()
            .unwrap_or_else(|_| vec![0u8; HEADROOM + BLOCK]);
        Block {
            buf,
            start: HEADROOM,
            end: HEADROOM,
            full: false,
        }
    }

    /// The data.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Puts `carry` in front of the data, in the headroom; `false` (nothing changed) when it
    /// does not fit.
    pub fn prepend(&mut self, carry: &[u8]) -> bool {
        let Some(at) = self.start.checked_sub(carry.len()) else {
            return false;
        };
        self.buf[at..self.start].copy_from_slice(carry);
        self.start = at;
        true
    }
}

/// The receiving end: blocks (or a read error) in input order; disconnected at end of input.
pub struct Blocks {
    /// Blocks as they are handed over.
    pub rx: Receiver<std::io::Result<Block>>,
    /// Where spent buffers go back for reuse (memory stays at a few blocks).
    pub pool: Sender<Vec<u8>>,
}

/// Whether more input can be read at once (`true` also when unsure: a regular file, an
/// error).
fn readable_within(stdin: &std::io::Stdin, wait: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(stdin, PollFlags::IN)];
    let t = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    !matches!(poll(&mut fds, Some(&t)), Ok(0))
}

/// Starts the reader thread on stdin.
pub fn spawn() -> Blocks {
    // A rendezvous channel: `try_send` succeeds only when the main thread is waiting.
    let (tx, rx) = sync_channel::<std::io::Result<Block>>(0);
    let (pool_tx, pool_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || read_loop(&tx, &pool_rx));
    Blocks { rx, pool: pool_tx }
}

fn read_loop(tx: &SyncSender<std::io::Result<Block>>, pool: &Receiver<Vec<u8>>) {
    let stdin = std::io::stdin();
    // (A 1 MiB pipe, `F_SETPIPE_SZ`, was tried: fewer reads, but more system time spent
    // spinning on the pipe's lock against the writer, and no faster.)
    let mut lock = stdin.lock();
    let mut blk = Block::new(pool);
    loop {
        if blk.end > blk.start && !readable_within(&stdin, Duration::ZERO) {
            // The input paused with data in hand: give it to the main thread if it is waiting,
            // else wait briefly for more input and offer it again.
            match tx.try_send(Ok(blk)) {
                Ok(()) => blk = Block::new(pool),
                Err(TrySendError::Full(Ok(b))) => {
                    blk = b;
                    readable_within(&stdin, RETRY);
                    continue;
                }
                Err(_) => return,
            }
        }
        match lock.read(&mut blk.buf[blk.end..]) {
            Ok(0) => {
                if blk.end > blk.start {
                    let _ = tx.send(Ok(blk));
                }
                return;
            }
            Ok(n) => {
                blk.end += n;
                if blk.buf.len() - blk.end < MIN_READ {
                    blk.full = true;
                    if tx.send(Ok(blk)).is_err() {
                        return;
                    }
                    blk = Block::new(pool);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                if blk.end > blk.start && tx.send(Ok(blk)).is_err() {
                    return;
                }
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}
