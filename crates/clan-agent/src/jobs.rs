//! Jobs: every long operation runs on its own thread as a job in the agent's
//! database, with progress from the operation's events; subscribers hear of every
//! change. A client that goes away does not stop a job.

use std::sync::{Arc, Condvar, Mutex};

use clan_core::event::{Event, Reporter};
use tokio::sync::watch;

use crate::AgentError;
use crate::store::{Job, Store, local_now};

pub struct Jobs {
    store: Arc<Store>,
    changed: watch::Sender<u64>,
    /// Jobs whose threads run; the agent stops only once none does.
    active: (Mutex<usize>, Condvar),
}

/// How a job ended: its result text, or its error.
pub type Outcome = Result<String, String>;

impl Jobs {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            changed: watch::channel(0).0,
            active: (Mutex::new(0), Condvar::new()),
        }
    }

    /// Waits until no job runs (the agent stopping: a backup, a restore or the
    /// update that restarts the agent ends, and is recorded, first).
    pub fn wait_idle(&self) {
        let (count, idle) = &self.active;
        let mut n = count.lock().expect("active");
        if *n > 0 {
            tracing::info!("waiting for {n} running job(s) to end");
        }
        while *n > 0 {
            n = idle.wait(n).expect("active");
        }
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Wakes on every change of any job.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn list(&self) -> Result<Vec<Job>, AgentError> {
        self.store.jobs()
    }

    pub fn remove(&self, uid: &str) -> Result<bool, AgentError> {
        let removed = self.store.remove_job(uid)?;
        if removed {
            self.notify();
        }
        Ok(removed)
    }

    /// The job of this type prefix that is CREATED or RUNNING, if any.
    pub fn running(&self, type_prefix: &str) -> Result<Option<Job>, AgentError> {
        Ok(self.list()?.into_iter().find(|j| {
            j.type_id.starts_with(type_prefix) && matches!(j.status.as_str(), "CREATED" | "RUNNING")
        }))
    }

    /// Writes a change of `job` (not when it was removed) and tells subscribers.
    fn write(&self, job: &mut Job, change: impl FnOnce(&mut Job)) {
        change(job);
        job.updated_at = local_now();
        if matches!(job.status.as_str(), "FINISHED" | "ERROR") {
            job.finished_at = Some(job.updated_at.clone());
        }
        // A database that fails here fails the next read too, where it is reported.
        if self.store.update_job(job).unwrap_or(false) {
            self.notify();
        }
    }

    /// Creates a job and runs `work` as it on a thread of its own; returns the job
    /// as created.
    pub fn start(
        self: &Arc<Self>,
        type_id: &str,
        name: &str,
        description: &str,
        work: impl FnOnce(&dyn Reporter) -> Outcome + Send + 'static,
    ) -> Result<Job, AgentError> {
        let job = self.store.add_job(type_id, name, description)?;
        tracing::info!(job = %job.uid, "{type_id}: started");
        self.notify();
        let jobs = self.clone();
        let mut running = job.clone();
        let running_uid = job.uid.clone();
        *self.active.0.lock().expect("active") += 1;
        std::thread::spawn(move || {
            jobs.write(&mut running, |j| j.status = "RUNNING".into());
            let reporter = JobReporter {
                jobs: &jobs,
                job: Mutex::new(running),
            };
            let outcome = work(&reporter);
            match &outcome {
                Ok(result) => tracing::info!(job = %running_uid, "finished: {result}"),
                Err(error) => tracing::warn!(job = %running_uid, "failed: {error}"),
            }
            let mut job = reporter.job.into_inner().expect("job");
            jobs.write(&mut job, |j| match outcome {
                Ok(result) => {
                    j.status = "FINISHED".into();
                    j.progress = Some(100);
                    j.result = Some(result);
                }
                Err(error) => {
                    j.status = "ERROR".into();
                    j.error = Some(error);
                }
            });
            let (count, idle) = &jobs.active;
            *count.lock().expect("active") -= 1;
            idle.notify_all();
        });
        Ok(job)
    }
}

/// Turns an operation's events into the job's status text and progress.
struct JobReporter<'a> {
    jobs: &'a Jobs,
    job: Mutex<Job>,
}

impl Reporter for JobReporter<'_> {
    fn report(&self, event: Event) {
        let event = match event {
            Event::Machine { of, .. } => *of,
            e => e,
        };
        let mut job = self.job.lock().expect("job");
        match event {
            Event::Step { provider, step } => {
                let text = match provider {
                    Some(p) => format!("{p}: {step}"),
                    None => step,
                };
                self.jobs.write(&mut job, |j| j.status_text = Some(text));
            }
            Event::Warning { message } => {
                self.jobs.write(&mut job, |j| j.status_text = Some(message));
            }
            Event::Progress {
                done,
                total: Some(total),
                ..
            } if total > 0 => {
                // Whole percents below 100: the job ends at 100 when it finishes.
                let percent = (done.saturating_mul(100) / total).min(99) as i32;
                if job.progress != Some(percent) {
                    self.jobs.write(&mut job, |j| j.progress = Some(percent));
                }
            }
            _ => {}
        }
    }
}
