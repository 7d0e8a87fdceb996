//! Runs a pipeline's handler: an external program (argv, no shell) in its own process group,
//! the job on stdin. On timeout, or when the agent must stop, the whole group gets SIGTERM,
//! then SIGKILL after a short grace, so a handler's children never outlive it.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// After SIGTERM, the group has this long before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// The tail of stderr kept for the failure message.
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
}

pub async fn run(job: Job<'_>, abort: &CancellationToken) -> Outcome {
    let Some((program, args)) = job.argv.split_first() else {
        return Outcome::NotStarted("the handler has no program".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(format!("cannot start {program:?}: {e}")),
    };
    let Some(pgid) = child.id() else {
        return Outcome::Failed("exited before it could be watched".into());
    };
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let input = job.input.to_vec();
    // Feeding stdin and draining stderr run beside the wait, so a handler that does not
    // read its input (or writes a lot) cannot block us.
    let feed = async move {
        if let Some(mut s) = stdin.take() {
            // A handler that exits without reading its input is not an error of ours.
            let _ = s.write_all(&input).await;
        }
    };
    let drain = async move {
        let mut tail = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL * 2 {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
        tail
    };
    let waited = async {
        let (status, (), tail) = tokio::join!(child.wait(), feed, drain);
        (status, tail)
    };
    let outcome = tokio::select! {
        (status, tail) = waited => match status {
            Ok(s) if s.success() => Outcome::Succeeded,
            Ok(s) => Outcome::Failed(failure_message(s, &tail)),
            Err(e) => Outcome::Failed(format!("lost the handler: {e}")),
        },
        _ = tokio::time::sleep(job.timeout) => Outcome::TimedOut,
        _ = abort.cancelled() => Outcome::Aborted,
    };
    // Whatever happened, nothing of the group may live on: a handler that exited can still
    // have left children behind.
    kill_group(pgid, &mut child).await;
    outcome
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
        let a = argv(v);
        run(
            Job {
                argv: &a,
                input,
                timeout: Duration::from_millis(timeout_ms),
                env: &[("JOB_KIND", "test".into())],
            },
            &CancellationToken::new(),
        )
        .await
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
