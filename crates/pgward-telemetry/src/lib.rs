//! pgward-telemetry
