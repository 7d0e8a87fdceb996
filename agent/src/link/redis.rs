//! The link over Redis: the health check (which also reads the global pause), the inbox
//! (registration, deliveries, results), the heartbeat key, and the command intake — a pub/sub
//! wake-up plus the agent's command stream read from its cursor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use shared::control::{keys, stream, AgentCommand, AgentHeartbeat, InboxMessage};

use super::{Link, READ_BATCH};
use crate::agent::REDIS_TIMEOUT;
use crate::mode::{uses_redis, Mode};

impl Link {
    /// One `GET queue:paused`: the health check and the global pause flag in one call.
    pub(super) async fn check_redis(&self) -> bool {
        let r = async {
            let mut c = self.agent.redis().await?;
            redis::cmd("GET")
                .arg(shared::keys::PAUSED)
                .query_async::<Option<String>>(&mut c)
                .await
        };
        let ok = match tokio::time::timeout(REDIS_TIMEOUT, r).await {
            Ok(Ok(flag)) => {
                self.agent
                    .global_paused
                    .send_if_modified(|p| std::mem::replace(p, flag.as_deref() == Some("1")) != *p);
                true
            }
            _ => {
                self.agent.lost().await;
                false
            }
        };
        self.agent.set_redis_healthy(ok);
        ok
    }

    pub(super) async fn inbox(&self, msg: &InboxMessage) -> redis::RedisResult<()> {
        // Serialising our own message types cannot fail.
        let json = serde_json::to_string(msg).unwrap_or_default();
        let mut c = self.agent.redis().await?;
        redis::cmd("XADD")
            .arg(keys::INBOX)
            .arg("MAXLEN")
            .arg("~")
            .arg(keys::MAX_INBOX)
            .arg("*")
            .arg(stream::INBOX_FIELD)
            .arg(json)
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
    }

    pub(super) async fn register_redis(&self) -> redis::RedisResult<()> {
        let r = self
            .inbox(&InboxMessage::Register(self.registration()))
            .await;
        if let Err(e) = &r {
            tracing::debug!("register over redis: {e}");
        }
        r
    }

    /// SETs the heartbeat and asks whether the registry holds us, in one round trip.
    pub(super) async fn beat_redis(&self, beat: &AgentHeartbeat) -> redis::RedisResult<bool> {
        let mut c = self.agent.redis().await?;
        // Serialising our own heartbeat cannot fail.
        let json = serde_json::to_string(beat).unwrap_or_default();
        let ((), registered): ((), bool) = redis::pipe()
            .cmd("SET")
            .arg(keys::beat(&self.agent.id))
            .arg(json)
            .arg("EX")
            .arg(keys::BEAT_TTL_S)
            .cmd("HEXISTS")
            .arg(keys::AGENTS)
            .arg(&self.agent.id)
            .query_async(&mut c)
            .await?;
        Ok(registered)
    }

    /// Redis mode's command intake: the pub/sub wake-up, and the agent's stream read from
    /// the last cursor on every (re)connect and every poll interval (a missed publish
    /// waits at most that long).
    pub(super) async fn listen(self: Arc<Self>) {
        let mut mode = self.agent.mode.subscribe();
        loop {
            if self.agent.exit.is_cancelled() {
                return;
            }
            let current = *mode.borrow_and_update();
            if !uses_redis(current) {
                tokio::select! {
                    _ = mode.changed() => continue,
                    _ = self.agent.exit.cancelled() => return,
                }
            }
            if let Err(e) = self.listen_once(&mut mode).await {
                tracing::debug!("command subscription: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.agent.exit.cancelled() => return,
            }
        }
    }

    pub(super) async fn listen_once(
        &self,
        mode: &mut tokio::sync::watch::Receiver<Mode>,
    ) -> redis::RedisResult<()> {
        let subscribe = async {
            let client = self.agent.redis_client(REDIS_TIMEOUT).await?;
            client.get_async_pubsub().await
        };
        let mut pubsub = tokio::time::timeout(REDIS_TIMEOUT, subscribe)
            .await
            .map_err(|_| timeout_error())??;
        pubsub.subscribe(keys::wake(&self.agent.id)).await?;
        let mut messages = pubsub.into_on_message();
        self.catch_up().await?;
        let every = self.agent.config.communication.command_poll_interval;
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { return Ok(()) }; // connection closed
                    match serde_json::from_slice::<AgentCommand>(msg.get_payload_bytes()) {
                        Ok(cmd) => self.take(&cmd).await,
                        Err(e) => tracing::warn!("a command message that is not a command: {e}"),
                    }
                }
                _ = tokio::time::sleep(every) => self.catch_up().await?,
                _ = mode.changed() => {
                    let current = *mode.borrow_and_update();
                    if !uses_redis(current) {
                        return Ok(());
                    }
                }
                _ = self.agent.exit.cancelled() => return Ok(()),
            }
        }
    }

    /// A command read over Redis: said delivered, applied once, result reported.
    pub(super) async fn take(&self, cmd: &AgentCommand) {
        if self.commands.handle(cmd).await {
            let delivered = InboxMessage::Delivered {
                agent_id: self.agent.id.clone(),
                command_id: cmd.command_id.clone(),
            };
            if let Err(e) = self.inbox(&delivered).await {
                tracing::debug!("delivered: {e}");
            }
            let ok = self.agent.is_redis_healthy();
            let mode = *self.agent.mode.borrow();
            self.report(mode, ok).await;
        }
    }

    /// Reads the agent's stream after the last cursor, in batches.
    pub(super) async fn catch_up(&self) -> redis::RedisResult<()> {
        loop {
            let cursor = self.commands.cursor().await;
            let start = stream::range_after(&cursor);
            let mut c = self.agent.redis().await?;
            let entries: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(keys::stream(&self.agent.id))
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(READ_BATCH)
                .query_async(&mut c)
                .await?;
            let n = entries.len();
            for (id, fields) in entries {
                let parsed = fields
                    .get(stream::COMMAND_FIELD)
                    .map(|b| serde_json::from_slice::<AgentCommand>(b));
                match parsed {
                    Some(Ok(mut cmd)) => {
                        cmd.cursor = id.clone();
                        self.take(&cmd).await;
                    }
                    _ => {
                        tracing::warn!(entry = %id, "a stream entry that is not a command; skipped")
                    }
                }
                self.commands.advance(&id).await;
            }
            if n < READ_BATCH {
                return Ok(());
            }
        }
    }
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis did not answer in time",
    ))
}
