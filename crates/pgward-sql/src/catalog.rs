//! The catalog the analyser resolves names against: schema -> relation -> columns.
//!
//! A plain data type: the proxy fills it from the upstream database, the CLI from
//! `--schema` (CREATE TABLE statements) or `--dsn`. It never does I/O itself.

use std::collections::{HashMap, HashSet};

/// What kind of relation a catalog entry is (`pg_class.relkind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    Sequence,
}

/// One relation: its kind and its user columns in attribute order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub kind: RelKind,
    pub columns: Vec<String>,
}

/// A function known to the catalog, for resolving a FunctionCall message's OID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub schema: String,
    pub name: String,
}

/// Schemas, relations and functions by their folded catalog names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    schemas: HashMap<String, HashMap<String, Relation>>,
    functions_by_oid: HashMap<u32, Function>,
    /// Function names per schema, for resolving unqualified calls along the search_path.
    function_names: HashMap<String, HashSet<String>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a relation. Names must already be catalog names.
    pub fn add_relation(
        &mut self,
        schema: impl Into<String>,
        name: impl Into<String>,
        kind: RelKind,
        columns: Vec<String>,
    ) {
        self.schemas
            .entry(schema.into())
            .or_default()
            .insert(name.into(), Relation { kind, columns });
    }

    /// Records a schema that may hold no relations yet.
    pub fn add_schema(&mut self, schema: impl Into<String>) {
        self.schemas.entry(schema.into()).or_default();
    }

    /// Adds a function by OID; its name also becomes known in its schema.
    pub fn add_function(&mut self, oid: u32, schema: impl Into<String>, name: impl Into<String>) {
        let function = Function {
            schema: schema.into(),
            name: name.into(),
        };
        self.add_function_name(function.schema.clone(), function.name.clone());
        self.functions_by_oid.insert(oid, function);
    }

    /// Records that a function (or procedure) of this name exists in this schema.
    pub fn add_function_name(&mut self, schema: impl Into<String>, name: impl Into<String>) {
        self.function_names
            .entry(schema.into())
            .or_default()
            .insert(name.into());
    }

    /// Whether the catalog knows a function of this name in this schema.
    pub fn has_function(&self, schema: &str, name: &str) -> bool {
        self.function_names
            .get(schema)
            .is_some_and(|names| names.contains(name))
    }

    /// Whether the catalog holds any function names for this schema (if not, built-in
    /// knowledge is used for pg_catalog).
    pub fn knows_functions_of(&self, schema: &str) -> bool {
        self.function_names.contains_key(schema)
    }

    pub fn relation(&self, schema: &str, name: &str) -> Option<&Relation> {
        self.schemas.get(schema).and_then(|s| s.get(name))
    }

    pub fn has_schema(&self, schema: &str) -> bool {
        self.schemas.contains_key(schema)
    }

    pub fn function_by_oid(&self, oid: u32) -> Option<&Function> {
        self.functions_by_oid.get(&oid)
    }

    /// Every (schema, relation name, relation), in no particular order.
    pub fn relations(&self) -> impl Iterator<Item = (&str, &str, &Relation)> {
        self.schemas
            .iter()
            .flat_map(|(s, rels)| rels.iter().map(move |(n, r)| (s.as_str(), n.as_str(), r)))
    }
}
