//! Jobs you can follow (SPEC §10, Contract 4), the server's half: the job index kept from the
//! agents' history records ([`index`]), the list, search, detail and retry endpoints
//! ([`http`]), a job's live log ([`log`]) and the events stream ([`events`]).

pub mod events;
mod http;
pub mod index;
mod log;
mod retry;

use std::sync::{Arc, RwLock};

use shared::jobs::record::{detail, Fields};
use shared::jobs::{is_valid_id, keys, JobDetail, ID_RULE};
use tokio::sync::broadcast;

use crate::control::Store;
use crate::error::ApiError;

pub use http::router;

/// What the job handlers share.
#[derive(Clone)]
pub struct Jobs {
    pub store: Store,
    pub index: index::Shared,
    /// Job and agent events as JSON, for `GET /api/events`.
    pub events: broadcast::Sender<Arc<str>>,
}

impl Jobs {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            index: Arc::new(RwLock::new(index::Index::default())),
            events: broadcast::channel(events::BUFFER).0,
        }
    }

    /// A page of the list from the index (no Redis call).
    pub fn page(&self, f: &index::Filter, limit: usize, cursor: Option<&str>) -> index::Page {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .page(f, limit, cursor)
    }

    /// One job's record, from Redis (one `HGETALL`).
    pub async fn lookup(&self, id: &str) -> Result<JobDetail, ApiError> {
        check_id(id)?;
        let key = keys::record(id);
        let f: Fields = self
            .store
            .run(|mut c| async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await })
            .await?;
        detail(id, &f).ok_or_else(|| ApiError::NotFound(format!("no job {id} in the history")))
    }
}

/// The id rule of SPEC §10, as a 400 naming the field.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::field("id", format!("a job id is {ID_RULE}")))
    }
}

/// The jobs pages' data during SSR: the list from the index, a job from Redis.
pub fn source(jobs: Jobs) -> app::JobsSource {
    let for_detail = jobs.clone();
    app::JobsSource {
        list: Arc::new(move |query: &str| {
            let uri: axum::http::Uri = format!("/?{query}")
                .parse()
                .map_err(|e| app::LoadError::Server(format!("the query: {e}")))?;
            let asked = axum::extract::Query::<http::ListQuery>::try_from_uri(&uri)
                .map_err(|e| app::LoadError::Server(e.body_text()))?;
            let (filter, limit) = asked
                .filter()
                .map_err(|e| app::LoadError::Server(e.to_string()))?;
            let page = jobs.page(&filter, limit, asked.cursor.as_deref());
            Ok(shared::jobs::JobsReply {
                jobs: page.rows,
                next_cursor: page.next_cursor,
            })
        }),
        detail: Arc::new(move |id: String| {
            let jobs = for_detail.clone();
            Box::pin(async move {
                match jobs.lookup(&id).await {
                    Ok(d) => Ok(Some(d)),
                    Err(
                        crate::error::ApiError::NotFound(_) | crate::error::ApiError::BadRequest(_),
                    ) => Ok(None),
                    Err(e) => Err(app::LoadError::Server(e.to_string())),
                }
            })
        }),
    }
}
