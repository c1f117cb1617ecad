pub mod create;
pub mod delete;
pub mod generations;
pub mod list;
pub mod rollback;
pub mod update;
