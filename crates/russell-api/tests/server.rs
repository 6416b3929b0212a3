//! In-process daemon tests (feature `server`).
