//! pgward-proxy
