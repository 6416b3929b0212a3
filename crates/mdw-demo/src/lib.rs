//! mdw-demo
