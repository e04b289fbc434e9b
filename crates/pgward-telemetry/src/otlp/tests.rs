#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use prost::Message;

use super::Encoder;
use crate::query::{QueryRecord, SpanAttributes};
use crate::spans::QueryFields;
use crate::Decision;

fn cx(trace: u128, span: u64, remote: bool, state: TraceState) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::SAMPLED,
        remote,
        state,
    )
}

fn scope(name: &'static str) -> InstrumentationScope {
    InstrumentationScope::builder(name).build()
}

fn span(n: u64, scope: InstrumentationScope) -> SpanData {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + n);
    SpanData {
        span_context: cx(
            0x0af7651916cd43dd8448eb211c80319c + u128::from(n),
            1000 + n,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::from(77),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed("pgward.query"),
        start_time: start,
        end_time: start + Duration::from_micros(250),
        attributes: vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.namespace", StringValue::from(Arc::<str>::from("demo"))),
            KeyValue::new(
                "db.query.text",
                format!("SELECT abalance FROM pgbench_accounts WHERE aid = ? /*{n}*/"),
            ),
            KeyValue::new("db.response.returned_rows", n as i64),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope,
    }
}

/// Every field and value kind the encoder writes, in unusual values.
fn odd_spans() -> Vec<SpanData> {
    let mut root = span(1, scope("pgward"));
    root.parent_span_id = SpanId::INVALID;
    root.span_kind = SpanKind::Server;
    root.status = Status::Ok;

    let mut remote = span(2, scope("pgward"));
    remote.parent_span_is_remote = true;
    remote.span_context = cx(
        u128::MAX,
        u64::MAX,
        true,
        TraceState::from_key_value([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")])
            .unwrap(),
    );
    remote.span_kind = SpanKind::Client;
    remote.status = Status::error("42501");
    remote.dropped_attributes_count = 3;
    remote.attributes = vec![
        KeyValue::new("", ""),
        KeyValue::new("empty", ""),
        KeyValue::new("t", true),
        KeyValue::new("f", false),
        KeyValue::new("zero", 0i64),
        KeyValue::new("neg", -1i64),
        KeyValue::new("min", i64::MIN),
        KeyValue::new("pi", std::f64::consts::PI),
        KeyValue::new("nzero", -0.0f64),
        KeyValue::new("unicode", "é ü 漢字 \u{0}"),
        KeyValue::new("long", "x".repeat(300)),
        KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("ints", Value::Array(Array::I64(vec![0, -5, i64::MAX]))),
        KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, 1.5]))),
        KeyValue::new(
            "strings",
            Value::Array(Array::String(vec![
                "".into(),
                "a".into(),
                "b".repeat(200).into(),
            ])),
        ),
        KeyValue::new("no_ints", Value::Array(Array::I64(vec![]))),
    ];
    remote.events.events = vec![
        Event::new(
            "warn",
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
            vec![KeyValue::new("k", 1i64)],
            2,
        ),
        Event::new("", SystemTime::UNIX_EPOCH, vec![], 0),
    ];
    remote.events.dropped_count = 4;
    remote.links.links = vec![
        Link::new(
            cx(9, 10, false, TraceState::NONE),
            vec![KeyValue::new("a", "b")],
            1,
        ),
        Link::new(cx(11, 12, true, TraceState::NONE), vec![], 0),
    ];
    remote.links.dropped_count = 5;

    let mut before_epoch = span(3, scope("other"));
    before_epoch.start_time = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
    before_epoch.span_kind = SpanKind::Producer;
    before_epoch.name = Cow::Owned(String::new());

    let versioned = InstrumentationScope::builder("pgward")
        .with_version("1.2.3")
        .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
        .with_attributes([KeyValue::new("scope.attr", 7i64)])
        .build();
    let mut consumer = span(4, versioned);
    consumer.span_kind = SpanKind::Consumer;

    vec![
        root,
        remote,
        before_epoch,
        span(5, scope("pgward")),
        consumer,
        span(6, scope("other")),
    ]
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("pgward-test")
        .with_attribute(KeyValue::new("service.version", "0.1.0"))
        .with_attribute(KeyValue::new("host.cores", 2i64))
        .with_schema_url([], "https://opentelemetry.io/schemas/1.30.0")
        .build()
}

/// Our bytes, decoded by opentelemetry-proto, against opentelemetry-proto's own
/// conversion of the same spans.
fn assert_same_as_opentelemetry_proto(spans: Vec<SpanData>, resource: &Resource) {
    let mut encoder = Encoder::default();
    encoder.set_resource(resource);
    let mut bytes = Vec::new();
    encoder.encode_request(&spans, &mut bytes);
    let ours = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decodes");
    let theirs = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(resource),
        ),
    };
    assert_eq!(ours, theirs);
    // And byte for byte what prost makes of it: same fields, same order, no padding.
    assert_eq!(bytes, theirs.encode_to_vec());
}

#[test]
fn encodes_what_opentelemetry_proto_builds() {
    assert_same_as_opentelemetry_proto(odd_spans(), &resource());
}

#[test]
fn a_typical_batch_of_statement_spans() {
    let spans: Vec<SpanData> = (0..500).map(|n| span(n, scope("pgward"))).collect();
    assert_same_as_opentelemetry_proto(spans, &resource());
}

#[test]
fn an_empty_batch_and_an_empty_resource() {
    assert_same_as_opentelemetry_proto(Vec::new(), &Resource::builder_empty().build());
    assert_same_as_opentelemetry_proto(odd_spans(), &Resource::builder_empty().build());
}

#[test]
fn the_encoder_is_reusable() {
    let mut encoder = Encoder::default();
    encoder.set_resource(&resource());
    let mut first = Vec::new();
    encoder.encode_request(&odd_spans(), &mut first);
    let mut second = Vec::new();
    encoder.encode_request(&[span(9, scope("x"))], &mut second);
    encoder.encode_request(&odd_spans(), &mut second);
    assert_eq!(first, second);
}

#[test]
fn varints_match_prost() {
    let mut values = vec![
        0,
        1,
        127,
        128,
        255,
        16_383,
        16_384,
        u64::from(u32::MAX),
        u64::MAX,
    ];
    values.extend((0..64).map(|bit| 1u64 << bit));
    values.extend((1..64).map(|bit| (1u64 << bit) - 1));
    for v in values {
        let mut ours = Vec::new();
        super::encode_varint(v, &mut ours);
        let mut theirs = Vec::new();
        prost::encoding::encode_varint(v, &mut theirs);
        assert_eq!(ours, theirs, "{v}");
        assert_eq!(super::encoded_len_varint(v), theirs.len(), "{v}");
    }
}

/// The attributes of a typical statement span.
fn fields() -> QueryFields<'static> {
    QueryFields {
        database: "bench",
        operation: "SELECT",
        text: Some("SELECT abalance FROM pgbench_accounts WHERE aid = $1"),
        collection: Some("public.pgbench_accounts".into()),
        decision: Decision::Allow,
        reason: None,
    }
}

fn record(n: u64, f: &QueryFields<'_>) -> QueryRecord {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + n);
    QueryRecord {
        name: crate::spans::QUERY_SPAN,
        context: cx(
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            500 + n,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::from(42),
        parent_is_remote: false,
        start,
        end: start + Duration::from_micros(180),
        link: None,
        attributes: SpanAttributes::new(f),
        returned_rows: Some(1),
        sqlstate: None,
    }
}

/// The same span as the SDK would hand it over, for opentelemetry-proto's conversion.
fn as_span_data(r: &QueryRecord, f: &QueryFields<'_>) -> SpanData {
    let mut attributes: Vec<KeyValue> = super::query_attributes(f)
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| KeyValue::new(k, v.to_owned())))
        .collect();
    if let Some(rows) = r.returned_rows {
        attributes.push(KeyValue::new("db.response.returned_rows", rows));
    }
    if let Some(code) = &r.sqlstate {
        attributes.push(KeyValue::new("db.response.status_code", code.clone()));
    }
    let mut links = SpanLinks::default();
    links.links.extend(r.link.clone().map(Link::with_context));
    SpanData {
        span_context: r.context.clone(),
        parent_span_id: r.parent_span_id,
        parent_span_is_remote: r.parent_is_remote,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(r.name),
        start_time: r.start,
        end_time: r.end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links,
        status: match &r.sqlstate {
            Some(code) => Status::error(format!("SQLSTATE {code}")),
            None => Status::Unset,
        },
        instrumentation_scope: InstrumentationScope::builder(super::QUERY_SCOPE).build(),
    }
}

#[test]
fn statement_spans_encode_as_the_sdk_spans_would() {
    let typical = fields();
    let denied_fields = QueryFields {
        decision: Decision::Deny,
        reason: Some("role \"analyst\" may not select column customers.email"),
        collection: None,
        ..fields()
    };
    let mut denied = record(2, &denied_fields);
    denied.returned_rows = None;
    denied.sqlstate = Some("42501".into());
    let remote_fields = QueryFields {
        text: None,
        ..fields()
    };
    let mut remote = record(3, &remote_fields);
    remote.parent_is_remote = true;
    remote.context = cx(
        7,
        8,
        false,
        TraceState::from_key_value([("congo", "t61rcWkgMzE")]).unwrap(),
    );
    remote.returned_rows = Some(-3);
    let mut linked = record(4, &typical);
    linked.link = Some(cx(0xabc, 0xdef, false, TraceState::NONE));
    let huge_text = "x".repeat(70_000);
    let huge_fields = QueryFields {
        text: Some(&huge_text),
        ..fields()
    };
    let mut huge = record(5, &huge_fields);
    huge.returned_rows = Some(i64::MAX);
    let mut parse = record(6, &typical);
    parse.name = crate::spans::PARSE_SPAN;
    parse.returned_rows = None;
    let cases = [
        (record(1, &typical), &typical),
        (denied, &denied_fields),
        (remote, &remote_fields),
        (linked, &typical),
        (huge, &huge_fields),
        (parse, &typical),
    ];
    let records: Vec<QueryRecord> = cases.iter().map(|(r, _)| r.clone()).collect();

    let resource = resource();
    let mut encoder = Encoder::default();
    encoder.set_resource(&resource);
    let mut ours = Vec::new();
    encoder.encode_queries(&records, &mut ours);
    let spans: Vec<SpanData> = cases.iter().map(|(r, f)| as_span_data(r, f)).collect();
    let mut theirs = Vec::new();
    encoder.encode_request(&spans, &mut theirs);
    assert_eq!(ours, theirs);
    let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).unwrap();
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(&resource),
        ),
    };
    assert_eq!(decoded, expected);
    encoder.encode_queries(&[], &mut ours);
    assert!(ExportTraceServiceRequest::decode(ours.as_slice()).is_ok());
}
