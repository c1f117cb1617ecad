//! Long operations (backups, restores, updates, vars): each runs on a thread of its
//! own as a job that records the operation's events; the browser follows them as
//! server-sent events and gets the result the CLI would print. Jobs live as long
//! as `clan ui` runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use clan_core::event::{Event, Reporter};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: u64,
    pub title: String,
    pub status: Status,
    pub events: Vec<Event>,
    /// What the operation returned (done) …
    pub result: Option<Value>,
    /// … or why it failed.
    pub error: Option<String>,
}

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<BTreeMap<u64, Job>>,
    /// Bumped on every change of any job.
    changed: Mutex<Option<watch::Sender<u64>>>,
}

impl Jobs {
    fn sender(&self) -> watch::Sender<u64> {
        self.changed
            .lock()
            .expect("jobs")
            .get_or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender().subscribe()
    }

    fn change(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.jobs.lock().expect("jobs").get_mut(&id) {
            f(job);
        }
        self.sender().send_modify(|n| *n += 1);
    }

    pub fn get(&self, id: u64) -> Option<Job> {
        self.jobs.lock().expect("jobs").get(&id).cloned()
    }

    /// Starts `work` as a job titled `title`; returns its id.
    pub fn start(
        self: &Arc<Self>,
        title: String,
        work: impl FnOnce(&dyn Reporter) -> Result<Value, String> + Send + 'static,
    ) -> u64 {
        let id = {
            let mut jobs = self.jobs.lock().expect("jobs");
            let id = jobs.keys().next_back().map_or(1, |n| n + 1);
            jobs.insert(
                id,
                Job {
                    id,
                    title,
                    status: Status::Running,
                    events: Vec::new(),
                    result: None,
                    error: None,
                },
            );
            id
        };
        let jobs = self.clone();
        std::thread::spawn(move || {
            let reporter = |e: Event| jobs.change(id, |j| j.events.push(e));
            let outcome = work(&reporter);
            jobs.change(id, |j| match outcome {
                Ok(v) => {
                    j.status = Status::Done;
                    j.result = Some(v);
                }
                Err(e) => {
                    j.status = Status::Failed;
                    j.error = Some(e);
                }
            });
        });
        id
    }
}
