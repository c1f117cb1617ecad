//! Jobs and the subscriptions: `jobs`, `jobUpdates`, `logEntries`, `count`.

use std::time::Duration;

use async_graphql::{Context, Object, Result, SimpleObject, Subscription as GqlSubscription};
use futures_util::Stream;

use super::logs::LogEntry;
use super::{DateTime, GenericMutationReturn, agent, blocking, caller};
use crate::store;

#[derive(SimpleObject, Clone)]
pub struct ApiJob {
    pub uid: String,
    pub type_id: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub status_text: Option<String>,
    pub progress: Option<i32>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub finished_at: Option<DateTime>,
    pub error: Option<String>,
    pub result: Option<String>,
}

impl From<store::Job> for ApiJob {
    fn from(j: store::Job) -> Self {
        Self {
            uid: j.uid,
            type_id: j.type_id,
            name: j.name,
            description: j.description,
            status: j.status,
            status_text: j.status_text,
            progress: j.progress,
            created_at: DateTime(j.created_at),
            updated_at: DateTime(j.updated_at),
            finished_at: j.finished_at.map(DateTime),
            error: j.error,
            result: j.result,
        }
    }
}

async fn all_jobs(ctx: &Context<'_>) -> Result<Vec<ApiJob>> {
    let jobs = agent(ctx).jobs.clone();
    Ok(blocking(move || jobs.list())
        .await?
        .into_iter()
        .map(ApiJob::from)
        .collect())
}

/// SelfPrivacy's name for the query type of `jobs`.
pub struct Job;

#[Object]
impl Job {
    async fn get_jobs(&self, ctx: &Context<'_>) -> Result<Vec<ApiJob>> {
        all_jobs(ctx).await
    }

    async fn get_job(&self, ctx: &Context<'_>, job_id: String) -> Result<Option<ApiJob>> {
        Ok(all_jobs(ctx).await?.into_iter().find(|j| j.uid == job_id))
    }
}

#[derive(SimpleObject)]
pub struct GenericJobMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub job: Option<ApiJob>,
}

impl GenericJobMutationReturn {
    pub fn without_job(r: GenericMutationReturn) -> Self {
        Self {
            success: r.success,
            message: r.message,
            code: r.code,
            job: None,
        }
    }

    pub fn started(message: &str, job: store::Job) -> Self {
        Self {
            success: true,
            message: message.into(),
            code: 200,
            job: Some(job.into()),
        }
    }
}

pub struct JobMutations;

#[Object]
impl JobMutations {
    pub async fn remove_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> Result<GenericMutationReturn> {
        let jobs = agent(ctx).jobs.clone();
        Ok(if blocking(move || jobs.remove(&job_id)).await? {
            GenericMutationReturn::ok("Job removed")
        } else {
            GenericMutationReturn::with(404, "Job not found")
        })
    }
}

pub struct Subscription;

#[GqlSubscription]
impl Subscription {
    /// Every job, each time any of them changes.
    async fn job_updates(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Vec<ApiJob>>> {
        caller(ctx)?;
        let jobs = agent(ctx).jobs.clone();
        let changes = jobs.subscribe();
        Ok(futures_util::stream::unfold(
            (jobs, changes),
            |(jobs, mut changes)| async move {
                changes.changed().await.ok()?;
                let list = {
                    let jobs = jobs.clone();
                    blocking(move || jobs.list()).await.ok()?
                };
                Some((
                    list.into_iter().map(ApiJob::from).collect(),
                    (jobs, changes),
                ))
            },
        ))
    }

    /// SelfPrivacy's test subscription: 0 to 9, one every half second.
    async fn count(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = i32>> {
        caller(ctx)?;
        Ok(futures_util::stream::unfold(0, |n| async move {
            if n >= 10 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some((n, n + 1))
        }))
    }

    /// New journal entries from now on.
    async fn log_entries(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = LogEntry>> {
        caller(ctx)?;
        super::logs::follow().await
    }
}
