//! The policy file as written: serde structs that mirror the YAML exactly.
//!
//! Unknown keys are errors (`deny_unknown_fields`), and every name is folded while it is
//! read, inside a serde visitor, so a bad key or a duplicate is reported at its own line
//! and column. Nothing here decides anything; `compile.rs` turns these into a `Policy`.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use pgward_sql::access::{FuncName, RelName};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::catalog::is_system_column;
use crate::ident::{parse_qualified, parse_single};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub roles: UniqueMap<RoleName, RawRole>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    pub description: Option<String>,
    #[serde(default)]
    pub inherit: Vec<String>,
    pub mode: Option<RawMode>,
    pub search_path: Option<Vec<SchemaName>>,
    pub catalog: Option<bool>,
    pub ddl: Option<bool>,
    #[serde(default)]
    pub tables: UniqueMap<TableName, RawTable>,
    #[serde(default)]
    pub functions: Vec<FunctionName>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawMode {
    Enforce,
    Audit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    pub select: Option<RawColumns>,
    pub insert: Option<RawColumns>,
    pub update: Option<RawColumns>,
    pub delete: Option<bool>,
    pub truncate: Option<bool>,
}

/// `"*"` or a list of column names.
#[derive(Debug)]
pub(crate) enum RawColumns {
    All,
    List(BTreeSet<String>),
}

/// A policy role name, exact (role names are pgward names, not folded SQL identifiers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RoleName(pub String);

/// A table key: `"*"` or a relation (`table` = `public.table`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TableName {
    All,
    Relation(RelName),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SchemaName(pub String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FunctionName(pub FuncName);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ColumnName(pub String);

/// Names PostgreSQL reserves for roles: `GRANT ... TO public` grants to everybody, even
/// quoted, so a policy role may never be called that.
const RESERVED_ROLE_NAMES: &[&str] = &[
    "public",
    "none",
    "current_user",
    "session_user",
    "current_role",
];

/// Each name type parses itself from a YAML string.
pub(crate) trait ParseName: Sized {
    const EXPECTING: &'static str;
    fn parse(text: &str) -> Result<Self, String>;
}

impl ParseName for RoleName {
    const EXPECTING: &'static str = "a role name";
    fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        if text.is_empty() {
            Err("empty role name".into())
        } else if RESERVED_ROLE_NAMES.contains(&lower.as_str()) || lower.starts_with("pg_") {
            Err(format!("role name {text:?} is reserved in PostgreSQL"))
        } else {
            Ok(RoleName(text.to_string()))
        }
    }
}

impl ParseName for TableName {
    const EXPECTING: &'static str = "a table key (table, schema.table or \"*\")";
    fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(TableName::All);
        }
        let mut parts = parse_qualified(text)?;
        match (parts.len(), parts.pop(), parts.pop()) {
            (1, Some(name), None) => Ok(TableName::Relation(RelName::new("public", name))),
            (2, Some(name), Some(schema)) => Ok(TableName::Relation(RelName::new(schema, name))),
            _ => Err(format!(
                "table key {text:?} must be table, schema.table or \"*\""
            )),
        }
    }
}

impl ParseName for SchemaName {
    const EXPECTING: &'static str = "a schema name";
    fn parse(text: &str) -> Result<Self, String> {
        parse_single(text).map(SchemaName)
    }
}

impl ParseName for ColumnName {
    const EXPECTING: &'static str = "a column name";
    fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Err("write select: \"*\" (not a list containing \"*\") for all columns".into());
        }
        let column = parse_single(text)?;
        if is_system_column(&column) {
            return Err(format!(
                "system column {column} can only be granted by \"*\" on the whole table"
            ));
        }
        Ok(ColumnName(column))
    }
}

impl ParseName for FunctionName {
    const EXPECTING: &'static str = "a schema-qualified function name";
    fn parse(text: &str) -> Result<Self, String> {
        let mut parts = parse_qualified(text)?;
        match (parts.len(), parts.pop(), parts.pop()) {
            (2, Some(name), Some(schema)) => Ok(FunctionName(FuncName::new(schema, name))),
            _ => Err(format!(
                "function {text:?} must be schema-qualified, e.g. public.place_order or pg_catalog.nextval"
            )),
        }
    }
}

struct NameVisitor<T>(PhantomData<T>);

impl<T: ParseName> Visitor<'_> for NameVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    // Parsing inside the visitor lets serde_yaml_ng attach the scalar's line and column.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse(v).map_err(E::custom)
    }
}

macro_rules! deserialize_via_parse {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(NameVisitor::<$t>(PhantomData))
            }
        }
    )*};
}
deserialize_via_parse!(RoleName, TableName, SchemaName, ColumnName, FunctionName);

impl<'de> Deserialize<'de> for RawColumns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ColumnsVisitor;
        impl<'de> Visitor<'de> for ColumnsVisitor {
            type Value = RawColumns;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"*\" or a list of column names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawColumns, E> {
                if v == "*" {
                    Ok(RawColumns::All)
                } else {
                    Err(E::custom(format!(
                        "expected \"*\" or a list of column names, found {v:?}"
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawColumns, A::Error> {
                let mut columns = BTreeSet::new();
                while let Some(ColumnName(column)) = seq.next_element()? {
                    columns.insert(column);
                }
                Ok(RawColumns::List(columns))
            }
        }
        d.deserialize_any(ColumnsVisitor)
    }
}

/// A mapping whose keys must be unique *after folding* (`orders` and `public.orders` are
/// the same table), kept in file order.
#[derive(Debug)]
pub(crate) struct UniqueMap<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for UniqueMap<K, V> {
    fn default() -> Self {
        UniqueMap(Vec::new())
    }
}

impl<'de, K, V> Deserialize<'de> for UniqueMap<K, V>
where
    K: ParseName + Ord + Clone + fmt::Debug,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
        where
            K: ParseName + Ord + Clone + fmt::Debug,
            V: Deserialize<'de>,
        {
            type Value = UniqueMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut seen = BTreeSet::new();
                let mut entries = Vec::new();
                while let Some(key) = map.next_key_seed(UniqueKey(&mut seen))? {
                    entries.push((key, map.next_value()?));
                }
                Ok(UniqueMap(entries))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// Deserializes one key and rejects it, at the key's own position, if it was seen before.
struct UniqueKey<'a, K>(&'a mut BTreeSet<K>);

impl<'de, K: ParseName + Ord + Clone + fmt::Debug> DeserializeSeed<'de> for UniqueKey<'_, K> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_str(self)
    }
}

impl<K: ParseName + Ord + Clone + fmt::Debug> Visitor<'_> for UniqueKey<'_, K> {
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(K::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        let key = K::parse(v).map_err(E::custom)?;
        if !self.0.insert(key.clone()) {
            return Err(E::custom(format!(
                "duplicate key {v:?} (names are compared after folding)"
            )));
        }
        Ok(key)
    }
}
