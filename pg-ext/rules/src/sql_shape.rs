//! The allowed shape of a sync rules query: one plain `SELECT … FROM <one table or json_each> WHERE …`.
//!
//! Holds [`select_of`] (refuses every clause outside the allow-list — `WITH`, `ORDER BY`, `LIMIT`,
//! `GROUP BY`, `DISTINCT`, set operations, …) and [`from_of`] (refuses joins, subqueries and more
//! than one table), each problem as an [`Issue`] with a hint. Expressions are checked in
//! [`compile_expr`](crate::compile_expr).

use sqlparser::ast::{
    Distinct, FunctionArg, GroupByExpr, Ident, LimitClause, ObjectName, Query, Select,
    SelectFlavor, SetExpr, TableFactor,
};

use crate::compile_expr::{case_warning, first_location, ident_name, object_name_location, Issue};
use crate::table_ref::{TableRef, DEFAULT_SCHEMA};

const JOIN_HINT: &str = "use a parameter query to look up related ids";

fn issue(issues: &mut Vec<Issue>, message: &str, hint: Option<&str>, location: Option<(u64, u64)>) {
    issues.push(Issue {
        message: message.to_owned(),
        hint: hint.map(str::to_owned),
        location,
    });
}

/// The `SELECT` of a query, if the query has only allowed clauses; problems are pushed to `issues`
/// (all of them, not just the first).
pub(crate) fn select_of<'a>(query: &'a Query, issues: &mut Vec<Issue>) -> Option<&'a Select> {
    let before = issues.len();
    if query.with.is_some() {
        issue(
            issues,
            "WITH (common table expressions) is not supported",
            Some("it needs config edition 3 (Sync Streams), which ferry does not support yet; inline the query"),
            None,
        );
    }
    if query.order_by.is_some() {
        issue(
            issues,
            "ORDER BY is not supported in sync rules",
            Some("every matching row is synced; sort in the client's queries instead"),
            None,
        );
    }
    if let Some(limit) = &query.limit_clause {
        let location = match limit {
            LimitClause::LimitOffset { limit: Some(e), .. } => first_location(e),
            LimitClause::OffsetCommaLimit { limit, .. } => first_location(limit),
            _ => None,
        };
        issue(
            issues,
            "LIMIT and OFFSET are not supported in sync rules",
            Some("every matching row is synced; narrow the rows with WHERE instead"),
            location,
        );
    }
    if query.fetch.is_some() {
        issue(
            issues,
            "FETCH is not supported in sync rules",
            Some("narrow the rows with WHERE instead"),
            None,
        );
    }
    if !query.locks.is_empty() {
        issue(
            issues,
            "FOR UPDATE / FOR SHARE is not supported in sync rules",
            Some("remove it"),
            None,
        );
    }
    if query.for_clause.is_some()
        || query.settings.is_some()
        || query.format_clause.is_some()
        || !query.pipe_operators.is_empty()
    {
        issue(
            issues,
            "this query clause is not supported in sync rules",
            Some("remove it"),
            None,
        );
    }
    let select = match query.body.as_ref() {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { .. } => {
            issue(
                issues,
                "UNION, INTERSECT and EXCEPT are not supported in sync rules",
                Some("write each query as its own list entry"),
                None,
            );
            return None;
        }
        SetExpr::Query(_) => {
            issue(
                issues,
                "a parenthesised query is not supported",
                Some("remove the parentheses"),
                None,
            );
            return None;
        }
        SetExpr::Values(_) => {
            issue(
                issues,
                "VALUES is not supported in sync rules",
                Some("write a SELECT query"),
                None,
            );
            return None;
        }
        _ => {
            issue(
                issues,
                "only SELECT queries are allowed",
                Some("sync rules queries are SELECT statements"),
                None,
            );
            return None;
        }
    };
    let at = crate::compile_expr::span_start(select.select_token.0.span);
    match &select.distinct {
        None | Some(Distinct::All) => {}
        Some(_) => issue(
            issues,
            "DISTINCT is not supported in sync rules",
            Some("each source row is synced once per bucket anyway; remove DISTINCT"),
            at,
        ),
    }
    match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if exprs.is_empty() && modifiers.is_empty() => {}
        GroupByExpr::Expressions(exprs, _) => issue(
            issues,
            "GROUP BY is not supported in sync rules",
            Some("sync rules cannot aggregate; each source row is synced on its own"),
            exprs.first().and_then(first_location),
        ),
        GroupByExpr::All(_) => issue(
            issues,
            "GROUP BY is not supported in sync rules",
            Some("sync rules cannot aggregate; each source row is synced on its own"),
            at,
        ),
    }
    if let Some(having) = &select.having {
        issue(
            issues,
            "HAVING is not supported in sync rules",
            Some("sync rules cannot aggregate; use WHERE"),
            first_location(having),
        );
    }
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.value_table_mode.is_some()
        || select.exclude.is_some()
        || select.select_modifiers.is_some()
        || !select.optimizer_hints.is_empty()
        || select.flavor != SelectFlavor::Standard
    {
        issue(
            issues,
            "this SELECT clause is not supported in sync rules",
            Some("use only SELECT <columns> FROM <table> WHERE <condition>"),
            at,
        );
    }
    (issues.len() == before).then_some(select)
}

/// The `FROM` of an allowed query.
#[derive(Debug)]
pub(crate) enum From<'a> {
    /// No `FROM`.
    Nothing,
    /// One table, with its alias.
    Table {
        /// Where the name is.
        location: Option<(u64, u64)>,
        /// The table.
        table: TableRef,
        /// `AS alias`.
        alias: Option<String>,
    },
    /// A table-valued function call.
    Function {
        /// Where the name is.
        location: Option<(u64, u64)>,
        /// Its name (normalised).
        name: String,
        /// Its arguments.
        args: &'a [FunctionArg],
        /// `AS alias`.
        alias: Option<String>,
    },
}

/// A table name as a [`TableRef`]: `name` or `schema.name`.
fn table_ref(
    name: &ObjectName,
    issues: &mut Vec<Issue>,
    warnings: &mut Vec<Issue>,
) -> Option<TableRef> {
    let parts: Option<Vec<&Ident>> = name.0.iter().map(|p| p.as_ident()).collect();
    warnings.extend(parts.iter().flatten().filter_map(|i| case_warning(i)));
    match parts.as_deref() {
        Some([table]) => Some(TableRef::new(DEFAULT_SCHEMA, ident_name(table))),
        Some([schema, table]) => Some(TableRef::new(ident_name(schema), ident_name(table))),
        _ => {
            issue(
                issues,
                "table names can have at most a schema: `schema.table`",
                None,
                object_name_location(name),
            );
            None
        }
    }
}

/// The `FROM` clause, if it is one table, one table-valued function or nothing. Unquoted table
/// names with capitals add a warning.
pub(crate) fn from_of<'a>(
    select: &'a Select,
    issues: &mut Vec<Issue>,
    warnings: &mut Vec<Issue>,
) -> Option<From<'a>> {
    let first = match select.from.as_slice() {
        [] => return Some(From::Nothing),
        [first] => first,
        [_, second, ..] => {
            issue(
                issues,
                "joins are not supported in sync rules (FROM with several tables)",
                Some(JOIN_HINT),
                table_factor_location(&second.relation),
            );
            return None;
        }
    };
    if let Some(join) = first.joins.first() {
        issue(
            issues,
            "joins are not supported in sync rules",
            Some(JOIN_HINT),
            table_factor_location(&join.relation),
        );
        return None;
    }
    match &first.relation {
        TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_directives,
            inheritance,
        } => {
            let location = object_name_location(name);
            if !with_hints.is_empty()
                || version.is_some()
                || *with_ordinality
                || !partitions.is_empty()
                || json_path.is_some()
                || sample.is_some()
                || !index_directives.is_empty()
                || inheritance.is_some()
                || alias.as_ref().is_some_and(|a| !a.columns.is_empty())
            {
                issue(
                    issues,
                    "this table clause is not supported in sync rules",
                    Some("write FROM <table> [AS alias]"),
                    location,
                );
                return None;
            }
            let alias = alias.as_ref().map(|a| ident_name(&a.name));
            if let Some(args) = args {
                let name = name
                    .0
                    .iter()
                    .map(|p| p.as_ident().map(ident_name).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(".");
                return Some(From::Function {
                    location,
                    name,
                    args: &args.args,
                    alias,
                });
            }
            Some(From::Table {
                location,
                table: table_ref(name, issues, warnings)?,
                alias,
            })
        }
        TableFactor::Function {
            lateral: false,
            name,
            args,
            with_ordinality: false,
            alias,
        } if alias.as_ref().is_none_or(|a| a.columns.is_empty()) => Some(From::Function {
            location: object_name_location(name),
            name: name
                .0
                .iter()
                .map(|p| p.as_ident().map(ident_name).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("."),
            args,
            alias: alias.as_ref().map(|a| ident_name(&a.name)),
        }),
        TableFactor::Derived { .. } => {
            issue(
                issues,
                "subqueries are not supported in sync rules",
                Some("use a parameter query to look up related ids"),
                None,
            );
            None
        }
        other => {
            issue(
                issues,
                "this kind of FROM is not supported in sync rules",
                Some("read one table: FROM <table> [AS alias]"),
                table_factor_location(other),
            );
            None
        }
    }
}

fn table_factor_location(factor: &TableFactor) -> Option<(u64, u64)> {
    match factor {
        TableFactor::Table { name, .. } | TableFactor::Function { name, .. } => {
            object_name_location(name)
        }
        _ => None,
    }
}
