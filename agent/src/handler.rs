//! Runs a pipeline's handler: an external program (argv, no shell) in its own process group,
//! the job on stdin. On timeout, or when the agent must stop, the whole group gets SIGTERM,
//! then SIGKILL after a short grace, so a handler's children never outlive it.
//!
//! Its stdout and stderr are always drained (a handler is never blocked on a full pipe): the
//! last [`TAIL_CAP`] bytes of each are kept for the job's history, and, when the caller gives
//! a [`Live`] buffer, every byte is also handed to it for the live log.

use std::process::Stdio;
use std::time::Duration;

use shared::jobs::record::TAIL_CAP;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// After SIGTERM, the group has this long before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// The end of stderr quoted in the failure message.
const STDERR_TAIL: usize = 512;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Exited non-zero or by a signal; the message says how, with the end of its stderr.
    Failed(String),
    TimedOut,
    /// `abort` fired: the agent is stopping and the job goes back to the queue.
    Aborted,
    /// The program could not be started at all (a configuration fault, not the job's).
    NotStarted(String),
}

pub struct Job<'a> {
    pub argv: &'a [String],
    pub input: &'a [u8],
    pub timeout: Duration,
    pub env: &'a [(&'a str, String)],
    /// Where the output goes as it is written (the live log), if anywhere.
    pub live: Option<&'a Live>,
}

/// What a run of the handler left: how it ended and the tails of its output.
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    /// The exit status, when it exited (not killed by a signal, not timed out).
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    fn without_output(outcome: Outcome) -> Self {
        Self {
            outcome,
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }
}

/// Which stream a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Out => "out",
            Self::Err => "err",
        }
    }
}

/// Output written but not yet published to the live log: at most [`TAIL_CAP`] bytes per
/// stream; when the publisher falls behind, the oldest pending bytes are dropped and counted.
#[derive(Default)]
pub struct Live(std::sync::Mutex<[Pending; 2]>);

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    skipped: u64,
}

impl Live {
    fn push(&self, stream: Stream, bytes: &[u8]) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let p = &mut all[stream as usize];
        p.bytes.extend_from_slice(bytes);
        if p.bytes.len() > TAIL_CAP {
            let cut = p.bytes.len() - TAIL_CAP;
            p.bytes.drain(..cut);
            p.skipped += cut as u64;
        }
    }

    /// Everything pending, per stream (a note first when bytes were dropped).
    pub fn take(&self) -> Vec<(Stream, Vec<u8>)> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (i, stream) in [Stream::Out, Stream::Err].into_iter().enumerate() {
            let p = std::mem::take(&mut all[i]);
            if p.skipped > 0 {
                out.push((
                    stream,
                    format!("[… {} bytes skipped …]\n", p.skipped).into_bytes(),
                ));
            }
            if !p.bytes.is_empty() {
                out.push((stream, p.bytes));
            }
        }
        out
    }
}

/// How long a pipe may stay open after the handler's group has ended.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// Reads a pipe to its end (or [`PIPE_GRACE`] after `ended_at` is set), keeping its last
/// [`TAIL_CAP`] bytes and handing every byte to `live`.
async fn drain(
    pipe: Option<impl AsyncRead + Unpin>,
    stream: Stream,
    live: Option<&Live>,
    mut ended_at: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
) -> Vec<u8> {
    let mut tail = Vec::new();
    let Some(mut pipe) = pipe else { return tail };
    let mut buf = [0u8; 8192];
    let given_up = async move {
        let at = match ended_at.wait_for(Option::is_some).await {
            Ok(at) => *at,
            Err(_) => None,
        };
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(given_up);
    loop {
        let n = tokio::select! {
            r = pipe.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = &mut given_up => break,
        };
        if let Some(live) = live {
            live.push(stream, &buf[..n]);
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > TAIL_CAP * 2 {
            tail.drain(..tail.len() - TAIL_CAP);
        }
    }
    let keep = shared::jobs::record::tail(&tail, TAIL_CAP).len();
    tail.drain(..tail.len() - keep);
    tail
}

pub async fn run(job: Job<'_>, abort: &CancellationToken) -> Ran {
    let Some((program, args)) = job.argv.split_first() else {
        return Ran::without_output(Outcome::NotStarted("the handler has no program".into()));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ran::without_output(Outcome::NotStarted(format!(
                "cannot start {program:?}: {e}"
            )))
        }
    };
    let Some(pgid) = child.id() else {
        return Ran::without_output(Outcome::Failed("exited before it could be watched".into()));
    };
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let input = job.input.to_vec();
    // Feeding stdin runs beside the wait, so a handler that does not read its input cannot
    // block us.
    let feed = async move {
        if let Some(mut s) = stdin.take() {
            // A handler that exits without reading its input is not an error of ours.
            let _ = s.write_all(&input).await;
        }
    };
    // The pipes are read beside the wait and until they close: the group's end closes them,
    // so the tails are complete. A process that escaped the group and holds a pipe gets
    // [`PIPE_GRACE`] after the end, then the pipe is left.
    let (ended_at, closing) = tokio::sync::watch::channel(None);
    let out = drain(stdout, Stream::Out, job.live, closing.clone());
    let err = drain(stderr, Stream::Err, job.live, closing);
    let main = async {
        let ended = tokio::select! {
            (status, ()) = async { tokio::join!(child.wait(), feed) } => Ended::Exited(status),
            _ = tokio::time::sleep(job.timeout) => Ended::TimedOut,
            _ = abort.cancelled() => Ended::Aborted,
        };
        // Whatever happened, nothing of the group may live on: a handler that exited can
        // still have left children behind (and they would hold the pipes open).
        kill_group(pgid, &mut child).await;
        ended_at.send_replace(Some(tokio::time::Instant::now() + PIPE_GRACE));
        ended
    };
    let (ended, stdout, stderr) = tokio::join!(main, out, err);
    let (outcome, exit_code) = match ended {
        Ended::Exited(Ok(s)) if s.success() => (Outcome::Succeeded, Some(0)),
        Ended::Exited(Ok(s)) => (Outcome::Failed(failure_message(s, &stderr)), s.code()),
        Ended::Exited(Err(e)) => (Outcome::Failed(format!("lost the handler: {e}")), None),
        Ended::TimedOut => (Outcome::TimedOut, None),
        Ended::Aborted => (Outcome::Aborted, None),
    };
    Ran {
        outcome,
        exit_code,
        stdout,
        stderr,
    }
}

enum Ended {
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Aborted,
}

fn failure_message(status: std::process::ExitStatus, tail: &[u8]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    let start = tail.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(&tail[start..]);
    let text = text.trim();
    if text.is_empty() {
        how
    } else {
        format!("{how}: {text}")
    }
}

/// SIGTERM to the group, then SIGKILL once the grace is over if any member is left. The
/// handler itself is reaped as soon as it exits: unreaped, it would stay in the group as a
/// zombie and hold the slot for the whole grace.
async fn kill_group(pgid: u32, child: &mut tokio::process::Child) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if !signal_group(pgid, libc::SIGTERM) {
        return; // no such group: all gone
    }
    let deadline = tokio::time::Instant::now() + KILL_GRACE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Err(e) = child.try_wait() {
            tracing::debug!(error = %e, "cannot reap the handler; waiting for its group");
        }
        if !signal_group(pgid, 0) {
            return;
        }
    }
    signal_group(pgid, libc::SIGKILL);
}

/// Sends `sig` to process group `pgid`; false when the group no longer exists.
fn signal_group(pgid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // names the process group we created with process_group(0).
    unsafe { libc::kill(-pgid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    async fn go(v: &[&str], input: &[u8], timeout_ms: u64) -> Outcome {
        ran(v, input, timeout_ms, None).await.outcome
    }

    async fn ran(v: &[&str], input: &[u8], timeout_ms: u64, live: Option<&Live>) -> Ran {
        let a = argv(v);
        run(
            Job {
                argv: &a,
                input,
                timeout: Duration::from_millis(timeout_ms),
                env: &[("JOB_KIND", "test".into())],
                live,
            },
            &CancellationToken::new(),
        )
        .await
    }

    #[tokio::test]
    async fn output_tails_exit_codes_and_the_live_copy() {
        let live = Live::default();
        let r = ran(
            &["sh", "-c", "echo out-line; echo err-line >&2; exit 4"],
            b"",
            5000,
            Some(&live),
        )
        .await;
        assert_eq!(r.exit_code, Some(4));
        assert_eq!(r.stdout, b"out-line\n");
        assert_eq!(r.stderr, b"err-line\n");
        let taken = live.take();
        assert_eq!(taken.len(), 2);
        assert!(live.take().is_empty(), "taking empties it");
        // 1 MB on stdout: the tail is capped, the handler never blocks, the live copy too
        let r = ran(
            &[
                "sh",
                "-c",
                "head -c 1048576 /dev/zero | tr '\\0' x; echo END",
            ],
            b"",
            10_000,
            Some(&live),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Succeeded);
        assert_eq!(r.stdout.len(), TAIL_CAP);
        assert!(r.stdout.ends_with(b"xEND\n"));
        let pending: usize = live.take().iter().map(|(_, b)| b.len()).sum();
        assert!(pending <= TAIL_CAP + 64, "{pending}");
    }

    #[tokio::test]
    async fn success_failure_and_stdin() {
        assert_eq!(go(&["true"], b"", 5000).await, Outcome::Succeeded);
        let r = go(
            &["sh", "-c", "read x; [ \"$x\" = job-1 ]"],
            b"job-1\n",
            5000,
        )
        .await;
        assert_eq!(r, Outcome::Succeeded);
        let r = go(&["sh", "-c", "echo broken >&2; exit 3"], b"", 5000).await;
        assert_eq!(r, Outcome::Failed("exit status 3: broken".into()));
        let r = go(&["sh", "-c", "[ \"$JOB_KIND\" = test ]"], b"", 5000).await;
        assert_eq!(r, Outcome::Succeeded);
        assert!(matches!(
            go(&["/no/such/program"], b"", 5000).await,
            Outcome::NotStarted(_)
        ));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let marker = format!("pa-test-{}", std::process::id());
        // the handler starts a child that ignores nothing and sleeps; both must die
        let script = format!("(exec -a {marker} sleep 300) & exec -a {marker} sleep 300");
        let r = go(&["bash", "-c", &script], b"", 300).await;
        assert_eq!(r, Outcome::TimedOut);
        let left = std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "left running: {:?}", left.stdout);
    }

    #[tokio::test]
    async fn a_handler_that_exits_at_sigterm_frees_its_slot_at_once() {
        let started = std::time::Instant::now();
        let r = go(&["sleep", "300"], b"", 200).await;
        assert_eq!(r, Outcome::TimedOut);
        // Not the whole kill grace: the handler is reaped once SIGTERM ended it.
        assert!(started.elapsed() < KILL_GRACE, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_handler_that_ignores_sigterm_is_killed() {
        let r = go(
            &["bash", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
            b"",
            200,
        )
        .await;
        assert_eq!(r, Outcome::TimedOut);
    }
}
