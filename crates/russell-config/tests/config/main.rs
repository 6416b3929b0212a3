//! russell-config from outside, one test binary with a module per area: the bad files of
//! `tests/bad/` and their messages (`bad_configs`), garbage input (`garbage`), validation
//! (`validation`, `lifecycle`, `variables`), mDW's file shape (`mdw_shape`), the start plan
//! (`plan`) and what a reload changes (`diff`).

#![allow(clippy::unwrap_used)]

mod bad_configs;
mod diff;
mod garbage;
mod lifecycle;
mod mdw_shape;
mod plan;
mod validation;
mod variables;
