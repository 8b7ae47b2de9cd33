//! One parameter query → [`ParameterQueryKind`] and its output columns (PROTOCOL.md §1.3), or the
//! problems that prevent it.
//!
//! Three shapes: no `FROM` (static), `FROM json_each(<request value>)`, and `FROM <table>` (no
//! alias), whose `WHERE` must decompose into matches between row values and request values. Each
//! output column is a bucket parameter (except `_priority`): computed from the request, or — in
//! table queries — stored from the row at replication time.

use sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, SelectItem, Value as SqlValue,
};

use crate::compile_expr::{
    first_location, ident_name, span_start, Clause, ExprCompiler, Issue, Mode,
};
use crate::expr::Expr;
use crate::filter::{Filter, ShapeError};
use crate::functions::FunctionOptions;
use crate::plan::{InputKind, ParameterQueryKind, ParameterValue};
use crate::sql_parse::parse_query;
use crate::sql_shape::{from_of, select_of, From};

/// A compiled parameter query, before it is placed in a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParameterQueryParts {
    /// Shape and filter.
    pub kind: ParameterQueryKind,
    /// Bucket parameter outputs by name, in the query's column order.
    pub outputs: Vec<(String, ParameterValue)>,
    /// `_priority`, if output.
    pub priority: Option<u8>,
    /// Reads client parameters and nothing from the token (PROTOCOL.md §1.5.6).
    pub potentially_dangerous: bool,
    /// Where the query starts (for warnings).
    pub location: Option<(u64, u64)>,
    /// Problems that do not stop the query (unquoted identifiers with capitals).
    pub warnings: Vec<Issue>,
}

fn parse_priority(expr: &SqlExpr) -> Option<u8> {
    match expr {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::Number(text, _) => text.parse::<u8>().ok().filter(|p| *p <= 3),
            _ => None,
        },
        SqlExpr::Nested(inner) => parse_priority(inner),
        _ => None,
    }
}

/// Compiles the parameter query `sql`. `yaml_priority` is true when the definition sets
/// `priority` (then `_priority` is refused).
pub(crate) fn compile_parameter_query(
    sql: &str,
    options: FunctionOptions,
    yaml_priority: bool,
) -> Result<ParameterQueryParts, Vec<Issue>> {
    let query = parse_query(sql).map_err(|e| vec![Issue::from(e)])?;
    let mut issues = Vec::new();
    let select = select_of(&query, &mut issues);
    let mut warnings = Vec::new();
    let from = select.and_then(|s| from_of(s, &mut issues, &mut warnings));
    let (Some(select), Some(from)) = (select, from) else {
        return Err(issues);
    };
    let location = span_start(select.select_token.0.span);

    // The FROM decides the shape, and what names mean.
    let mut compiler = ExprCompiler::new(Mode::ParameterStatic, sql, options);
    let mut json_each_source: Option<Expr> = None;
    let mut table = None;
    match from {
        From::Nothing => {}
        From::Function {
            location,
            name,
            args,
            alias,
        } => {
            if name != "json_each" {
                compiler.issue(
                    format!("unknown table-valued function '{name}'"),
                    Some("the only table-valued function is json_each(<JSON array from the request>)"),
                    location,
                );
                return Err(compiler.issues);
            }
            let arg = match args {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => e,
                _ => {
                    compiler.issue(
                        "json_each() takes exactly one argument",
                        Some("for example: FROM json_each(request.jwt() -> 'project_ids')"),
                        location,
                    );
                    return Err(compiler.issues);
                }
            };
            match compiler.compile(arg) {
                Some(Clause::Request(e) | Clause::Static(e)) => json_each_source = Some(e),
                Some(_) => compiler.issue(
                    "the argument of json_each() must come from the request",
                    Some("for example: json_each(request.jwt() -> 'project_ids')"),
                    first_location(arg),
                ),
                None => {}
            }
            compiler.mode = Mode::ParameterJsonEach {
                alias: alias.unwrap_or_else(|| "json_each".to_owned()),
            };
        }
        From::Table {
            location,
            table: t,
            alias,
        } => {
            // With a (refused) alias, references through the alias resolve, so the alias is
            // the one error reported.
            let sql_name = match alias {
                Some(alias) => {
                    compiler.issue(
                        format!(
                            "table aliases are not supported in parameter queries ('AS {alias}')"
                        ),
                        Some(&format!(
                            "remove the alias and refer to the table as '{}'",
                            t.name
                        )),
                        location,
                    );
                    alias
                }
                None => t.name.clone(),
            };
            compiler.mode = Mode::ParameterTable { table: sql_name };
            table = Some(t);
        }
    }

    // Output columns.
    let mut outputs: Vec<(String, ParameterValue)> = Vec::new();
    let mut stored: Vec<(String, Expr)> = Vec::new();
    let mut priority = None;
    for item in &select.projection {
        let (name, expr) = match item {
            SelectItem::ExprWithAlias { expr, alias } => (ident_name(alias), expr),
            SelectItem::UnnamedExpr(expr) => match expr {
                SqlExpr::Identifier(ident) => (ident_name(ident), expr),
                SqlExpr::CompoundIdentifier(idents) if idents.len() == 2 => {
                    (ident_name(&idents[1]), expr)
                }
                _ => {
                    compiler.issue(
                        "an expression column needs a name",
                        Some("write `<expression> AS <name>`; the names are the bucket parameters"),
                        first_location(expr),
                    );
                    continue;
                }
            },
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                compiler.issue(
                    "* is not supported in parameter queries",
                    Some("list the columns: their names are the bucket parameters"),
                    location,
                );
                continue;
            }
            SelectItem::ExprWithAliases { expr, .. } => {
                compiler.issue(
                    "several aliases for one column are not supported",
                    None,
                    first_location(expr),
                );
                continue;
            }
        };
        let at = first_location(expr);
        if name == "_priority" {
            if yaml_priority {
                compiler.issue(
                    "the priority is set twice: by `priority` in the YAML and by a `_priority` column",
                    Some("keep one of them"),
                    at,
                );
            } else {
                match parse_priority(expr) {
                    Some(p) => priority = Some(p),
                    None => compiler.issue(
                        "_priority must be an integer literal from 0 to 3",
                        Some("for example: SELECT …, 1 AS _priority"),
                        at,
                    ),
                }
            }
            continue;
        }
        if outputs.iter().any(|(n, _)| *n == name) {
            compiler.issue(
                format!("duplicate output column '{name}'"),
                Some("give each bucket parameter its own name"),
                at,
            );
            continue;
        }
        match compiler.compile(expr) {
            Some(Clause::Row(e)) => {
                stored.push((name.clone(), e));
                outputs.push((name.clone(), ParameterValue::Stored(name)));
            }
            Some(Clause::Request(e) | Clause::Static(e)) => {
                outputs.push((name, ParameterValue::Request(e)))
            }
            Some(Clause::Bucket(_) | Clause::Filter(_)) => compiler.issue(
                format!(
                    "output column '{name}' cannot be a comparison between row and request values"
                ),
                Some("output a value; put comparisons in WHERE"),
                at,
            ),
            None => {}
        }
    }

    // WHERE.
    let where_location = select.selection.as_ref().and_then(first_location);
    let kind = match (&compiler.mode, table) {
        (Mode::ParameterTable { .. }, Some(table)) => {
            let filter = match &select.selection {
                None => Some(Filter::And(Vec::new())),
                Some(selection) => compiler
                    .compile(selection)
                    .and_then(|clause| compiler.condition_filter(clause, where_location)),
            };
            if let Some(filter) = &filter {
                match filter.shape() {
                    Err(ShapeError::OrWithDifferentParameters) => compiler.issue(
                        "both sides of OR must match the same request values",
                        Some("split the query into one parameter query per side of the OR"),
                        where_location,
                    ),
                    Err(ShapeError::SeveralExpansions) => compiler.issue(
                        "only one `<request value> IN <row array>` may be combined with AND",
                        Some("split the query into separate parameter queries"),
                        where_location,
                    ),
                    Ok(_) => {}
                }
            }
            let expanding = compiler
                .inputs
                .iter()
                .filter(|i| i.kind == InputKind::Expanding)
                .count();
            if expanding > 1 {
                compiler.issue(
                    format!("only one expanding parameter per query, found {expanding}"),
                    Some("`table.col IN <request array>` and `&&` expand one lookup per element; split the query so each has at most one"),
                    where_location,
                );
            }
            filter.map(|filter| ParameterQueryKind::Table {
                table,
                filter,
                inputs: std::mem::take(&mut compiler.inputs),
                stored,
            })
        }
        _ => {
            let condition = match &select.selection {
                None => Some(None),
                Some(selection) => match compiler.compile(selection) {
                    Some(Clause::Request(e) | Clause::Static(e)) => Some(Some(e)),
                    Some(_) => {
                        compiler.issue(
                            "this condition cannot be used without a FROM table",
                            None,
                            where_location,
                        );
                        None
                    }
                    None => None,
                },
            };
            condition.map(|condition| match json_each_source.take() {
                Some(source) => ParameterQueryKind::JsonEach { source, condition },
                None => ParameterQueryKind::Static { condition },
            })
        }
    };
    if !compiler.issues.is_empty() {
        return Err(compiler.issues);
    }
    let Some(kind) = kind else {
        return Err(compiler.issues);
    };
    Ok(ParameterQueryParts {
        kind,
        outputs,
        priority,
        potentially_dangerous: compiler.uses_unauthenticated && !compiler.uses_authenticated,
        location,
        warnings: warnings.into_iter().chain(compiler.warnings).collect(),
    })
}
