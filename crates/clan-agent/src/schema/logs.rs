//! `logs`: the systemd journal, paged by cursors as SelfPrivacy pages it.

use std::time::Duration;

use async_graphql::{Object, Result, SimpleObject};
use futures_util::Stream;

use super::{DateTime, blocking};
use crate::system::{self, Page};

/// SelfPrivacy's limit on one page.
const MAX_LIMIT: i32 = 50;

#[derive(SimpleObject, Clone)]
pub struct LogEntry {
    pub message: String,
    pub timestamp: DateTime,
    pub priority: Option<i32>,
    pub systemd_unit: Option<String>,
    pub systemd_slice: Option<String>,
    pub cursor: String,
}

impl From<system::LogEntry> for LogEntry {
    fn from(e: system::LogEntry) -> Self {
        let at = jiff::Timestamp::from_microsecond(e.realtime_us).unwrap_or_default();
        Self {
            message: e.message,
            timestamp: DateTime::utc(at),
            priority: e.priority,
            systemd_unit: e.unit,
            systemd_slice: e.slice,
            cursor: e.cursor,
        }
    }
}

#[derive(SimpleObject)]
pub struct LogsPageMeta {
    pub up_cursor: Option<String>,
    pub down_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct PaginatedEntries {
    /// The cursors of the page's first and last entries.
    pub page_meta: LogsPageMeta,
    /// The page's entries, oldest first.
    pub entries: Vec<LogEntry>,
}

pub struct Logs;

#[Object]
impl Logs {
    #[allow(clippy::too_many_arguments)]
    async fn paginated(
        &self,
        #[graphql(default = 20)] limit: i32,
        #[graphql(default)] up_cursor: Option<String>,
        #[graphql(default)] down_cursor: Option<String>,
        #[graphql(default)] filter_by_slice: Option<String>,
        #[graphql(default)] filter_by_unit: Option<String>,
    ) -> Result<PaginatedEntries> {
        if limit > MAX_LIMIT {
            return Err("You can't fetch more than 50 entries via single request.".into());
        }
        if up_cursor.is_some() && down_cursor.is_some() {
            return Err("Give upCursor or downCursor, not both.".into());
        }
        let limit = limit.max(0) as usize;
        let entries = blocking(move || {
            let page = match (&up_cursor, &down_cursor) {
                (Some(c), _) => Page::After(c),
                (_, Some(c)) => Page::Before(c),
                _ => Page::Newest,
            };
            system::journal(
                limit,
                page,
                filter_by_unit.as_deref(),
                filter_by_slice.as_deref(),
            )
        })
        .await?;
        let entries: Vec<LogEntry> = entries.into_iter().map(LogEntry::from).collect();
        Ok(PaginatedEntries {
            page_meta: LogsPageMeta {
                up_cursor: entries.first().map(|e| e.cursor.clone()),
                down_cursor: entries.last().map(|e| e.cursor.clone()),
            },
            entries,
        })
    }
}

/// New entries of the whole journal from now on, read every second after the
/// newest one seen.
pub async fn follow() -> Result<impl Stream<Item = LogEntry>> {
    let newest = blocking(|| system::journal(1, Page::Newest, None, None)).await?;
    let start = newest.last().map(|e| e.cursor.clone());
    let stream = futures_util::stream::unfold(
        (start, Vec::<LogEntry>::new()),
        |(mut cursor, mut pending)| async move {
            loop {
                if !pending.is_empty() {
                    let next = pending.remove(0);
                    return Some((next, (cursor, pending)));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let after = cursor.clone();
                let read = blocking(move || match &after {
                    Some(c) => system::journal(500, Page::After(c), None, None),
                    None => system::journal(500, Page::Newest, None, None),
                })
                .await
                .ok()?;
                if let Some(last) = read.last() {
                    cursor = Some(last.cursor.clone());
                }
                pending = read.into_iter().map(LogEntry::from).collect();
            }
        },
    );
    Ok(stream)
}
