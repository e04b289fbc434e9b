//! pgward-policy
