//! controlcenter
