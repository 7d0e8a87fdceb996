//! A job's status (SPEC §10).

/// Where a job stands. A word this version does not know (a newer agent's) is kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Its `depends_on` have not all succeeded yet.
    Waiting,
    Running,
    /// An attempt failed; it is back on its queue.
    Retrying,
    Succeeded,
    /// Retries spent, or a dependency died.
    Dead,
    /// Its deadline passed before it ran.
    Expired,
    Other(String),
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        Self::Waiting,
        Self::Running,
        Self::Retrying,
        Self::Succeeded,
        Self::Dead,
        Self::Expired,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Dead => "dead",
            Self::Expired => "expired",
            Self::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| Self::Other(s.to_string()))
    }

    /// Nothing more will happen to it unless someone pushes or retries it again.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead | Self::Expired)
    }

    /// Ended badly: kept longer, listed first, may be retried by an operator.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Dead | Self::Expired)
    }

    /// What an operator looks at first: failures, then jobs being retried.
    pub fn is_problem(&self) -> bool {
        self.is_failure() || matches!(self, Self::Retrying)
    }

    /// The `job.<status>` event a change to this status is announced with, if any.
    pub fn event(&self) -> Option<&'static str> {
        Some(match self {
            Self::Running => "job.started",
            Self::Retrying => "job.retrying",
            Self::Succeeded => "job.succeeded",
            Self::Dead => "job.dead",
            Self::Expired => "job.expired",
            Self::Waiting => "job.waiting",
            Self::Other(_) => return None,
        })
    }
}

serde_as_word!(JobStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_are_kept() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), s);
        }
        assert_eq!(JobStatus::parse("paused").as_str(), "paused");
        assert!(JobStatus::Expired.is_final() && JobStatus::Expired.is_failure());
        assert!(!JobStatus::Retrying.is_final() && JobStatus::Retrying.is_problem());
        assert!(!JobStatus::Succeeded.is_problem());
        assert_eq!(serde_json::to_string(&JobStatus::Dead).unwrap(), "\"dead\"");
    }
}
