//! Raw policy files -> a checked [`Policy`]: one role per name across all files,
//! inheritance resolved into effective grants, cycles and unknown parents rejected.
//! Every raw struct is destructured without `..`, so a new field in the file format does
//! not compile until it is handled here.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgward_sql::access::{FuncName, RelName};

use crate::error::LoadError;
use crate::functions::FunctionTable;
use crate::policy::{Columns, Mode, Policy, Role, RoleSettings, TableGrant};
use crate::raw::{
    FunctionName, RawColumns, RawFile, RawMode, RawRole, RawTable, RoleName, SchemaName, TableName,
};

pub(crate) fn load_dir(dir: &Path) -> Result<Policy, LoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoadError::Io { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(LoadError::NoFiles {
            dir: dir.to_path_buf(),
        });
    }
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        sources.push((path, text));
    }
    let borrowed: Vec<(PathBuf, &str)> = sources
        .iter()
        .map(|(p, t)| (p.clone(), t.as_str()))
        .collect();
    compile(&borrowed)
}

/// A role as its own file defines it, before inheritance.
struct Own<'a> {
    file: &'a Path,
    text: &'a str,
    description: Option<String>,
    inherit: Vec<String>,
    settings: RoleSettings,
    all_tables: Option<TableGrant>,
    tables: BTreeMap<RelName, TableGrant>,
    functions: BTreeSet<FuncName>,
}

pub(crate) fn compile(sources: &[(PathBuf, &str)]) -> Result<Policy, LoadError> {
    let mut own: BTreeMap<String, Own<'_>> = BTreeMap::new();
    for (file, text) in sources {
        let RawFile { roles } =
            serde_yaml_ng::from_str(text).map_err(|e| LoadError::syntax(file, &e))?;
        for (RoleName(name), raw) in roles.0 {
            if let Some(first) = own.get(&name) {
                return Err(LoadError::invalid(
                    file,
                    locate_key(text, &name, 0),
                    format!(
                        "role \"{name}\" is already defined in {}",
                        first.file.display()
                    ),
                ));
            }
            own.insert(name, own_role(file, text, raw));
        }
    }

    let mut effective = BTreeMap::new();
    for name in own.keys() {
        resolve(name, &own, &mut Vec::new(), &mut effective)?;
    }
    let roles = effective
        .into_iter()
        .map(|(name, role)| (name.to_string(), role))
        .collect();
    Ok(Policy {
        roles,
        version: version(sources),
        functions: FunctionTable::new(),
    })
}

fn own_role<'a>(file: &'a Path, text: &'a str, raw: RawRole) -> Own<'a> {
    let RawRole {
        description,
        inherit,
        mode,
        search_path,
        catalog,
        ddl,
        tables,
        functions,
    } = raw;
    let mode = match mode {
        None | Some(RawMode::Enforce) => Mode::Enforce,
        Some(RawMode::Audit) => Mode::Audit,
    };
    let search_path = match search_path {
        Some(schemas) => schemas.into_iter().map(|SchemaName(s)| s).collect(),
        None => vec!["public".to_string()],
    };
    let mut all_tables = None;
    let mut named = BTreeMap::new();
    for (key, table) in tables.0 {
        match key {
            TableName::All => all_tables = Some(TableGrant::from(table)),
            TableName::Relation(rel) => {
                named.insert(rel, TableGrant::from(table));
            }
        }
    }
    Own {
        file,
        text,
        description,
        inherit,
        settings: RoleSettings {
            mode,
            search_path,
            catalog: catalog.unwrap_or(true),
            ddl: ddl.unwrap_or(false),
        },
        all_tables,
        tables: named,
        functions: functions.into_iter().map(|FunctionName(f)| f).collect(),
    }
}

impl From<RawTable> for TableGrant {
    fn from(raw: RawTable) -> Self {
        let RawTable {
            select,
            insert,
            update,
            delete,
            truncate,
        } = raw;
        TableGrant {
            select: columns(select),
            insert: columns(insert),
            update: columns(update),
            delete: delete.unwrap_or(false),
            truncate: truncate.unwrap_or(false),
        }
    }
}

fn columns(raw: Option<RawColumns>) -> Columns {
    match raw {
        None => Columns::None,
        Some(RawColumns::All) => Columns::All,
        Some(RawColumns::List(list)) => Columns::Only(list),
    }
}

/// Computes `name`'s effective role (own grants plus every ancestor's), parents first.
/// `stack` is the inheritance path being resolved, to name a cycle.
fn resolve<'a>(
    name: &'a str,
    own: &'a BTreeMap<String, Own<'a>>,
    stack: &mut Vec<&'a str>,
    done: &mut BTreeMap<&'a str, Role>,
) -> Result<(), LoadError> {
    if done.contains_key(name) {
        return Ok(());
    }
    let Some(me) = own.get(name) else {
        return Ok(()); // callers check existence first
    };
    if let Some(pos) = stack.iter().position(|n| *n == name) {
        let mut cycle: Vec<&str> = stack[pos..].to_vec();
        cycle.push(name);
        return Err(LoadError::invalid(
            me.file,
            locate_key(me.text, name, 0),
            format!("inheritance cycle: {}", cycle.join(" -> ")),
        ));
    }
    stack.push(name);
    for parent in &me.inherit {
        if !own.contains_key(parent) {
            return Err(LoadError::invalid(
                me.file,
                locate_inherit(me.text, name),
                format!("role \"{name}\" inherits unknown role \"{parent}\""),
            ));
        }
        resolve(parent, own, stack, done)?;
    }
    stack.pop();

    let mut role = Role {
        name: Arc::from(name),
        description: me.description.clone(),
        file: me.file.to_path_buf(),
        inherit: me.inherit.clone(),
        settings: me.settings.clone(),
        all_tables: me.all_tables.clone(),
        tables: me.tables.clone(),
        functions: me.functions.clone(),
    };
    for parent in me.inherit.iter().filter_map(|p| done.get(p.as_str())) {
        // Grants are inherited; session settings (mode, search_path, catalog) are not.
        role.settings.ddl |= parent.settings.ddl;
        role.functions.extend(parent.functions.iter().cloned());
        if let Some(grant) = &parent.all_tables {
            role.all_tables
                .get_or_insert_with(TableGrant::default)
                .union_with(grant);
        }
        for (rel, grant) in &parent.tables {
            role.tables
                .entry(rel.clone())
                .or_default()
                .union_with(grant);
        }
    }
    done.insert(name, role);
    Ok(())
}

/// A hash of the sources: equal files give equal versions (a reload of unchanged files
/// keeps the decision cache warm); any change gives a new one.
fn version(sources: &[(PathBuf, &str)]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for (file, text) in sources {
        file.hash(&mut hasher);
        text.hash(&mut hasher);
    }
    hasher.finish()
}

/// Best effort: the (line, column) of the first mapping key `key` at or after line
/// `from` (0-based), for errors found after parsing (serde no longer has positions).
fn locate_key(text: &str, key: &str, from: usize) -> Option<(usize, usize)> {
    let forms = [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ];
    text.lines().enumerate().skip(from).find_map(|(i, line)| {
        let trimmed = line.trim_start();
        forms
            .iter()
            .any(|f| trimmed.starts_with(f.as_str()))
            .then(|| (i + 1, line.len() - trimmed.len() + 1))
    })
}

/// Best effort: the `inherit:` line of role `role`.
fn locate_inherit(text: &str, role: &str) -> Option<(usize, usize)> {
    let (line, _) = locate_key(text, role, 0)?;
    locate_key(text, "inherit", line).or(Some((line, 1)))
}
