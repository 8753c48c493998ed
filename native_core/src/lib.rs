//! Exact rolling z-score. Pure Rust; the Python binding lives in `python.rs` behind the `python` feature.
pub mod zscore;

#[cfg(feature = "python")]
mod python;
