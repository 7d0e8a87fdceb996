//! The jobs pages' data: the list from the server's job index and a job's record during SSR,
//! the JSON API (`/api/jobs`) in the browser. The same `shared` types either way.

use shared::jobs::{JobDetail, JobsReply};

use crate::error::LoadError;

pub const JOBS_URL: &str = "/api/jobs";

/// `/api/jobs` answered for a query string.
#[cfg(feature = "ssr")]
pub type ListFn = std::sync::Arc<dyn Fn(&str) -> Result<JobsReply, LoadError> + Send + Sync>;
/// A job's record by id (`Ok(None)`: none).
#[cfg(feature = "ssr")]
pub type DetailFn =
    std::sync::Arc<dyn Fn(String) -> crate::control_data::Pending<Option<JobDetail>> + Send + Sync>;

/// What the server gives the jobs pages during SSR, provided as Leptos context.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct JobsSource {
    /// From the server's memory (no Redis call).
    pub list: ListFn,
    /// One Redis call.
    pub detail: DetailFn,
}

/// The jobs a query string asks for (`queue=…&status=…&q=…&cursor=…&limit=…`).
pub async fn load_jobs(query: String) -> Result<JobsReply, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = leptos::prelude::use_context::<JobsSource>() {
        return (s.list)(&query);
    }
    crate::nodes::load(None, format!("{JOBS_URL}?{query}")).await
}

/// One job, `None` when the history has no such job.
pub async fn load_job(id: String) -> Result<Option<JobDetail>, LoadError> {
    #[cfg(feature = "ssr")]
    if let Some(s) = leptos::prelude::use_context::<JobsSource>() {
        return (s.detail)(id).await;
    }
    let url = format!("{JOBS_URL}/{}", shared::fleet::encode(&id));
    match crate::nodes::load(None, url).await {
        Ok(d) => Ok(Some(d)),
        Err(LoadError::Status { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
