//! `monitoring`: the machine has no metrics source the agent could read (SelfPrivacy
//! reads Prometheus), so every query answers with the schema's own error form.

use async_graphql::{Object, SimpleObject, Union};

use super::DateTime;

const NO_SOURCE: &str = "No metrics source: this machine runs no Prometheus for the agent to read.";

#[derive(SimpleObject)]
pub struct MonitoringValue {
    pub timestamp: DateTime,
    pub value: String,
}

#[derive(SimpleObject)]
pub struct MonitoringValues {
    pub values: Vec<MonitoringValue>,
}

#[derive(SimpleObject)]
pub struct MonitoringMetric {
    pub metric_id: String,
    pub values: Vec<MonitoringValue>,
}

#[derive(SimpleObject)]
pub struct MonitoringMetrics {
    pub metrics: Vec<MonitoringMetric>,
}

#[derive(SimpleObject, Clone)]
pub struct MonitoringQueryError {
    pub error: String,
}

#[derive(Union)]
pub enum MonitoringValuesResult {
    MonitoringValues(MonitoringValues),
    MonitoringQueryError(MonitoringQueryError),
}

#[derive(Union)]
pub enum MonitoringMetricsResult {
    MonitoringMetrics(MonitoringMetrics),
    MonitoringQueryError(MonitoringQueryError),
}

fn values() -> MonitoringValuesResult {
    MonitoringValuesResult::MonitoringQueryError(MonitoringQueryError {
        error: NO_SOURCE.into(),
    })
}

fn metrics() -> MonitoringMetricsResult {
    MonitoringMetricsResult::MonitoringQueryError(MonitoringQueryError {
        error: NO_SOURCE.into(),
    })
}

#[derive(SimpleObject)]
pub struct CpuMonitoring {
    pub start: Option<DateTime>,
    pub end: Option<DateTime>,
    pub step: i32,
    pub overall_usage: MonitoringValuesResult,
}

#[derive(SimpleObject)]
pub struct MemoryMonitoring {
    pub start: Option<DateTime>,
    pub end: Option<DateTime>,
    pub step: i32,
    pub overall_usage: MonitoringValuesResult,
    pub swap_usage_overall: MonitoringValuesResult,
    pub average_usage_by_service: MonitoringMetricsResult,
    pub max_usage_by_service: MonitoringMetricsResult,
}

#[derive(SimpleObject)]
pub struct DiskMonitoring {
    pub start: Option<DateTime>,
    pub end: Option<DateTime>,
    pub step: i32,
    pub overall_usage: MonitoringMetricsResult,
}

#[derive(SimpleObject)]
pub struct NetworkMonitoring {
    pub start: Option<DateTime>,
    pub end: Option<DateTime>,
    pub step: i32,
    pub overall_usage: MonitoringMetricsResult,
}

pub struct Monitoring;

#[Object]
impl Monitoring {
    async fn cpu_usage(
        &self,
        #[graphql(default)] start: Option<DateTime>,
        #[graphql(default)] end: Option<DateTime>,
        #[graphql(default = 60)] step: i32,
    ) -> CpuMonitoring {
        CpuMonitoring {
            start,
            end,
            step,
            overall_usage: values(),
        }
    }

    async fn memory_usage(
        &self,
        #[graphql(default)] start: Option<DateTime>,
        #[graphql(default)] end: Option<DateTime>,
        #[graphql(default = 60)] step: i32,
    ) -> MemoryMonitoring {
        MemoryMonitoring {
            start,
            end,
            step,
            overall_usage: values(),
            swap_usage_overall: values(),
            average_usage_by_service: metrics(),
            max_usage_by_service: metrics(),
        }
    }

    async fn disk_usage(
        &self,
        #[graphql(default)] start: Option<DateTime>,
        #[graphql(default)] end: Option<DateTime>,
        #[graphql(default = 60)] step: i32,
    ) -> DiskMonitoring {
        DiskMonitoring {
            start,
            end,
            step,
            overall_usage: metrics(),
        }
    }

    async fn network_usage(
        &self,
        #[graphql(default)] start: Option<DateTime>,
        #[graphql(default)] end: Option<DateTime>,
        #[graphql(default = 60)] step: i32,
    ) -> NetworkMonitoring {
        NetworkMonitoring {
            start,
            end,
            step,
            overall_usage: metrics(),
        }
    }
}
