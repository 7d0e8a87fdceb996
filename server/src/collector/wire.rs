//! The collector's own Redis connection: the cycle's commands encoded once per plan (RESP),
//! written by a task of their own while the replies are parsed as they arrive, into one reused
//! buffer. The reader may stop after the first replies ([`Exchange::until`]) and work on them:
//! the writer keeps Redis fed meanwhile, and Redis's answers wait in the socket.
//!
//! At 100,000 workers a cycle is 500,000 commands. Through redis-rs each cycle kept half a
//! million `Cmd`s alive, packed them again, and parsed every reply into its own `Value`: about
//! half a core and a few hundred MB. Here a reply is a slot pointing into the bytes read, and a
//! reply larger than the cycle asks for (every read is a bounded `GETRANGE` or an `LLEN`) is
//! refused, so nothing a writer puts in Redis can make a cycle move more bytes than planned.

use std::time::Duration;

use bytes::Bytes;
use redis::ConnectionAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Appends one command in RESP (an array of bulk strings) to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One reply, borrowed from the bytes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    Nil,
    Int(i64),
    /// A bulk or simple string.
    Bytes(&'a [u8]),
    /// `-ERR …`, `-WRONGTYPE …`: a per-key oddity, not a failed cycle.
    Error(&'a [u8]),
    /// An array (no command of a cycle answers one).
    Array,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("Redis connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("Redis closed the connection")]
    Closed,
    #[error("Redis sent a reply that is not RESP: {0}")]
    Protocol(&'static str),
    #[error("Redis sent a {0}-byte reply where at most {1} were asked for")]
    TooLarge(usize, usize),
    #[error("Redis refused the connection set-up: {0}")]
    Refused(String),
    #[error("{0} is not supported by the collector's connection")]
    Unsupported(&'static str),
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Nil,
    Int(i64),
    Bytes(usize, usize),
    Error(usize, usize),
    Array,
}

/// The replies of one exchange: the bytes as read and where each reply lies in them.
#[derive(Debug, Default)]
pub struct Replies {
    buf: Vec<u8>,
    slots: Vec<Slot>,
}

impl Replies {
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Reply<'_>> + '_ {
        (0..self.slots.len()).map(|i| self.get(i))
    }

    /// The `i`th reply (`Nil` past the last).
    pub fn get(&self, i: usize) -> Reply<'_> {
        match self.slots.get(i) {
            None | Some(Slot::Nil) => Reply::Nil,
            Some(&Slot::Int(n)) => Reply::Int(n),
            Some(&Slot::Bytes(a, b)) => Reply::Bytes(&self.buf[a..b]),
            Some(&Slot::Error(a, b)) => Reply::Error(&self.buf[a..b]),
            Some(Slot::Array) => Reply::Array,
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.slots.clear();
    }
}

/// Parses one reply at `buf[pos..]`: `Ok(None)` when it is not complete yet, else the reply and
/// the position after it. Bulk strings longer than `max_bulk` are refused.
fn parse(buf: &[u8], pos: usize, max_bulk: usize) -> Result<Option<(Slot, usize)>, WireError> {
    let Some(kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..eol];
    let next = eol + 2;
    match kind {
        b'+' => Ok(Some((Slot::Bytes(pos + 1, eol), next))),
        b'-' => Ok(Some((Slot::Error(pos + 1, eol), next))),
        b':' => Ok(Some((Slot::Int(number(line)?), next))),
        b'$' => {
            let n = number(line)?;
            if n < 0 {
                return Ok(Some((Slot::Nil, next)));
            }
            let n = usize::try_from(n).map_err(|_| WireError::Protocol("bulk length"))?;
            if n > max_bulk {
                return Err(WireError::TooLarge(n, max_bulk));
            }
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            if &buf[next + n..next + n + 2] != b"\r\n" {
                return Err(WireError::Protocol("bulk string without CRLF"));
            }
            Ok(Some((Slot::Bytes(next, next + n), next + n + 2)))
        }
        b'*' => {
            let n = number(line)?;
            if n < 0 {
                return Ok(Some((Slot::Nil, next)));
            }
            // Skipped element by element (none is expected; a nested one is still read whole).
            let mut at = next;
            for _ in 0..n {
                match parse(buf, at, max_bulk)? {
                    Some((_, after)) => at = after,
                    None => return Ok(None),
                }
            }
            Ok(Some((Slot::Array, at)))
        }
        _ => Err(WireError::Protocol("unknown reply type")),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let i = rest.iter().position(|&b| b == b'\r')?;
    (rest.get(i + 1) == Some(&b'\n')).then_some(from + i)
}

fn number(line: &[u8]) -> Result<i64, WireError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(WireError::Protocol("not a number"))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Stream = Box<dyn Io>;

/// A plain connection (TCP or Unix socket) with the URL's AUTH and SELECT done.
pub struct WireConn {
    /// `None` once an exchange was left unfinished (failed, timed out): the connection may be
    /// mid-reply and is not used again.
    stream: Option<Stream>,
}

impl WireConn {
    pub async fn connect(
        info: &redis::ConnectionInfo,
        tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<Self, WireError> {
        let stream: Stream = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            ConnectionAddr::TcpTls { host, port, .. } => {
                let tls = tls.ok_or(WireError::Unsupported("TLS without its settings"))?;
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|_| {
                    WireError::Unsupported("a TLS host that is not a name or an address")
                })?;
                let s = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, s)
                    .await?;
                Box::new(s)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            _ => return Err(WireError::Unsupported("TLS")),
        };
        let mut conn = Self {
            stream: Some(stream),
        };
        let settings = info.redis_settings();
        let mut setup = Vec::new();
        let mut count = 0;
        if let Some(password) = settings.password() {
            match settings.username() {
                Some(user) => encode(&mut setup, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => encode(&mut setup, &[b"AUTH", password.as_bytes()]),
            }
            count += 1;
        }
        if settings.db() != 0 {
            encode(
                &mut setup,
                &[b"SELECT", settings.db().to_string().as_bytes()],
            );
            count += 1;
        }
        if count > 0 {
            let mut replies = Replies::default();
            conn.exchange(setup.into(), count, 1024, &mut replies)
                .await?;
            let refused = replies.iter().find_map(|r| match r {
                // Redis's own words (never the password: it does not echo it).
                Reply::Error(e) => Some(String::from_utf8_lossy(e).into_owned()),
                _ => None,
            });
            if let Some(e) = refused {
                return Err(WireError::Refused(e));
            }
        }
        Ok(conn)
    }

    /// Writes `packed` (`count` commands) and reads their `count` replies into `replies`
    /// (emptied first, its memory reused), parsing as the bytes arrive. The caller gives the
    /// deadline; a connection whose exchange failed or timed out is not used again (it may be
    /// mid-reply).
    pub async fn exchange(
        &mut self,
        packed: Bytes,
        count: usize,
        max_bulk: usize,
        replies: &mut Replies,
    ) -> Result<(), WireError> {
        self.start(packed, count, max_bulk, replies)?
            .until(count)
            .await
    }

    /// [`exchange`](Self::exchange) in steps: the commands are written by a task of their
    /// own, so Redis keeps reading them while the caller works on the first replies between
    /// two [`Exchange::until`]s.
    pub fn start<'e>(
        &'e mut self,
        packed: Bytes,
        count: usize,
        max_bulk: usize,
        replies: &'e mut Replies,
    ) -> Result<Exchange<'e>, WireError> {
        let stream = self.stream.take().ok_or(WireError::Closed)?;
        replies.clear();
        replies.slots.reserve(count);
        let (rd, mut wr) = tokio::io::split(stream);
        let writer = tokio::spawn(async move {
            wr.write_all(&packed).await?;
            wr.flush().await?;
            Ok(wr)
        });
        Ok(Exchange {
            conn: self,
            rd: Some(rd),
            writer: Some(writer),
            replies,
            pos: 0,
            count,
            max_bulk,
        })
    }
}

type Writer = tokio::task::JoinHandle<std::io::Result<WriteHalf<Stream>>>;

/// One exchange under way: its commands being written, its replies parsed as they arrive.
/// Dropped unfinished, it stops the writing and leaves the connection unusable.
pub struct Exchange<'e> {
    conn: &'e mut WireConn,
    rd: Option<ReadHalf<Stream>>,
    writer: Option<Writer>,
    replies: &'e mut Replies,
    /// Where the next reply starts in the bytes read.
    pos: usize,
    count: usize,
    max_bulk: usize,
}

impl Exchange<'_> {
    /// Reads until the first `n` replies are parsed (all of them once `n` reaches the count;
    /// the connection is then whole again for the next exchange). Between two calls nothing is
    /// read, but Redis goes on answering: its replies wait in the socket.
    pub async fn until(&mut self, n: usize) -> Result<(), WireError> {
        const CHUNK: usize = 64 * 1024;
        let n = n.min(self.count);
        let rd = self.rd.as_mut().ok_or(WireError::Closed)?;
        while self.replies.slots.len() < n {
            match parse(&self.replies.buf, self.pos, self.max_bulk)? {
                Some((slot, next)) => {
                    self.replies.slots.push(slot);
                    self.pos = next;
                }
                None => {
                    self.replies.buf.reserve(CHUNK);
                    if rd.read_buf(&mut self.replies.buf).await? == 0 {
                        return Err(WireError::Closed);
                    }
                }
            }
        }
        if n < self.count {
            return Ok(());
        }
        if self.pos != self.replies.buf.len() {
            return Err(WireError::Protocol("more replies than commands"));
        }
        // Every reply read: the commands were all written, the writer is done.
        let (Some(rd), Some(writer)) = (self.rd.take(), self.writer.take()) else {
            return Err(WireError::Closed);
        };
        let wr = writer.await.map_err(std::io::Error::other)??;
        self.conn.stream = Some(rd.unsplit(wr));
        Ok(())
    }

    /// The replies parsed so far.
    pub fn replies(&self) -> &Replies {
        self.replies
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

/// How long an exchange of `count` commands may take: `base`, growing by `per_command`.
pub fn deadline(base: Duration, per_command: Duration, count: usize) -> Duration {
    base.max(per_command.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8], max_bulk: usize) -> Result<Vec<Slot>, WireError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((s, next)) = parse(bytes, pos, max_bulk)? {
            out.push(s);
            pos = next;
        }
        Ok(out)
    }

    #[test]
    fn encodes_commands_as_resp_arrays() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &[b"GETRANGE", b"worker:a:heartbeat", b"0", b"8192"],
        );
        encode(&mut out, &[b"LLEN", b""]);
        assert_eq!(
            out,
            b"*4\r\n$8\r\nGETRANGE\r\n$18\r\nworker:a:heartbeat\r\n$1\r\n0\r\n$4\r\n8192\r\n*2\r\n$4\r\nLLEN\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn every_reply_type_is_read_and_incomplete_ones_wait() {
        let stream = b"+OK\r\n-WRONGTYPE Operation\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n$0\r\n\r\n";
        let slots = parse_all(stream, 64).unwrap();
        let replies = Replies {
            buf: stream.to_vec(),
            slots,
        };
        let got: Vec<_> = replies.iter().collect();
        assert_eq!(
            got,
            [
                Reply::Bytes(b"OK"),
                Reply::Error(b"WRONGTYPE Operation"),
                Reply::Int(42),
                Reply::Bytes(b"he\r\no"),
                Reply::Nil,
                Reply::Array,
                Reply::Bytes(b""),
            ]
        );
        // Every cut of the stream parses what is whole and waits for the rest.
        for cut in 0..stream.len() {
            let part = parse_all(&stream[..cut], 64).unwrap();
            assert!(part.len() < 7, "cut at {cut}");
        }
    }

    #[test]
    fn oversized_and_malformed_replies_are_refused() {
        assert!(matches!(
            parse(b"$100000000\r\n", 0, 8193),
            Err(WireError::TooLarge(100_000_000, 8193))
        ));
        assert!(parse(b"?what\r\n", 0, 10).is_err());
        assert!(parse(b":12x\r\n", 0, 10).is_err());
        assert!(parse(b"$2\r\nabcd\r\n", 0, 10).is_err());
        assert!(parse(b"$-5\r\n", 0, 10).unwrap().is_some(), "a null bulk");
    }

    #[test]
    fn the_deadline_grows_with_the_commands() {
        let base = Duration::from_millis(500);
        let per = Duration::from_micros(5);
        assert_eq!(deadline(base, per, 10), base);
        assert_eq!(deadline(base, per, 400_000), Duration::from_secs(2));
    }
}
