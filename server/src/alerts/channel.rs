//! Delivery channels: Telegram Bot API `sendMessage` and a generic JSON webhook.
//!
//! Each answer is sorted into delivered, retry (transient: 429, 5xx, timeouts, network) or
//! permanent (the chat is gone, the bot was blocked, the request is wrong).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Telegram's limit on one message's text.
pub const TELEGRAM_MAX_CHARS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    Telegram {
        api_base: String,
        token: String,
        chat_id: String,
    },
    Webhook {
        url: String,
    },
}

impl Channel {
    /// The name used in metrics, the outbox and the alerts API.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Telegram { .. } => "telegram",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// One message for one channel, as kept in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub batch: String,
    pub channel: String,
    pub text: String,
    pub created_at: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("transient failure ({reason}), retrying")]
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[derive(Deserialize)]
struct TelegramAnswer {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<TelegramParameters>,
}

#[derive(Deserialize)]
struct TelegramParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// Sends one delivery over its channel.
pub async fn send(
    http: &reqwest::Client,
    channel: &Channel,
    delivery: &Delivery,
) -> Result<(), DeliveryError> {
    let request = match channel {
        Channel::Telegram {
            api_base,
            token,
            chat_id,
        } => http
            .post(format!(
                "{}/bot{token}/sendMessage",
                api_base.trim_end_matches('/')
            ))
            .json(&serde_json::json!({ "chat_id": chat_id, "text": delivery.text })),
        Channel::Webhook { url } => http.post(url).json(&serde_json::json!({
            "source": "agent-office",
            "batch": delivery.batch,
            "created_at": delivery.created_at,
            "text": delivery.text,
        })),
    };
    let response = request.send().await.map_err(|e| DeliveryError::Retry {
        after: None,
        // Without the URL: it holds the bot token.
        reason: e.without_url().to_string(),
    })?;
    let status = response.status().as_u16();
    let retry_after_header = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = response.text().await.unwrap_or_default();
    classify(status, retry_after_header, &body)
}

/// Sorts an HTTP answer (pure, so every case is tested without a network).
pub fn classify(
    status: u16,
    retry_after_header: Option<u64>,
    body: &str,
) -> Result<(), DeliveryError> {
    let answer: Option<TelegramAnswer> = serde_json::from_str(body).ok();
    let description = answer
        .as_ref()
        .and_then(|a| a.description.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        200..=299 => Ok(()),
        429 => Err(DeliveryError::Retry {
            after: answer
                .and_then(|a| a.parameters)
                .and_then(|p| p.retry_after)
                .or(retry_after_header)
                .map(Duration::from_secs),
            reason: description,
        }),
        408 | 500..=599 => Err(DeliveryError::Retry {
            after: None,
            reason: description,
        }),
        _ => Err(DeliveryError::Permanent(description)),
    }
}

/// Splits a batch's text into messages of at most `max` characters, on line breaks where it can.
pub fn split_message(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.lines() {
        let mut line: String = line.to_string();
        let mut len = line.chars().count();
        if len > max {
            line = line.chars().take(max - 1).collect::<String>() + "…";
            len = max;
        }
        let extra = if current.is_empty() { len } else { len + 1 };
        if current_len + extra > max {
            out.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if !current.is_empty() {
            current.push('\n');
            current_len += 1;
        }
        current.push_str(&line);
        current_len += len;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_answers_are_sorted() {
        assert_eq!(classify(200, None, r#"{"ok":true}"#), Ok(()));
        assert_eq!(
            classify(
                429,
                None,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#
            ),
            Err(DeliveryError::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "Too Many Requests: retry after 7".into()
            })
        );
        assert!(
            matches!(classify(429, Some(3), ""), Err(DeliveryError::Retry { after: Some(d), .. }) if d.as_secs() == 3)
        );
        assert!(matches!(
            classify(502, None, "bad gateway"),
            Err(DeliveryError::Retry { after: None, .. })
        ));
        assert_eq!(
            classify(
                400,
                None,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
            ),
            Err(DeliveryError::Permanent(
                "Bad Request: chat not found".into()
            ))
        );
        assert!(matches!(
            classify(403, None, r#"{"ok":false,"description":"Forbidden: bot was blocked by the user"}"#),
            Err(DeliveryError::Permanent(d)) if d.contains("blocked")
        ));
    }

    #[test]
    fn long_batches_are_split_under_the_limit() {
        let lines: Vec<String> = (0..500)
            .map(|i| format!("🔴 [render-worker-{i:04}] worker down"))
            .collect();
        let text = lines.join("\n");
        let parts = split_message(&text, TELEGRAM_MAX_CHARS);
        assert!(parts.len() > 1);
        assert!(parts
            .iter()
            .all(|p| p.chars().count() <= TELEGRAM_MAX_CHARS));
        assert_eq!(parts.join("\n"), text, "nothing is lost between parts");
        let huge = "x".repeat(10_000);
        let parts = split_message(&huge, TELEGRAM_MAX_CHARS);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].chars().count(), TELEGRAM_MAX_CHARS);
        assert_eq!(split_message("one", 4096), ["one"]);
    }
}
