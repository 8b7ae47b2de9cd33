//! One data query → `DataQuery` parts (PROTOCOL.md §1.4), or the problems that prevent it.
//!
//! A data query is `SELECT <columns> FROM <table> [AS alias] [WHERE …]`. Its output must contain
//! `id` (or use `*`, which takes `id` from the table), its columns may read only the row, and its
//! `WHERE` must match every bucket parameter of the definition, as `col = bucket.x` or
//! `bucket.x IN json_array_col`, on every side of an `OR`.

use sqlparser::ast::{SelectItem, SelectItemQualifiedWildcardKind, WildcardAdditionalOptions};

use crate::compile_expr::{
    first_location, ident_name, object_name_location, span_start, Clause, ExprCompiler, Issue, Mode,
};
use crate::filter::{Filter, ShapeError};
use crate::functions::FunctionOptions;
use crate::plan::OutputColumn;
use crate::sql_parse::parse_query;
use crate::sql_shape::{from_of, select_of, From};
use crate::table_ref::TableRef;

/// A compiled data query, before it is placed in a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataQueryParts {
    /// The source table.
    pub table: TableRef,
    /// `object_type`: the alias, else the table name; `None` for an unaliased pattern.
    pub object_type: Option<String>,
    /// Output columns.
    pub columns: Vec<OutputColumn>,
    /// `WHERE` over the bucket parameters.
    pub filter: Filter,
    /// Problems that do not stop the query (unquoted identifiers with capitals).
    pub warnings: Vec<Issue>,
}

fn plain_wildcard(options: &WildcardAdditionalOptions) -> bool {
    options.opt_ilike.is_none()
        && options.opt_exclude.is_none()
        && options.opt_except.is_none()
        && options.opt_replace.is_none()
        && options.opt_rename.is_none()
        && options.opt_alias.is_none()
}

/// Compiles the data query `sql` of a definition with `bucket_parameters` (`None` when the
/// definition's parameter queries did not compile: then bucket references are not checked).
pub(crate) fn compile_data_query(
    sql: &str,
    bucket_parameters: Option<&[String]>,
    options: FunctionOptions,
) -> Result<DataQueryParts, Vec<Issue>> {
    let query = parse_query(sql).map_err(|e| vec![Issue::from(e)])?;
    let mut issues = Vec::new();
    let select = select_of(&query, &mut issues);
    let mut warnings = Vec::new();
    let from = select.and_then(|s| from_of(s, &mut issues, &mut warnings));
    let (Some(select), Some(from)) = (select, from) else {
        return Err(issues);
    };
    let (table, alias, table_location) = match from {
        From::Table {
            table,
            alias,
            location,
        } => (table, alias, location),
        From::Function { location, .. } => {
            issues.push(Issue {
                message:
                    "table-valued functions like json_each() can only be used in parameter queries"
                        .to_owned(),
                hint: Some(
                    "a data query reads one table: SELECT … FROM <table> WHERE …".to_owned(),
                ),
                location,
            });
            return Err(issues);
        }
        From::Nothing => {
            issues.push(Issue {
                message: "a data query needs FROM <table>".to_owned(),
                hint: Some(
                    "for example: SELECT * FROM todos WHERE list_id = bucket.list_id".to_owned(),
                ),
                location: span_start(select.select_token.0.span),
            });
            return Err(issues);
        }
    };
    let sql_name = alias.clone().unwrap_or_else(|| table.name.clone());
    let object_type = match alias {
        Some(alias) => Some(alias),
        None if table.is_pattern() => None,
        None => Some(table.name.clone()),
    };
    let mut compiler = ExprCompiler::new(
        Mode::Data {
            table: sql_name.clone(),
            bucket_parameters: bucket_parameters.map(<[String]>::to_vec),
        },
        sql,
        options,
    );

    let mut columns = Vec::with_capacity(select.projection.len());
    let mut has_star = false;
    if select.projection.is_empty() {
        compiler.issue(
            "a data query must select columns",
            Some("for example: SELECT * FROM todos"),
            span_start(select.select_token.0.span),
        );
    }
    for item in &select.projection {
        let (name, expr) = match item {
            SelectItem::Wildcard(options) if plain_wildcard(options) => {
                has_star = true;
                columns.push(OutputColumn::All);
                continue;
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                options,
            ) if plain_wildcard(options) => {
                let qualifier: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| p.as_ident().map(ident_name).unwrap_or_default())
                    .collect();
                if qualifier.len() != 1 || qualifier[0] != sql_name {
                    compiler.issue(
                        format!(
                            "unknown table '{}' in '{}.*'",
                            qualifier.join("."),
                            qualifier.join(".")
                        ),
                        Some(&format!(
                            "this query reads only '{sql_name}'; write `{sql_name}.*` or `*`"
                        )),
                        object_name_location(name),
                    );
                    continue;
                }
                has_star = true;
                columns.push(OutputColumn::All);
                continue;
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                compiler.issue(
                    "* with EXCLUDE, EXCEPT, REPLACE or RENAME is not supported",
                    Some("list the columns you want"),
                    table_location,
                );
                continue;
            }
            SelectItem::ExprWithAlias { expr, alias } => (ident_name(alias), expr),
            SelectItem::UnnamedExpr(expr) => match expr {
                sqlparser::ast::Expr::Identifier(ident) => (ident_name(ident), expr),
                sqlparser::ast::Expr::CompoundIdentifier(idents) if idents.len() == 2 => {
                    (ident_name(&idents[1]), expr)
                }
                _ => {
                    compiler.issue(
                        "an expression column needs a name",
                        Some("write `<expression> AS <name>`"),
                        first_location(expr),
                    );
                    continue;
                }
            },
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
        match compiler.compile(expr) {
            Some(Clause::Row(expr) | Clause::Static(expr)) => {
                columns.push(OutputColumn::Expr { name, expr })
            }
            Some(Clause::Bucket(_) | Clause::Filter(_)) => compiler.issue(
                format!("output column '{name}' cannot use bucket parameters"),
                Some("output the row column the bucket parameter is matched with"),
                at,
            ),
            Some(Clause::Request(_)) => compiler.issue(
                format!("output column '{name}' cannot use request values"),
                Some("data queries output row values only"),
                at,
            ),
            None => {}
        }
    }
    if !has_star
        && !select.projection.is_empty()
        && !columns
            .iter()
            .any(|c| matches!(c, OutputColumn::Expr { name, .. } if name == "id"))
        && !select.projection.iter().any(
            |i| matches!(i, SelectItem::ExprWithAlias { alias, .. } if ident_name(alias) == "id"),
        )
    {
        compiler.issue(
            "a data query must output an 'id' column",
            Some("add `id` to the selected columns, or name the primary key: `SELECT pk AS id, …`"),
            span_start(select.select_token.0.span),
        );
    }

    let where_location = select.selection.as_ref().and_then(first_location);
    let filter = match &select.selection {
        None => Some(Filter::And(Vec::new())),
        Some(selection) => compiler
            .compile(selection)
            .and_then(|clause| compiler.condition_filter(clause, where_location)),
    };
    if let Some(filter) = &filter {
        match filter.shape() {
            Err(ShapeError::OrWithDifferentParameters) => compiler.issue(
                "both sides of OR must match the same bucket parameters",
                Some("split the query into one data query per side of the OR"),
                where_location,
            ),
            Err(ShapeError::SeveralExpansions) => compiler.issue(
                "only one `bucket.x IN <array>` (or &&) may be combined with AND",
                Some("split the query into separate data queries"),
                where_location,
            ),
            Ok(shape) => {
                if let Some(params) = bucket_parameters {
                    let missing: Vec<&String> = params
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !shape.inputs.contains(i))
                        .map(|(_, p)| p)
                        .collect();
                    if !missing.is_empty() {
                        let list = missing
                            .iter()
                            .map(|p| format!("bucket.{p}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        compiler.issue(
                            format!("query must cover all bucket parameters; not matched: {list}"),
                            Some(&format!(
                                "add `{}` to WHERE (on every side of OR)",
                                missing
                                    .iter()
                                    .map(|p| format!("<column> = bucket.{p}"))
                                    .collect::<Vec<_>>()
                                    .join(" AND ")
                            )),
                            where_location.or_else(|| span_start(select.select_token.0.span)),
                        );
                    }
                }
            }
        }
    }
    if !compiler.issues.is_empty() {
        return Err(compiler.issues);
    }
    let Some(filter) = filter else {
        return Err(compiler.issues);
    };
    warnings.extend(compiler.warnings);
    Ok(DataQueryParts {
        table,
        object_type,
        columns,
        filter,
        warnings,
    })
}
