//! The frontend, bundled by build.rs and embedded here.

pub const INDEX_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/ui/index.html"));
pub const APP_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/ui/app.js"));
pub const APP_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/ui/app.css"));
