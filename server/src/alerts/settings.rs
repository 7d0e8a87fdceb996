//! The alert task's own settings (SPEC §6): its flags, and the checked values it runs with.

use std::time::Duration;

use clap::Args;
use shared::Lang;

use super::Channel;

/// Alert flags and env vars (the config file has the same names in lower case).
#[derive(Clone, Debug, Default, Args)]
pub struct AlertArgs {
    /// Telegram bot token for alerts (with TELEGRAM_CHAT_ID).
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<String>,
    /// Telegram chat that receives the alerts.
    #[arg(long, env = "TELEGRAM_CHAT_ID")]
    pub telegram_chat_id: Option<String>,
    /// Telegram Bot API base URL (default https://api.telegram.org).
    #[arg(long, env = "TELEGRAM_API_BASE")]
    pub telegram_api_base: Option<String>,
    /// A URL that receives every alert batch as a JSON POST.
    #[arg(long, env = "ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<String>,
    /// How often the alert rules run (default 60s).
    #[arg(long, env = "ALERT_INTERVAL", value_parser = humantime::parse_duration)]
    pub alert_interval: Option<Duration>,
    /// Dead-letter count at or over which an alert is sent (default 1).
    #[arg(long, env = "ALERT_DEAD_LETTER_THRESHOLD")]
    pub alert_dead_letter_threshold: Option<u64>,
    /// The plan's name for the same setting (ALERT_DEAD_LETTER_THRESHOLD wins when both are set).
    #[arg(long, env = "NODE_ALERT_DEADLETTER_THRESHOLD")]
    pub node_alert_deadletter_threshold: Option<u64>,
    /// Lease of the replica that sends alerts; another takes over within it (default 15s).
    #[arg(long, env = "ALERT_LEASE", value_parser = humantime::parse_duration)]
    pub alert_lease: Option<Duration>,
    /// The language of the alert messages: ko (default, the plan's messages) or en.
    #[arg(long, env = "ALERT_LANGUAGE")]
    pub alert_language: Option<String>,
}

/// Alert settings (SPEC §6). No channel: alerts are off.
#[derive(Clone, Debug)]
pub struct AlertConfig {
    pub channels: Vec<Channel>,
    pub interval: Duration,
    pub dead_letter_threshold: u64,
    pub lease: Duration,
    pub language: Lang,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            interval: Duration::from_secs(60),
            dead_letter_threshold: 1,
            lease: Duration::from_secs(15),
            // The plan's team already receives its Korean messages.
            language: Lang::Ko,
        }
    }
}

impl AlertConfig {
    /// Flags/env over the file over the defaults, checked.
    pub fn resolve(args: &AlertArgs, file: &AlertArgs) -> anyhow::Result<Self> {
        let pick = |flag: &Option<String>, file: &Option<String>| {
            flag.clone()
                .or_else(|| file.clone())
                .filter(|v| !v.trim().is_empty())
        };
        let defaults = AlertConfig::default();
        let mut channels = Vec::new();
        let token = pick(&args.telegram_bot_token, &file.telegram_bot_token);
        let chat = pick(&args.telegram_chat_id, &file.telegram_chat_id);
        match (token, chat) {
            (Some(token), Some(chat_id)) => channels.push(Channel::Telegram {
                api_base: pick(&args.telegram_api_base, &file.telegram_api_base)
                    .unwrap_or_else(|| "https://api.telegram.org".to_string()),
                token,
                chat_id,
            }),
            (None, None) => {}
            _ => anyhow::bail!(
                "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID go together: set both or neither"
            ),
        }
        if let Some(url) = pick(&args.alert_webhook_url, &file.alert_webhook_url) {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "ALERT_WEBHOOK_URL must be an http(s) URL"
            );
            channels.push(Channel::Webhook { url });
        }
        let language = match pick(&args.alert_language, &file.alert_language) {
            None => defaults.language,
            Some(code) => Lang::parse(&code)
                .ok_or_else(|| anyhow::anyhow!("ALERT_LANGUAGE must be ko or en, not {code:?}"))?,
        };
        let config = AlertConfig {
            channels,
            language,
            interval: args
                .alert_interval
                .or(file.alert_interval)
                .unwrap_or(defaults.interval),
            dead_letter_threshold: args
                .alert_dead_letter_threshold
                .or(args.node_alert_deadletter_threshold)
                .or(file.alert_dead_letter_threshold)
                .or(file.node_alert_deadletter_threshold)
                .unwrap_or(defaults.dead_letter_threshold),
            lease: args
                .alert_lease
                .or(file.alert_lease)
                .unwrap_or(defaults.lease),
        };
        anyhow::ensure!(
            !config.interval.is_zero(),
            "alert_interval must be longer than zero"
        );
        anyhow::ensure!(
            !config.lease.is_zero(),
            "alert_lease must be longer than zero"
        );
        anyhow::ensure!(
            config.dead_letter_threshold >= 1,
            "alert_dead_letter_threshold must be at least 1"
        );
        Ok(config)
    }
}
