//! OTLP/protobuf encoding of a batch of finished spans, straight from the SDK's
//! `SpanData` into the bytes of an `ExportTraceServiceRequest`.
//!
//! Why not opentelemetry-otlp's exporter: measured under callgrind it spends ~28k
//! instructions per span (a clone of the batch for retries, a conversion into owned proto
//! structs — a `String` per attribute key and value, a `Vec` per id —, prost's encoding
//! that measures every nested message once per level, then dropping it all), which alone
//! is most of a statement's cost in the relay. This writes each field once, with prost's
//! own wire primitives and the field numbers of opentelemetry-proto's generated types; the
//! tests check that opentelemetry-proto decodes the result into exactly what its own
//! conversion of the same spans builds.
//!
//! Must never panic on any span: values of kinds a newer API adds are skipped.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

use crate::query::QueryRecord;
use crate::spans::{fields, QueryFields};

/// Protobuf wire types.
#[derive(Clone, Copy)]
#[repr(u32)]
enum WireType {
    Varint = 0,
    SixtyFourBit = 1,
    LengthDelimited = 2,
    ThirtyTwoBit = 5,
}

/// A field key. Written byte by byte into the `Vec` (prost's `BufMut`-generic version
/// measured ~26 instructions per call, several times per attribute).
#[inline]
fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

#[inline]
fn encode_varint(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn encoded_len_varint(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// `SpanFlags`: the context's is-remote property is known / is true.
const FLAG_HAS_IS_REMOTE: u32 = 256;
const FLAG_IS_REMOTE: u32 = 512;

/// The encoded resource and reusable buffers; one per exporter.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// The `Resource` message body, encoded once.
    resource: Vec<u8>,
    resource_schema_url: String,
    /// Per span of the batch: the index of its scope in `scopes` order, and its length.
    scope_of: Vec<usize>,
    span_len: Vec<usize>,
}

/// One instrumentation scope of a batch: its encoded `InstrumentationScope` and the
/// length of its `ScopeSpans` body.
struct ScopeGroup<'a> {
    scope: &'a InstrumentationScope,
    encoded: Vec<u8>,
    body_len: usize,
}

impl Encoder {
    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        self.resource.clear();
        for (key, value) in resource.iter() {
            put_key_value(&mut self.resource, 1, key.as_str(), value);
        }
        self.resource_schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }

    /// Writes `ExportTraceServiceRequest { resource_spans: [one ResourceSpans] }` for
    /// `spans` into `out` (cleared first): the spans grouped by instrumentation scope in
    /// the order each scope first appears, as opentelemetry-proto groups them.
    ///
    /// Two passes: every length first, then every byte straight into `out` (a message's
    /// length precedes it, and copying each span up through three levels of nesting cost
    /// more than measuring it).
    pub(crate) fn encode_request(&mut self, spans: &[SpanData], out: &mut Vec<u8>) {
        out.clear();
        self.scope_of.clear();
        self.span_len.clear();
        let mut groups: Vec<ScopeGroup<'_>> = Vec::new();
        for span in spans {
            let scope = &span.instrumentation_scope;
            // Spans of one scope come in runs: check the last one seen first.
            let last = self.scope_of.last().copied();
            let index = match last.filter(|&i| groups[i].scope == scope) {
                Some(i) => i,
                None => match groups.iter().position(|g| g.scope == scope) {
                    Some(i) => i,
                    None => {
                        let mut encoded = Vec::new();
                        put_scope(&mut encoded, scope);
                        let schema = scope.schema_url().unwrap_or_default();
                        groups.push(ScopeGroup {
                            scope,
                            body_len: field_len(encoded.len()) + string_len(schema),
                            encoded,
                        });
                        groups.len() - 1
                    }
                },
            };
            let len = span_len(span);
            groups[index].body_len += field_len(len);
            self.scope_of.push(index);
            self.span_len.push(len);
        }
        let rs_len = field_len(self.resource.len())
            + groups.iter().map(|g| field_len(g.body_len)).sum::<usize>()
            + string_len(&self.resource_schema_url);
        out.reserve(field_len(rs_len));
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(rs_len as u64, out);
        put_message(out, 1, &self.resource);
        for (index, group) in groups.iter().enumerate() {
            encode_key(2, WireType::LengthDelimited, out);
            encode_varint(group.body_len as u64, out);
            put_message(out, 1, &group.encoded);
            let members = spans.iter().zip(&self.scope_of).zip(&self.span_len);
            for ((span, _), &len) in members.filter(|((_, &i), _)| i == index) {
                encode_key(2, WireType::LengthDelimited, out);
                encode_varint(len as u64, out);
                let before = out.len();
                put_span(out, span);
                debug_assert_eq!(out.len() - before, len, "span length");
            }
            put_string(out, 3, group.scope.schema_url().unwrap_or_default());
        }
        put_string(out, 3, &self.resource_schema_url);
    }
}

impl Encoder {
    /// Like [`Encoder::encode_request`], for statement spans: one scope, `pgward`, the
    /// instrumentation scope of the SDK tracer the session spans come from.
    pub(crate) fn encode_queries(&mut self, records: &[QueryRecord], out: &mut Vec<u8>) {
        out.clear();
        self.span_len.clear();
        let mut scope = Vec::new();
        put_string(&mut scope, 1, QUERY_SCOPE);
        let mut scope_len = field_len(scope.len());
        for record in records {
            let len = query_len(record);
            scope_len += field_len(len);
            self.span_len.push(len);
        }
        let rs_len = field_len(self.resource.len())
            + field_len(scope_len)
            + string_len(&self.resource_schema_url);
        out.reserve(field_len(rs_len));
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(rs_len as u64, out);
        put_message(out, 1, &self.resource);
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(scope_len as u64, out);
        put_message(out, 1, &scope);
        for (record, &len) in records.iter().zip(&self.span_len) {
            encode_key(2, WireType::LengthDelimited, out);
            encode_varint(len as u64, out);
            let before = out.len();
            put_query(out, record);
            debug_assert_eq!(out.len() - before, len, "query span length");
        }
        put_string(out, 3, &self.resource_schema_url);
    }
}

/// The instrumentation scope of statement spans (the name of the SDK tracer).
pub(crate) const QUERY_SCOPE: &str = "pgward";
const SQLSTATE_PREFIX: &str = "SQLSTATE ";

/// The attributes of a statement span, in the order they are written.
pub(crate) fn query_attributes<'a>(f: &'a QueryFields<'a>) -> [(&'static str, Option<&'a str>); 7] {
    [
        (fields::DB_SYSTEM_NAME, Some("postgresql")),
        (fields::DB_NAMESPACE, Some(f.database)),
        (fields::DB_OPERATION_NAME, Some(f.operation)),
        (fields::DB_COLLECTION_NAME, f.collection.as_deref()),
        (fields::DB_QUERY_TEXT, f.text),
        (fields::DECISION, Some(f.decision.as_str())),
        (fields::DENY_REASON, f.reason),
    ]
}

/// The attributes of `f` as the `attributes` fields (9) of a `Span` message, to be
/// copied into every span that shares them.
pub(crate) fn encode_attributes(f: &QueryFields<'_>) -> Vec<u8> {
    let attributes = query_attributes(f);
    let len = attributes
        .iter()
        .filter_map(|(key, value)| value.map(|v| field_len(str_kv_len(key, v))))
        .sum();
    let mut buf = Vec::with_capacity(len);
    for (key, value) in attributes {
        if let Some(value) = value {
            put_str_kv(&mut buf, 9, key, value);
        }
    }
    buf
}

#[inline]
fn str_kv_len(key: &str, value: &str) -> usize {
    string_len(key) + field_len(1 + encoded_len_varint(value.len() as u64) + value.len())
}

#[inline]
fn put_str_kv(buf: &mut Vec<u8>, tag: u32, key: &str, value: &str) {
    let value_len = 1 + encoded_len_varint(value.len() as u64) + value.len();
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint((string_len(key) + field_len(value_len)) as u64, buf);
    put_string(buf, 1, key);
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint(value_len as u64, buf);
    put_string_value(buf, value);
}

fn query_status_len(r: &QueryRecord) -> usize {
    match &r.sqlstate {
        None => 0,
        Some(code) => field_len(SQLSTATE_PREFIX.len() + code.len()) + 2,
    }
}

fn query_len(r: &QueryRecord) -> usize {
    let mut len = ids_len(&r.context, r.parent_span_id);
    len += string_len(r.name)
        + 2 // kind: internal
        + fixed64_len(nanos(r.start))
        + fixed64_len(nanos(r.end));
    len += r.attributes.bytes().len();
    if let Some(rows) = r.returned_rows {
        len += field_len(
            string_len(fields::DB_RESPONSE_RETURNED_ROWS)
                + field_len(1 + encoded_len_varint(rows as u64)),
        );
    }
    if let Some(code) = &r.sqlstate {
        len += field_len(str_kv_len(fields::DB_RESPONSE_STATUS_CODE, code));
    }
    if let Some(link) = &r.link {
        len += field_len(field_len(16) + field_len(8) + trace_state_len(link) + 5);
    }
    len + field_len(query_status_len(r)) + 6
}

fn put_query(buf: &mut Vec<u8>, r: &QueryRecord) {
    let cx = &r.context;
    put_ids(buf, cx, r.parent_span_id);
    put_string(buf, 5, r.name);
    put_uint(buf, 6, span_kind(&SpanKind::Internal));
    put_fixed64(buf, 7, nanos(r.start));
    put_fixed64(buf, 8, nanos(r.end));
    buf.extend_from_slice(r.attributes.bytes());
    if let Some(rows) = r.returned_rows {
        let key = fields::DB_RESPONSE_RETURNED_ROWS;
        let value_len = 1 + encoded_len_varint(rows as u64);
        encode_key(9, WireType::LengthDelimited, buf);
        encode_varint((string_len(key) + field_len(value_len)) as u64, buf);
        put_string(buf, 1, key);
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(value_len as u64, buf);
        put_int_value(buf, rows);
    }
    if let Some(code) = &r.sqlstate {
        put_str_kv(buf, 9, fields::DB_RESPONSE_STATUS_CODE, code);
    }
    if let Some(link) = &r.link {
        encode_key(13, WireType::LengthDelimited, buf);
        encode_varint(
            (field_len(16) + field_len(8) + trace_state_len(link) + 5) as u64,
            buf,
        );
        put_bytes(buf, 1, &link.trace_id().to_bytes());
        put_bytes(buf, 2, &link.span_id().to_bytes());
        put_trace_state(buf, 3, link);
        put_fixed32(buf, 6, flags(link.is_remote(), link));
    }
    encode_key(15, WireType::LengthDelimited, buf);
    encode_varint(query_status_len(r) as u64, buf);
    if let Some(code) = &r.sqlstate {
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint((SQLSTATE_PREFIX.len() + code.len()) as u64, buf);
        buf.extend_from_slice(SQLSTATE_PREFIX.as_bytes());
        buf.extend_from_slice(code.as_bytes());
        put_uint(buf, 3, 2);
    }
    put_fixed32(buf, 16, flags(r.parent_is_remote, cx));
}

fn put_scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_string(buf, 1, scope.name());
    put_string(buf, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        put_key_value(buf, 3, kv.key.as_str(), &kv.value);
    }
}

/// The body length `put_span` writes, field for field.
fn span_len(span: &SpanData) -> usize {
    let mut len = ids_len(&span.span_context, span.parent_span_id);
    len += string_len(&span.name)
        + uint_len(span_kind(&span.span_kind))
        + fixed64_len(nanos(span.start_time))
        + fixed64_len(nanos(span.end_time))
        + attributes_len(&span.attributes)
        + uint_len(u64::from(span.dropped_attributes_count));
    len += span
        .events
        .iter()
        .map(|e| field_len(event_len(e)))
        .sum::<usize>()
        + uint_len(u64::from(span.events.dropped_count));
    len += span
        .links
        .iter()
        .map(|l| field_len(link_len(l)))
        .sum::<usize>()
        + uint_len(u64::from(span.links.dropped_count));
    // The flags (tag 16: a two-byte key) are never zero (see `put_span`).
    len + field_len(status_len(&span.status)) + 6
}

fn put_span(buf: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    put_ids(buf, cx, span.parent_span_id);
    put_string(buf, 5, &span.name);
    put_uint(buf, 6, span_kind(&span.span_kind));
    put_fixed64(buf, 7, nanos(span.start_time));
    put_fixed64(buf, 8, nanos(span.end_time));
    put_attributes(buf, 9, &span.attributes);
    put_uint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        encode_key(11, WireType::LengthDelimited, buf);
        encode_varint(event_len(event) as u64, buf);
        put_fixed64(buf, 1, nanos(event.timestamp));
        put_string(buf, 2, &event.name);
        put_attributes(buf, 3, &event.attributes);
        put_uint(buf, 4, u64::from(event.dropped_attributes_count));
    }
    put_uint(buf, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        let lcx = &link.span_context;
        encode_key(13, WireType::LengthDelimited, buf);
        encode_varint(link_len(link) as u64, buf);
        put_bytes(buf, 1, &lcx.trace_id().to_bytes());
        put_bytes(buf, 2, &lcx.span_id().to_bytes());
        put_trace_state(buf, 3, lcx);
        put_attributes(buf, 4, &link.attributes);
        put_uint(buf, 5, u64::from(link.dropped_attributes_count));
        put_fixed32(buf, 6, flags(lcx.is_remote(), lcx));
    }
    put_uint(buf, 14, u64::from(span.links.dropped_count));
    // The status is always present in opentelemetry-proto's conversion, even when unset.
    let (code, message) = status_parts(&span.status);
    encode_key(15, WireType::LengthDelimited, buf);
    encode_varint(status_len(&span.status) as u64, buf);
    put_string(buf, 2, message);
    put_uint(buf, 3, code);
    // Fields in tag order, as prost writes them, so the bytes are the same too. The
    // flags always hold the has-is-remote bit, so they are never left out.
    put_fixed32(buf, 16, flags(span.parent_span_is_remote, cx));
}

/// A span's fields 1–4: trace id, span id, trace state, parent span id (if any).
fn put_ids(buf: &mut Vec<u8>, cx: &SpanContext, parent: SpanId) {
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    put_trace_state(buf, 3, cx);
    if parent != SpanId::INVALID {
        put_bytes(buf, 4, &parent.to_bytes());
    }
}

fn ids_len(cx: &SpanContext, parent: SpanId) -> usize {
    let parent_len = if parent == SpanId::INVALID {
        0
    } else {
        field_len(8)
    };
    field_len(16) + field_len(8) + trace_state_len(cx) + parent_len
}

fn status_parts(status: &Status) -> (u64, &str) {
    match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description.as_ref()),
    }
}

fn status_len(status: &Status) -> usize {
    let (code, message) = status_parts(status);
    string_len(message) + uint_len(code)
}

fn event_len(event: &opentelemetry::trace::Event) -> usize {
    fixed64_len(nanos(event.timestamp))
        + string_len(&event.name)
        + attributes_len(&event.attributes)
        + uint_len(u64::from(event.dropped_attributes_count))
}

fn link_len(link: &opentelemetry::trace::Link) -> usize {
    let lcx = &link.span_context;
    field_len(16)
        + field_len(8)
        + trace_state_len(lcx)
        + attributes_len(&link.attributes)
        + uint_len(u64::from(link.dropped_attributes_count))
        // The flags, never zero.
        + 5
}

fn trace_state_len(cx: &SpanContext) -> usize {
    string_len(&cx.trace_state().header())
}

fn attributes_len(attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .filter_map(|kv| key_value_len(kv.key.as_str(), &kv.value))
        .map(field_len)
        .sum()
}

/// A length-delimited field of `len` body bytes (such tags here are all below 16, so
/// their key is one byte).
#[inline]
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// A plain string/bytes field: absent when empty.
#[inline]
fn string_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        field_len(s.len())
    }
}

#[inline]
fn uint_len(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        1 + encoded_len_varint(v)
    }
}

#[inline]
fn fixed64_len(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        9
    }
}

fn flags(remote: bool, cx: &SpanContext) -> u32 {
    let mut f = u32::from(cx.trace_flags().to_u8()) | FLAG_HAS_IS_REMOTE;
    if remote {
        f |= FLAG_IS_REMOTE;
    }
    f
}

fn put_trace_state(buf: &mut Vec<u8>, tag: u32, cx: &SpanContext) {
    let header = cx.trace_state().header();
    put_string(buf, tag, &header);
}

fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn put_attributes(buf: &mut Vec<u8>, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        put_key_value(buf, tag, kv.key.as_str(), &kv.value);
    }
}

/// The body length of a `KeyValue`; `None` when the value is of a kind this encoder
/// does not know (the attribute is left out).
fn key_value_len(key: &str, value: &Value) -> Option<usize> {
    let value_len = any_value_len(value)?;
    Some(string_len(key) + field_len(value_len))
}

/// A `KeyValue` message: lengths are computed, not buffered (attributes are the bulk).
fn put_key_value(buf: &mut Vec<u8>, tag: u32, key: &str, value: &Value) {
    let Some(value_len) = any_value_len(value) else {
        return;
    };
    let body = string_len(key) + field_len(value_len);
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body as u64, buf);
    put_string(buf, 1, key);
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint(value_len as u64, buf);
    put_any_value(buf, value);
}

/// The body length of the `AnyValue` for `value`; `None` for a kind this encoder does
/// not know (the attribute is left out).
fn any_value_len(value: &Value) -> Option<usize> {
    Some(match value {
        Value::Bool(_) => 2,
        Value::I64(v) => 1 + encoded_len_varint(*v as u64),
        Value::F64(_) => 9,
        Value::String(s) => 1 + encoded_len_varint(s.as_str().len() as u64) + s.as_str().len(),
        Value::Array(array) => {
            let len = array_len(array)?;
            1 + encoded_len_varint(len as u64) + len
        }
        _ => return None,
    })
}

fn array_len(array: &Array) -> Option<usize> {
    fn elems<T>(items: &[T], len: impl Fn(&T) -> usize) -> usize {
        items
            .iter()
            .map(|v| {
                let l = len(v);
                1 + encoded_len_varint(l as u64) + l
            })
            .sum()
    }
    Some(match array {
        Array::Bool(v) => elems(v, |_| 2),
        Array::I64(v) => elems(v, |i| 1 + encoded_len_varint(*i as u64)),
        Array::F64(v) => elems(v, |_| 9),
        Array::String(v) => elems(v, |s| {
            1 + encoded_len_varint(s.as_str().len() as u64) + s.as_str().len()
        }),
        _ => return None,
    })
}

fn put_any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => put_bool_value(buf, *b),
        Value::I64(v) => put_int_value(buf, *v),
        Value::F64(v) => put_double_value(buf, *v),
        Value::String(s) => put_string_value(buf, s.as_str()),
        Value::Array(array) => {
            let Some(len) = array_len(array) else {
                return;
            };
            encode_key(5, WireType::LengthDelimited, buf);
            encode_varint(len as u64, buf);
            match array {
                Array::Bool(v) => v.iter().for_each(|b| {
                    put_element(buf, 2, |buf| put_bool_value(buf, *b));
                }),
                Array::I64(v) => v.iter().for_each(|i| {
                    let l = 1 + encoded_len_varint(*i as u64);
                    put_element(buf, l, |buf| put_int_value(buf, *i));
                }),
                Array::F64(v) => v.iter().for_each(|f| {
                    put_element(buf, 9, |buf| put_double_value(buf, *f));
                }),
                Array::String(v) => v.iter().for_each(|s| {
                    let s = s.as_str();
                    let l = 1 + encoded_len_varint(s.len() as u64) + s.len();
                    put_element(buf, l, |buf| put_string_value(buf, s));
                }),
                _ => {}
            }
        }
        _ => {}
    }
}

/// One `AnyValue` of an `ArrayValue` (field 1), `len` its body length.
fn put_element(buf: &mut Vec<u8>, len: usize, body: impl FnOnce(&mut Vec<u8>)) {
    encode_key(1, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
    body(buf);
}

// The oneof members of AnyValue are written even when they hold a default value: a oneof
// says which member is set.
#[inline]
fn put_string_value(buf: &mut Vec<u8>, s: &str) {
    encode_key(1, WireType::LengthDelimited, buf);
    encode_varint(s.len() as u64, buf);
    buf.extend_from_slice(s.as_bytes());
}

#[inline]
fn put_bool_value(buf: &mut Vec<u8>, b: bool) {
    encode_key(2, WireType::Varint, buf);
    encode_varint(u64::from(b), buf);
}

#[inline]
fn put_int_value(buf: &mut Vec<u8>, v: i64) {
    encode_key(3, WireType::Varint, buf);
    encode_varint(v as u64, buf);
}

#[inline]
fn put_double_value(buf: &mut Vec<u8>, v: f64) {
    encode_key(4, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&v.to_bits().to_le_bytes());
}

// Plain proto3 fields: a default value is not written.
#[inline]
fn put_string(buf: &mut Vec<u8>, tag: u32, s: &str) {
    put_bytes(buf, tag, s.as_bytes());
}

#[inline]
fn put_bytes(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
    if b.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(b.len() as u64, buf);
    buf.extend_from_slice(b);
}

/// A sub-message, written even when empty (a present message differs from an absent one).
#[inline]
fn put_message(buf: &mut Vec<u8>, tag: u32, body: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body.len() as u64, buf);
    buf.extend_from_slice(body);
}

#[inline]
fn put_uint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }
}

#[inline]
fn put_fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[inline]
fn put_fixed32(buf: &mut Vec<u8>, tag: u32, v: u32) {
    if v != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests;
