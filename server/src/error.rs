//! `ApiError`: every handler failure as a status and the Contract-3 error body
//! `{"error", "field"}`. Internal causes are logged, never shown to clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::control::{ErrorBody, FieldError};

use crate::redis_conn::RedisCallError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(#[from] FieldError),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    /// A cap is reached (503); the message says which and what to do instead.
    #[error("{0}")]
    Busy(String),
    #[error("Redis is unreachable; nothing was changed")]
    Redis(#[from] RedisCallError),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Redis(_) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A 400 naming `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest(FieldError::new(field, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Redis(cause) => tracing::warn!(error = %cause, "request failed: Redis"),
            Self::Internal(cause) => tracing::error!(error = %cause, "request failed"),
            _ => {}
        }
        let field = match &self {
            Self::BadRequest(e) => Some(e.field.clone()),
            _ => None,
        };
        let error = match &self {
            Self::BadRequest(e) => e.message.clone(),
            other => other.to_string(),
        };
        (self.status(), Json(ErrorBody { error, field })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_causes_stay_in_the_log() {
        let r = ApiError::Internal("password=hunter2 in a stack".into()).into_response();
        assert_eq!(r.status(), 500);
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"error":"internal error"}"#);
        let r = ApiError::field("selector.matchExpressions[0].operator", "unknown operator")
            .into_response();
        assert_eq!(r.status(), 400);
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["field"], "selector.matchExpressions[0].operator");
    }
}
