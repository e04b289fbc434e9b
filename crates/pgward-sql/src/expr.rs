//! Expressions: every column an expression reads and every function it calls.
//!
//! Each `Expr` variant is matched explicitly; a form PostgreSQL does not have (or that
//! the analyser does not understand) is an error, never silently skipped.

use sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArguments, InTarget, ObjectName, OrderByExpr, Subscript,
    TrimWhereField, WindowFrameBound, WindowSpec, WindowType,
};

use crate::access::{FuncName, Need};
use crate::error::AnalyseError;
use crate::ident::fold_object_name;
use crate::pg_catalog::{PG_CATALOG, SQL_VALUE_FUNCTIONS};
use crate::scope::Resolver;

fn pg_function(name: &str) -> Need {
    Need::Function {
        function: FuncName::new(PG_CATALOG, name),
    }
}

/// Whether `e` is the bare keyword DEFAULT (sqlparser shows it as an identifier).
pub(crate) fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// The single unquoted name of a function, lower-cased, if it has one part.
fn simple_name(name: &ObjectName) -> Option<String> {
    match fold_object_name(name).ok()?.as_slice() {
        [n] => Some(n.clone()),
        _ => None,
    }
}

impl Resolver<'_> {
    pub fn exprs<'e>(
        &mut self,
        es: impl IntoIterator<Item = &'e Expr>,
    ) -> Result<(), AnalyseError> {
        for e in es {
            self.expr(e)?;
        }
        Ok(())
    }

    fn opt_expr(&mut self, e: Option<&Expr>) -> Result<(), AnalyseError> {
        match e {
            Some(e) => self.expr(e),
            None => Ok(()),
        }
    }

    pub fn expr(&mut self, e: &Expr) -> Result<(), AnalyseError> {
        match e {
            Expr::Identifier(ident) => self.column_ref(std::slice::from_ref(ident)),
            Expr::CompoundIdentifier(idents) => self.column_ref(idents),
            Expr::CompoundFieldAccess { root, access_chain } => {
                self.expr(root)?;
                for access in access_chain {
                    match access {
                        // A field name of a composite value: the root's read covers it.
                        AccessExpr::Dot(Expr::Identifier(_)) => {}
                        AccessExpr::Dot(other) => {
                            return Err(AnalyseError::unsupported(format!(
                                "expression not supported: field access {other}"
                            )))
                        }
                        AccessExpr::Subscript(Subscript::Index { index }) => self.expr(index)?,
                        AccessExpr::Subscript(Subscript::Slice {
                            lower_bound,
                            upper_bound,
                            stride,
                        }) => {
                            self.opt_expr(lower_bound.as_ref())?;
                            self.opt_expr(upper_bound.as_ref())?;
                            self.opt_expr(stride.as_ref())?;
                        }
                    }
                }
                Ok(())
            }
            Expr::IsFalse(e)
            | Expr::IsNotFalse(e)
            | Expr::IsTrue(e)
            | Expr::IsNotTrue(e)
            | Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::IsUnknown(e)
            | Expr::IsNotUnknown(e)
            | Expr::Nested(e)
            | Expr::Collate { expr: e, .. }
            | Expr::IsNormalized { expr: e, .. }
            | Expr::IsJson { expr: e, .. } => self.expr(e),
            Expr::UnaryOp { expr, .. } => self.expr(expr),
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.expr(a)?;
                self.expr(b)
            }
            Expr::In { expr, target, .. } => {
                self.expr(expr)?;
                match target {
                    InTarget::List(list) => self.exprs(list),
                    InTarget::Subquery(q) => self.query(q).map(|_| ()),
                    InTarget::Unnest(_) | InTarget::Table { .. } => Err(AnalyseError::unsupported(
                        format!("expression not supported: {e}"),
                    )),
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => self.exprs([&**expr, &**low, &**high]),
            Expr::BinaryOp { left, op, right } => {
                let reviewed = match op {
                    BinaryOperator::PGCustomBinaryOperator(path) => is_reviewed_pg_operator(path),
                    _ => true,
                };
                if !reviewed || matches!(op, BinaryOperator::Custom(_)) {
                    return Err(AnalyseError::unsupported(format!(
                        "expression not supported: operator {op}"
                    )));
                }
                self.expr(left)?;
                self.expr(right)
            }
            Expr::Like {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::SimilarTo {
                expr,
                pattern,
                escape_char,
                ..
            } => {
                self.expr(expr)?;
                self.expr(pattern)?;
                self.opt_expr(escape_char.as_deref())
            }
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                self.expr(left)?;
                self.expr(right)
            }
            Expr::Cast {
                kind, expr, format, ..
            } => match (kind, format) {
                (CastKind::Cast | CastKind::DoubleColon, None) => self.expr(expr),
                _ => Err(AnalyseError::unsupported(format!(
                    "expression not supported: {e}"
                ))),
            },
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                self.need(pg_function("timezone"));
                self.expr(timestamp)?;
                self.expr(time_zone)
            }
            Expr::Extract { expr, .. } => {
                self.need(pg_function("extract"));
                self.expr(expr)
            }
            Expr::Ceil { expr, .. } => {
                self.need(pg_function("ceil"));
                self.expr(expr)
            }
            Expr::Floor { expr, .. } => {
                self.need(pg_function("floor"));
                self.expr(expr)
            }
            Expr::Position { expr, r#in } => {
                self.need(pg_function("position"));
                self.expr(expr)?;
                self.expr(r#in)
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.need(pg_function("substring"));
                self.expr(expr)?;
                self.opt_expr(substring_from.as_deref())?;
                self.opt_expr(substring_for.as_deref())
            }
            Expr::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                let name = match trim_where {
                    Some(TrimWhereField::Leading) => "ltrim",
                    Some(TrimWhereField::Trailing) => "rtrim",
                    Some(TrimWhereField::Both) | None => "btrim",
                };
                self.need(pg_function(name));
                self.expr(expr)?;
                self.opt_expr(trim_what.as_deref())?;
                if let Some(chars) = trim_characters {
                    self.exprs(chars)?;
                }
                Ok(())
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                self.need(pg_function("overlay"));
                self.exprs([&**expr, &**overlay_what, &**overlay_from])?;
                self.opt_expr(overlay_for.as_deref())
            }
            Expr::Value(_) | Expr::TypedString(_) => Ok(()),
            Expr::Function(f) => self.function(f),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                self.opt_expr(operand.as_deref())?;
                for when in conditions {
                    self.expr(&when.condition)?;
                    self.expr(&when.result)?;
                }
                self.opt_expr(else_result.as_deref())
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => {
                self.query(subquery).map(|_| ())
            }
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                self.exprs(sets.iter().flatten())
            }
            Expr::Tuple(items) => self.exprs(items),
            Expr::Array(array) => self.exprs(&array.elem),
            Expr::Interval(interval) => self.expr(&interval.value),
            Expr::JsonAccess { .. }
            | Expr::RLike { .. }
            | Expr::Convert { .. }
            | Expr::Prefixed { .. }
            | Expr::Struct { .. }
            | Expr::Named { .. }
            | Expr::Dictionary(_)
            | Expr::Map(_)
            | Expr::MatchAgainst { .. }
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..)
            | Expr::OuterJoin(_)
            | Expr::Prior(_)
            | Expr::Lambda(_)
            | Expr::MemberOf(_) => Err(AnalyseError::unsupported(format!(
                "expression not supported: {e}"
            ))),
        }
    }

    pub fn function(&mut self, f: &Function) -> Result<(), AnalyseError> {
        let Function {
            name,
            uses_odbc_syntax,
            parameters,
            args,
            within_group,
            filter,
            null_treatment,
            over,
        } = f;
        if *uses_odbc_syntax
            || !matches!(parameters, FunctionArguments::None)
            || null_treatment.is_some()
        {
            return Err(AnalyseError::unsupported(format!(
                "expression not supported: {f}"
            )));
        }
        let simple = simple_name(name).filter(|_| {
            name.0.len() == 1
                && name
                    .0
                    .iter()
                    .all(|p| p.as_ident().is_some_and(|i| i.quote_style.is_none()))
        });
        match (simple.as_deref(), args) {
            // CURRENT_USER, CURRENT_DATE, ...: SQL value functions, not function calls.
            (Some(n), FunctionArguments::None) if SQL_VALUE_FUNCTIONS.contains(&n) => return Ok(()),
            // ROW(...) and ARRAY(subquery) are constructors, not calls.
            (Some("row"), FunctionArguments::List(list)) if list.clauses.is_empty() => {
                return self.function_args(&list.args)
            }
            (Some("array"), FunctionArguments::Subquery(q)) => return self.query(q).map(|_| ()),
            (_, FunctionArguments::None) | (_, FunctionArguments::Subquery(_)) => {
                return Err(AnalyseError::unsupported(format!(
                    "expression not supported: {f}"
                )))
            }
            (_, FunctionArguments::List(_)) => {}
        }
        let function = self.resolve_function(name)?;
        // set_config('<harmless setting>', value, is_local) is the same as a SET of that
        // setting (asyncpg wraps its introspection in set_config('jit', ...)); any other
        // use of set_config stays a call the policy must allow.
        let same_as_set = function.schema == "pg_catalog"
            && function.name == "set_config"
            && matches!(args, FunctionArguments::List(list) if harmless_set_config(&list.args));
        if function.schema == "pg_catalog" && function.name == "current_setting" {
            if let FunctionArguments::List(list) = args {
                if let Some(name) = superuser_only_setting(&list.args) {
                    return Err(AnalyseError::not_allowed(format!(
                        "current_setting('{name}') reads a superuser-only setting"
                    )));
                }
            }
        }
        if !same_as_set {
            self.need(Need::Function { function });
        }
        if let FunctionArguments::List(list) = args {
            self.function_args(&list.args)?;
            for clause in &list.clauses {
                match clause {
                    FunctionArgumentClause::OrderBy(order) => self.order_by_exprs(order)?,
                    FunctionArgumentClause::JsonNullClause(_)
                    | FunctionArgumentClause::JsonReturningClause(_) => {}
                    other => {
                        return Err(AnalyseError::unsupported(format!(
                            "function argument clause not supported: {other}"
                        )))
                    }
                }
            }
        }
        self.order_by_exprs(within_group)?;
        self.opt_expr(filter.as_deref())?;
        match over {
            None | Some(WindowType::NamedWindow(_)) => Ok(()),
            Some(WindowType::WindowSpec(spec)) => self.window_spec(spec),
        }
    }

    pub fn function_args(&mut self, args: &[FunctionArg]) -> Result<(), AnalyseError> {
        for arg in args {
            let arg = match arg {
                FunctionArg::Named { arg, .. } | FunctionArg::Unnamed(arg) => arg,
                FunctionArg::ExprNamed { .. } => {
                    return Err(AnalyseError::unsupported(format!(
                        "function argument not supported: {arg}"
                    )))
                }
            };
            match arg {
                FunctionArgExpr::Expr(e) => self.expr(e)?,
                // count(*): the FROM clause already needs some column of each relation.
                FunctionArgExpr::Wildcard => {}
                FunctionArgExpr::QualifiedWildcard(name) => self.whole_row_of(name)?,
                FunctionArgExpr::WildcardWithOptions(_) => {
                    return Err(AnalyseError::unsupported(format!(
                        "function argument not supported: {arg}"
                    )))
                }
            }
        }
        Ok(())
    }

    pub fn order_by_exprs(&mut self, order: &[OrderByExpr]) -> Result<(), AnalyseError> {
        for o in order {
            if o.with_fill.is_some() {
                return Err(AnalyseError::unsupported("ORDER BY ... WITH FILL"));
            }
            self.expr(&o.expr)?;
        }
        Ok(())
    }

    pub fn window_spec(&mut self, spec: &WindowSpec) -> Result<(), AnalyseError> {
        self.exprs(&spec.partition_by)?;
        self.order_by_exprs(&spec.order_by)?;
        if let Some(frame) = &spec.window_frame {
            for bound in std::iter::once(&frame.start_bound).chain(frame.end_bound.as_ref()) {
                match bound {
                    WindowFrameBound::CurrentRow => {}
                    WindowFrameBound::Preceding(e) | WindowFrameBound::Following(e) => {
                        self.opt_expr(e.as_deref())?
                    }
                }
            }
        }
        Ok(())
    }
}

/// `OPERATOR(pg_catalog.op)` as psql writes it (`c.relname OPERATOR(pg_catalog.~) '^x$'`):
/// allowed for the built-in comparison, pattern, arithmetic and containment operators,
/// whose implementations are on the safe function list. Any other schema, or an
/// operator not in this table, is denied.
fn is_reviewed_pg_operator(path: &[String]) -> bool {
    const REVIEWED: &[&str] = &[
        "=", "<>", "!=", "<", ">", "<=", ">=", "~", "!~", "~*", "!~*", "~~", "!~~", "~~*", "!~~*",
        "+", "-", "*", "/", "%", "||", "@>", "<@", "&&",
    ];
    matches!(path, [schema, op] if schema == "pg_catalog" && REVIEWED.contains(&op.as_str()))
}

/// Whether `set_config(name, value, is_local)` names a harmless setting with a literal
/// (a value that matters, client_encoding's, must be a literal that passes the check).
fn harmless_set_config(args: &[FunctionArg]) -> bool {
    let literal = |a: &FunctionArg| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            sqlparser::ast::Value::SingleQuotedString(s) => Some(Some(s.clone())),
            sqlparser::ast::Value::Placeholder(_) => Some(None),
            _ => None,
        },
        _ => None,
    };
    let [name, value, _is_local] = args else {
        return false;
    };
    let Some(Some(name)) = literal(name) else {
        return false;
    };
    match literal(value) {
        Some(Some(v)) => crate::settings::check_setting(&name, &v).is_ok(),
        Some(None) => {
            !name.eq_ignore_ascii_case("client_encoding")
                && crate::settings::check_setting(&name, "").is_ok()
        }
        None => false,
    }
}

/// Settings PostgreSQL hides from roles without pg_read_all_settings (read off
/// PostgreSQL 15: `pg_settings` as a superuser minus as an ordinary role). pgward denies
/// reading them by name, as the database itself would.
const SUPERUSER_ONLY_SETTINGS: &[&str] = &[
    "config_file",
    "data_directory",
    "dynamic_library_path",
    "extension_destdir",
    "external_pid_file",
    "hba_file",
    "ident_file",
    "jit_provider",
    "krb_server_keyfile",
    "log_directory",
    "log_filename",
    "primary_conninfo",
    "session_preload_libraries",
    "shared_preload_libraries",
    "ssl_ciphers",
    "ssl_dh_params_file",
    "ssl_ecdh_curve",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "ssl_passphrase_command",
    "unix_socket_directories",
];

/// The literal setting name of a `current_setting(...)` call, if it is superuser-only.
fn superuser_only_setting(args: &[FunctionArg]) -> Option<String> {
    let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) = args.first() else {
        return None;
    };
    let sqlparser::ast::Value::SingleQuotedString(name) = &v.value else {
        return None;
    };
    let name = name.to_ascii_lowercase();
    SUPERUSER_ONLY_SETTINGS
        .contains(&name.as_str())
        .then_some(name)
}
