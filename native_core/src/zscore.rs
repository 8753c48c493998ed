//! Placeholder replaced by the real implementation in this same session.
