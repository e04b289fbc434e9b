//! pgward-sandbox
