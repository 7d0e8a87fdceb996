//! The link over REST (Contract 3's agent calls): register, heartbeat, poll commands, report
//! results. Used when the mode machine says REST, or beside Redis in hybrid mode.

use std::time::Duration;

use shared::control::{stream, AgentHeartbeat, CommandResult, PollReply};

use super::schedule::BeatRest;
use super::Link;
use crate::state::Applied;

impl Link {
    pub(super) fn rest(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Option<reqwest::RequestBuilder> {
        let h = self.http.as_ref()?;
        Some(
            h.client
                .request(method, format!("{}{path}", h.base))
                .bearer_auth(&h.token),
        )
    }

    /// Registers over REST; the answer's heartbeat interval is the one to use.
    pub(super) async fn register_rest(&self) -> Option<Duration> {
        let req = self.rest(reqwest::Method::POST, "/api/agents/register")?;
        match req.json(&self.registration()).send().await {
            Ok(r) if r.status().is_success() => {
                let reply: shared::control::RegisterReply = r.json().await.ok()?;
                tracing::info!(agent_id = %reply.agent_id, "registered over REST");
                Some(Duration::from_secs(reply.heartbeat_interval_s.max(1)))
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "the control plane refused the registration");
                None
            }
            Err(e) => {
                tracing::debug!("register over REST: {e}");
                None
            }
        }
    }

    pub(super) async fn beat_rest(&self, beat: &AgentHeartbeat) -> BeatRest {
        let path = format!("/api/agents/{}/heartbeat", self.agent.id);
        let Some(req) = self.rest(reqwest::Method::POST, &path) else {
            return BeatRest::Failed;
        };
        match req.json(beat).send().await {
            Ok(r) if r.status().is_success() => BeatRest::Sent,
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => BeatRest::Unknown,
            Ok(r) => {
                tracing::debug!(status = %r.status(), "heartbeat over REST refused");
                BeatRest::Failed
            }
            Err(e) => {
                tracing::debug!("heartbeat over REST: {e}");
                BeatRest::Failed
            }
        }
    }

    pub(super) async fn poll_rest(&self) {
        let cursor = self.commands.cursor().await;
        let after = if cursor.is_empty() {
            stream::START
        } else {
            &cursor
        };
        let path = format!("/api/agents/{}/commands?after={after}", self.agent.id);
        let Some(req) = self.rest(reqwest::Method::GET, &path) else {
            return;
        };
        let reply: PollReply = match req.send().await {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("the command poll answered something else: {e}");
                    return;
                }
            },
            Ok(r) => {
                tracing::debug!(status = %r.status(), "command poll refused");
                return;
            }
            Err(e) => {
                tracing::debug!("command poll: {e}");
                return;
            }
        };
        for cmd in &reply.commands {
            self.commands.handle(cmd).await;
        }
        self.commands.advance(&reply.cursor).await;
    }

    pub(super) async fn result_rest(&self, a: &Applied) -> bool {
        let path = format!("/api/commands/{}/results", a.command_id);
        let Some(req) = self.rest(reqwest::Method::POST, &path) else {
            return false;
        };
        let body = CommandResult {
            agent_id: self.agent.id.clone(),
            status: a.status,
            message: a.message.clone(),
        };
        match req.json(&body).send().await {
            Ok(r) if r.status().is_success() => true,
            // The server does not know it (trimmed from its ledger, or we are no target):
            // saying it again will not change that.
            Ok(r)
                if r.status().is_client_error()
                    && r.status() != reqwest::StatusCode::UNAUTHORIZED =>
            {
                tracing::warn!(command = %a.command_id, status = %r.status(), "result refused; dropped");
                true
            }
            _ => false,
        }
    }
}
