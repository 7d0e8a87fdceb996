//! The control plane's own settings: the two tokens and the orphan grace period.

use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::auth::Token;

/// Control-plane flags and env vars; the config file takes the same names in a `[control]`
/// table (`operator_token = "..."`).
#[derive(Clone, Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlArgs {
    /// Bearer token for operator calls (commands, labels, queue actions). Unset: read-only.
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Bearer token for agent calls (register, heartbeat, command polling, results).
    #[arg(long, env = "AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// How long a processing list's owner must have been silent before its jobs may be
    /// requeued (default 60s).
    #[arg(long, env = "REQUEUE_GRACE", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub requeue_grace: Option<Duration>,
}

/// What the control plane runs with. Tokens are kept as digests only.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    pub operator: Option<Token>,
    pub agent: Option<Token>,
    pub requeue_grace: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            operator: None,
            agent: None,
            requeue_grace: Duration::from_secs(60),
        }
    }
}

impl ControlConfig {
    /// Flags/env over the file's `[control]` table over the defaults.
    pub fn resolve(args: &ControlArgs, file: Option<&ControlArgs>) -> anyhow::Result<Self> {
        let empty = ControlArgs::default();
        let file = file.unwrap_or(&empty);
        let token = |flag: &Option<String>, file: &Option<String>, name: &str| match flag
            .as_deref()
            .or(file.as_deref())
            .map(str::trim)
        {
            None | Some("") => Ok(None),
            Some(t) if t.len() < 16 => anyhow::bail!(
                "{name} is {} characters; use at least 16 (e.g. `openssl rand -hex 16`)",
                t.len()
            ),
            Some(t) => Ok(Some(Token::new(t))),
        };
        let config = Self {
            operator: token(&args.operator_token, &file.operator_token, "OPERATOR_TOKEN")?,
            agent: token(&args.agent_token, &file.agent_token, "AGENT_TOKEN")?,
            requeue_grace: args
                .requeue_grace
                .or(file.requeue_grace)
                .unwrap_or(Self::default().requeue_grace),
        };
        if let (Some(o), Some(a)) = (&config.operator, &config.agent) {
            anyhow::ensure!(
                o != a,
                "OPERATOR_TOKEN and AGENT_TOKEN must differ: an agent must not be able to command"
            );
        }
        Ok(config)
    }
}
