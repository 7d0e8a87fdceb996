//! Bounded clients: a cap on open connections and on push streams, an idle timeout on every
//! connection, and the open-files limit raised at start. The defaults come from the
//! process's open-files limit, so a full house of dashboards leaves descriptors for the
//! collector's own Redis connections, `/healthz` and the API.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Descriptors kept back from the connection cap: Redis connections, files, the listener.
const RESERVED_FDS: u64 = 64;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Args)]
pub struct LimitArgs {
    /// Most open HTTP connections; more wait in the listen backlog (default: the open-files
    /// limit minus 64, at most 16,384).
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most open push streams (`/nodes/stream`); more get 503 (default: half the connections).
    #[arg(long, env = "MAX_STREAMS")]
    pub max_streams: Option<usize>,
    /// A connection with no byte read or written this long is closed (default 60s; streams
    /// send a keep-alive every 15 s).
    #[arg(long, env = "IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// A new connection must have sent its first request's headers within this (default
    /// 10s), however slowly it trickles bytes.
    #[arg(long, env = "HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Option<Duration>,
    /// Longest a graceful shutdown waits for open requests (default 10s).
    #[arg(long, env = "SHUTDOWN_DEADLINE", value_parser = humantime::parse_duration)]
    pub shutdown_deadline: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_streams: usize,
    pub idle_timeout: Duration,
    pub header_read_timeout: Duration,
    pub shutdown_deadline: Duration,
}

impl Limits {
    /// The defaults for a process allowed `nofile` open files.
    pub fn for_nofile(nofile: u64) -> Self {
        let max_connections = nofile.saturating_sub(RESERVED_FDS).clamp(16, 16_384) as usize;
        Self {
            max_connections,
            max_streams: (max_connections / 2).max(1),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }

    pub fn resolve(args: &LimitArgs, nofile: u64) -> anyhow::Result<Self> {
        let d = Self::for_nofile(nofile);
        let max_connections = args.max_connections.unwrap_or(d.max_connections);
        let limits = Self {
            max_connections,
            max_streams: args
                .max_streams
                .unwrap_or_else(|| (max_connections / 2).max(1)),
            idle_timeout: args.idle_timeout.unwrap_or(d.idle_timeout),
            header_read_timeout: args.header_read_timeout.unwrap_or(d.header_read_timeout),
            shutdown_deadline: args.shutdown_deadline.unwrap_or(d.shutdown_deadline),
        };
        anyhow::ensure!(
            limits.max_connections >= 2,
            "MAX_CONNECTIONS must be at least 2"
        );
        anyhow::ensure!(
            limits.max_streams >= 1 && limits.max_streams < limits.max_connections,
            "MAX_STREAMS must be at least 1 and below MAX_CONNECTIONS ({}), so streams cannot take every connection",
            limits.max_connections
        );
        anyhow::ensure!(
            limits.idle_timeout >= Duration::from_secs(1),
            "IDLE_TIMEOUT must be at least 1s"
        );
        anyhow::ensure!(
            limits.header_read_timeout >= Duration::from_millis(100),
            "HEADER_READ_TIMEOUT must be at least 100ms"
        );
        if limits.idle_timeout < Duration::from_secs(20) {
            tracing::warn!(
                idle_timeout = ?limits.idle_timeout,
                "IDLE_TIMEOUT under 20s cuts quiet push streams (they send a keep-alive every 15 s)"
            );
        }
        if (limits.max_connections as u64).saturating_add(RESERVED_FDS / 2) > nofile {
            tracing::warn!(
                max_connections = limits.max_connections,
                nofile,
                "MAX_CONNECTIONS is close to the open-files limit: the server may run out of descriptors"
            );
        }
        Ok(limits)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::for_nofile(1024)
    }
}

/// The open-files soft limit now in force.
pub fn nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// Raises the open-files soft limit to the hard limit and returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// The server's listener: at most `max_connections` open at once (the next accept waits for
/// one to close, so the kernel's backlog holds newcomers instead of the process running out
/// of descriptors), each closed after `idle` without traffic.
pub struct LimitedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
    headers: Duration,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, limits: &Limits) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            idle: limits.idle_timeout,
            headers: limits.header_read_timeout,
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = loop {
            if let Ok(p) = self.slots.clone().acquire_owned().await {
                break p;
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        LimitedIo::new(stream, permit, self.idle, self.headers),
                        addr,
                    );
                }
                Err(e) => {
                    // EMFILE and friends: wait for descriptors to free up, never spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its slot until it is dropped, closed when idle too long, or when its
/// first request's headers have not all arrived by the header deadline (a slowloris client
/// that trickles a byte at a time is never idle, but it is late).
pub struct LimitedIo {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    /// Until the first `\r\n\r\n` is read; `None` after.
    headers_by: Option<Instant>,
    /// The last bytes read, to find a `\r\n\r\n` split across reads.
    tail: [u8; 3],
    timer: Pin<Box<Sleep>>,
}

impl LimitedIo {
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        idle: Duration,
        headers: Duration,
    ) -> Self {
        let headers_by = Instant::now() + headers;
        Self {
            stream,
            _slot: slot,
            idle,
            headers_by: Some(headers_by),
            tail: [0; 3],
            timer: Box::pin(tokio::time::sleep_until(
                headers_by.min(Instant::now() + idle),
            )),
        }
    }

    fn touch(&mut self) {
        let mut at = Instant::now() + self.idle;
        if let Some(h) = self.headers_by {
            at = at.min(h);
        }
        self.timer.as_mut().reset(at);
    }

    /// Watches the bytes read for the end of the first request's headers.
    fn saw(&mut self, bytes: &[u8]) {
        if self.headers_by.is_none() || bytes.is_empty() {
            return;
        }
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        if window.windows(4).any(|w| w == b"\r\n\r\n") {
            self.headers_by = None;
        }
        let n = window.len();
        self.tail.copy_from_slice(&window[n - 3..]);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "connection idle too long, or its headers too slow",
    )
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let fresh = buf.filled()[before..].to_vec();
                    self.saw(&fresh);
                    self.touch();
                    if self.headers_by.is_some_and(|h| Instant::now() >= h) {
                        return Poll::Ready(Err(idle_error()));
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(e) => Poll::Ready(e),
            // A client that stops reading stalls our writes: that is idle too.
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// glibc's malloc serves a large block from the heap once a block that size has been freed
/// (its mmap threshold rises with every free), so a big fleet's per-cycle buffers — the
/// replies, the new snapshot, the `/nodes` JSON — end up spread over heap pages that are never
/// given back. A fixed threshold keeps blocks of 4 MiB and more in their own mappings, returned
/// to the system when freed: 100,000 workers, RSS 481–504 → 382–397 MiB (BENCHMARKS.md). At
/// 256 KiB the RSS was the same, but a 10,000-worker cycle paid for mapping its smaller buffers
/// afresh each time. `MALLOC_MMAP_THRESHOLD_` in the environment still wins.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes malloc's tuning; called once at start, before the
        // runtime's threads allocate much.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_open_files_limit() {
        let l = Limits::for_nofile(256);
        assert_eq!(l.max_connections, 192);
        assert_eq!(l.max_streams, 96);
        assert_eq!(Limits::for_nofile(1_048_576).max_connections, 16_384);
        assert_eq!(Limits::for_nofile(10).max_connections, 16);
    }

    #[tokio::test]
    async fn the_end_of_the_headers_is_found_across_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let slot = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let secs = Duration::from_secs;
        let mut io = LimitedIo::new(client, slot, secs(60), secs(10));
        io.saw(b"GET / HTTP/1.1\r\nHost: x\r");
        assert!(io.headers_by.is_some());
        io.saw(b"\n\r");
        assert!(io.headers_by.is_some());
        io.saw(b"\n");
        assert!(io.headers_by.is_none(), "split over three reads");
    }

    #[test]
    fn streams_can_never_take_every_connection() {
        let args = LimitArgs {
            max_connections: Some(10),
            max_streams: Some(10),
            ..Default::default()
        };
        let e = Limits::resolve(&args, 1024).unwrap_err().to_string();
        assert!(e.contains("MAX_STREAMS"), "{e}");
        let args = LimitArgs {
            idle_timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        assert!(Limits::resolve(&args, 1024).is_err());
    }
}
