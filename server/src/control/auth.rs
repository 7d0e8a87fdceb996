//! Bearer tokens: kept as SHA-256 digests and compared in constant time, so neither a token
//! nor its length leaks through timing. [`Caller`] is who sent a request (token digest and
//! peer address); [`Caller::check`] decides whether that is enough for a call.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use shared::control::Role;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// A configured token. `Debug` never prints it.
#[derive(Clone)]
pub struct Token([u8; 32]);

impl Token {
    pub fn new(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    fn matches(&self, presented: &[u8; 32]) -> bool {
        self.0.ct_eq(presented).into()
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Which token a call takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Operator,
    Agent,
    /// Unregistering: the agent itself or an operator.
    AgentOrOperator,
}

/// Who sent a request: the digest of its bearer token (if any) and the peer address.
#[derive(Clone, Debug)]
pub struct Caller {
    presented: Option<[u8; 32]>,
    pub remote: String,
}

impl Caller {
    /// A caller over Redis (an agent's inbox message): trusted as an agent, since writing to
    /// Redis already takes Redis's own credentials.
    pub fn redis() -> Self {
        Self {
            presented: None,
            remote: "redis".into(),
        }
    }

    /// The role this caller proves, given the configured tokens.
    pub fn role(&self, operator: Option<&Token>, agent: Option<&Token>) -> Role {
        let Some(p) = &self.presented else {
            return Role::None;
        };
        // Both comparisons always run, so timing does not say which token was close.
        let is_op = operator.is_some_and(|t| t.matches(p));
        let is_agent = agent.is_some_and(|t| t.matches(p));
        match (is_op, is_agent) {
            (true, _) => Role::Operator,
            (false, true) => Role::Agent,
            _ => Role::None,
        }
    }

    /// The role to record, or the refusal: 403 when the server has no token for this call
    /// (read-only), 401 when the token is missing or wrong.
    pub fn check(
        &self,
        need: Need,
        operator: Option<&Token>,
        agent: Option<&Token>,
    ) -> Result<Role, (Role, ApiError)> {
        let role = self.role(operator, agent);
        let allowed = match need {
            Need::Operator => role == Role::Operator,
            Need::Agent => role == Role::Agent,
            Need::AgentOrOperator => role != Role::None,
        };
        if allowed {
            return Ok(role);
        }
        let configured = match need {
            Need::Operator => operator.is_some(),
            Need::Agent => agent.is_some(),
            Need::AgentOrOperator => operator.is_some() || agent.is_some(),
        };
        let err = if !configured {
            ApiError::Forbidden(match need {
                Need::Agent => "the agent API is off: set AGENT_TOKEN on the server to let agents \
                                register"
                    .into(),
                _ => "read-only: this server has no OPERATOR_TOKEN configured; set OPERATOR_TOKEN \
                      to enable commands, label changes and queue actions"
                    .into(),
            })
        } else if self.presented.is_none() {
            ApiError::Unauthorized("missing bearer token (Authorization: Bearer <token>)".into())
        } else {
            ApiError::Unauthorized("wrong token for this call".into())
        };
        Err((role, err))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into());
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(Self { presented, remote })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(token: Option<&str>) -> Caller {
        Caller {
            presented: token.map(|t| Sha256::digest(t.as_bytes()).into()),
            remote: "127.0.0.1:1".into(),
        }
    }

    #[test]
    fn tokens_decide_the_role() {
        let op = Token::new("operator-secret-0001");
        let ag = Token::new("agent-secret-000001");
        let (o, a) = (Some(&op), Some(&ag));
        assert_eq!(
            caller(Some("operator-secret-0001"))
                .check(Need::Operator, o, a)
                .unwrap(),
            Role::Operator
        );
        assert_eq!(
            caller(Some("agent-secret-000001"))
                .check(Need::Agent, o, a)
                .unwrap(),
            Role::Agent
        );
        let (role, e) = caller(Some("agent-secret-000001"))
            .check(Need::Operator, o, a)
            .unwrap_err();
        assert_eq!((role, e.status().as_u16()), (Role::Agent, 401));
        let (_, e) = caller(None).check(Need::Operator, o, a).unwrap_err();
        assert_eq!(e.status(), 401);
        let (_, e) = caller(Some("nope"))
            .check(Need::AgentOrOperator, o, a)
            .unwrap_err();
        assert_eq!(e.status(), 401);
        assert!(caller(Some("operator-secret-0001"))
            .check(Need::AgentOrOperator, o, a)
            .is_ok());
    }

    #[test]
    fn without_a_token_configured_the_call_is_read_only() {
        let (_, e) = caller(Some("anything"))
            .check(Need::Operator, None, None)
            .unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.to_string().contains("OPERATOR_TOKEN"));
        let (_, e) = caller(None).check(Need::Agent, None, None).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.to_string().contains("AGENT_TOKEN"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(
            format!("{:?}", Token::new("s3cret-s3cret-s3cret")),
            "Token(***)"
        );
    }
}
