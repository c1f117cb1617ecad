//! clan-vars: values generated (or prompted) once and kept in the clan repository.
//! Public values are plain files; secrets are encrypted with age to the clan's
//! admins and to the machine that needs them. Nothing here prints.

pub mod error;
pub mod generate;
pub mod keys;
pub mod recipients;
pub mod store;
pub mod upload;

pub use error::{Result, VarsError};
