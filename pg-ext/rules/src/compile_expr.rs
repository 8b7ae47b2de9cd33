//! sqlparser expressions → ferry's [`Expr`] and [`Filter`], by allow-list.
//!
//! Holds [`ExprCompiler`], which walks one expression of a query and classifies what it reads
//! ([`Clause`]): nothing (a constant), the source row, the request, a bucket parameter, or a match
//! between row and parameter values. Those classes decide what is allowed where (PROTOCOL.md §1.5):
//! row and request values may only meet through `=`, `IN` and `&&`, bucket parameters only as
//! `row_value = bucket.x` / `bucket.x IN row_array`, and anything not on the allow-list — unknown
//! functions or operators, subqueries, `CASE`, … — is an [`Issue`] with a hint. The query-level
//! rules (which clauses a SELECT may have, coverage of bucket parameters) are in
//! [`compile_data`](crate::compile_data) and [`compile_parameter`](crate::compile_parameter).

use sqlparser::ast::{
    BinaryOperator, CastKind, DuplicateTreatment, Expr as SqlExpr, Function as SqlFunction,
    FunctionArg, FunctionArgExpr, FunctionArguments, Ident, InTarget, ObjectName, UnaryOperator,
    Value as SqlValue,
};
use sqlparser::tokenizer::Span;

use crate::cast::CastType;
use crate::expr::{eval, EvalScope, Expr, RequestValue};
use crate::filter::Filter;
use crate::functions::{Function, FunctionOptions};
use crate::limits::{MAX_EXPRESSION_DEPTH, MAX_QUERY_TOKENS};
use crate::operators::{BinaryOp, UnaryOp};
use crate::plan::{Input, InputKind};
use crate::value::Value;

/// A problem in one query, located inside the query text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub hint: Option<String>,
    /// 1-based line and column inside the query, when known.
    pub location: Option<(u64, u64)>,
}

impl From<crate::sql_parse::SqlSyntaxError> for Issue {
    fn from(e: crate::sql_parse::SqlSyntaxError) -> Self {
        Issue {
            message: e.message,
            hint: e.hint,
            location: e.location,
        }
    }
}

/// What kind of query an expression belongs to; decides which names mean what.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// A data query over one table.
    Data {
        /// Names the table can be referred to by (its alias, or its name).
        table: String,
        /// The definition's bucket parameters, or `None` if unknown (the parameter queries failed
        /// to compile; then any `bucket.x` is accepted and not checked).
        bucket_parameters: Option<Vec<String>>,
    },
    /// A parameter query over one table.
    ParameterTable {
        /// The table's name.
        table: String,
    },
    /// A parameter query without `FROM`.
    ParameterStatic,
    /// A parameter query over `json_each(…)`.
    ParameterJsonEach {
        /// The name its columns can be qualified with.
        alias: String,
    },
}

impl Mode {
    fn is_parameter(&self) -> bool {
        !matches!(self, Mode::Data { .. })
    }
}

/// What a compiled expression reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Clause {
    /// Nothing: a constant expression.
    Static(Expr),
    /// The source row.
    Row(Expr),
    /// The request (and, in `json_each` queries, the element).
    Request(Expr),
    /// A bucket parameter, by index (data queries only).
    Bucket(usize),
    /// A condition matching row values against parameter values.
    Filter(Filter),
}

/// The hint for every misuse of bucket parameters in expressions.
const BUCKET_HINT: &str =
    "bucket parameters can only be matched against row values: `table.col = bucket.x` or `bucket.x IN table.json_array_col`";

/// Supported operators, for hints.
const OPERATORS: &str =
    "supported operators are = != < > <= >= + - * / || AND OR NOT IS NULL IS NOT NULL IN && -> ->> and CAST";

/// The 1-based location a span starts at, if it has one.
pub(crate) fn span_start(span: Span) -> Option<(u64, u64)> {
    (span.start.line > 0).then_some((span.start.line, span.start.column))
}

/// Where an expression starts: found by walking down its leftmost operands (iteratively, so that
/// deep trees cost no stack).
pub(crate) fn first_location(expr: &SqlExpr) -> Option<(u64, u64)> {
    let mut current = expr;
    for _ in 0..=MAX_QUERY_TOKENS {
        current = match current {
            SqlExpr::Identifier(ident) => return span_start(ident.span),
            SqlExpr::CompoundIdentifier(idents) => {
                return idents.first().and_then(|i| span_start(i.span))
            }
            SqlExpr::Value(v) => return span_start(v.span),
            SqlExpr::Function(f) => return object_name_location(&f.name),
            SqlExpr::Case { case_token, .. } => return span_start(case_token.0.span),
            SqlExpr::BinaryOp { left, .. } => left,
            SqlExpr::UnaryOp { expr, .. }
            | SqlExpr::Nested(expr)
            | SqlExpr::IsNull(expr)
            | SqlExpr::IsNotNull(expr)
            | SqlExpr::IsTrue(expr)
            | SqlExpr::IsFalse(expr)
            | SqlExpr::IsNotTrue(expr)
            | SqlExpr::IsNotFalse(expr)
            | SqlExpr::IsUnknown(expr)
            | SqlExpr::IsNotUnknown(expr)
            | SqlExpr::IsDistinctFrom(expr, _)
            | SqlExpr::IsNotDistinctFrom(expr, _)
            | SqlExpr::Cast { expr, .. }
            | SqlExpr::In { expr, .. }
            | SqlExpr::Between { expr, .. }
            | SqlExpr::Like { expr, .. }
            | SqlExpr::ILike { expr, .. }
            | SqlExpr::SimilarTo { expr, .. }
            | SqlExpr::RLike { expr, .. }
            | SqlExpr::Collate { expr, .. }
            | SqlExpr::Substring { expr, .. } => expr,
            SqlExpr::AnyOp { left, .. } | SqlExpr::AllOp { left, .. } => left,
            SqlExpr::CompoundFieldAccess { root, .. } => root,
            _ => return None,
        };
    }
    None
}

/// Where an object name starts.
pub(crate) fn object_name_location(name: &ObjectName) -> Option<(u64, u64)> {
    name.0
        .first()
        .and_then(|p| p.as_ident())
        .and_then(|i| span_start(i.span))
}

/// An identifier as sync rules see it: unquoted ones lowercased, quoted ones kept.
pub(crate) fn ident_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// A warning for an unquoted identifier with capitals, which is read in lower case (PowerSync
/// warns the same way).
pub(crate) fn case_warning(ident: &Ident) -> Option<Issue> {
    if ident.quote_style.is_some() || ident.value.to_lowercase() == ident.value {
        return None;
    }
    Some(Issue {
        message: format!(
            "unquoted identifier {} is read as '{}'",
            ident.value,
            ident.value.to_lowercase()
        ),
        hint: Some(format!("write \"{}\" to keep the capitals", ident.value)),
        location: span_start(ident.span),
    })
}

/// A short name for an unsupported kind of expression, with a hint.
fn unsupported(expr: &SqlExpr) -> (String, Option<&'static str>) {
    let (what, hint): (&str, Option<&'static str>) = match expr {
        SqlExpr::Case { .. } => (
            "CASE expressions are",
            Some("use iif(condition, then, else)"),
        ),
        SqlExpr::Between { .. } => ("BETWEEN is", Some("write `x >= low AND x <= high`")),
        SqlExpr::Like { .. }
        | SqlExpr::ILike { .. }
        | SqlExpr::SimilarTo { .. }
        | SqlExpr::RLike { .. } => (
            "pattern matching (LIKE, ILIKE, SIMILAR TO) is",
            Some("compare with = or use instr()"),
        ),
        SqlExpr::Exists { .. } | SqlExpr::Subquery(_) => (
            "subqueries are",
            Some("use a parameter query to look up related ids"),
        ),
        SqlExpr::IsTrue(_)
        | SqlExpr::IsFalse(_)
        | SqlExpr::IsNotTrue(_)
        | SqlExpr::IsNotFalse(_) => (
            "IS TRUE / IS FALSE is",
            Some("use the condition itself, or NOT"),
        ),
        SqlExpr::IsUnknown(_) | SqlExpr::IsNotUnknown(_) => ("IS UNKNOWN is", Some("use IS NULL")),
        SqlExpr::IsDistinctFrom(..) | SqlExpr::IsNotDistinctFrom(..) => (
            "IS [NOT] DISTINCT FROM is",
            Some("use = together with IS NULL"),
        ),
        SqlExpr::Tuple(_) => ("row values like (a, b) are", None),
        SqlExpr::Array(_) => (
            "ARRAY[...] is",
            Some("write a JSON array as text, e.g. '[1, 2]'"),
        ),
        SqlExpr::AnyOp { .. } | SqlExpr::AllOp { .. } => {
            ("ANY / ALL is", Some("use IN with a JSON array"))
        }
        SqlExpr::CompoundFieldAccess { .. } | SqlExpr::JsonAccess { .. } => (
            "subscripts and field access are",
            Some("use ->, ->> or json_extract()"),
        ),
        SqlExpr::TypedString(_) => (
            "typed literals like DATE '…' are",
            Some("write a plain string literal"),
        ),
        SqlExpr::Interval(_) => (
            "INTERVAL is",
            Some("use datetime() with a modifier, e.g. datetime(x, '+1 day')"),
        ),
        SqlExpr::Extract { .. } => ("EXTRACT is", Some("use datetime() or unixepoch()")),
        SqlExpr::Ceil { .. } | SqlExpr::Floor { .. } => {
            ("CEIL / FLOOR are", Some("use CAST(x AS integer)"))
        }
        SqlExpr::Position { .. } => ("POSITION is", Some("use instr(haystack, needle)")),
        SqlExpr::Trim { .. } | SqlExpr::Overlay { .. } => ("TRIM / OVERLAY are", None),
        SqlExpr::Collate { .. } => ("COLLATE is", None),
        SqlExpr::AtTimeZone { .. } => (
            "AT TIME ZONE is",
            Some("timestamps are compared as UTC text"),
        ),
        SqlExpr::Wildcard(_) | SqlExpr::QualifiedWildcard(..) => ("* is", Some("name the columns")),
        SqlExpr::Convert { .. } => ("CONVERT is", Some("use CAST(x AS type)")),
        _ => ("this kind of expression is", None),
    };
    (format!("{what} not supported in sync rules"), hint)
}

/// Compiles the expressions of one query.
#[derive(Debug)]
pub(crate) struct ExprCompiler<'q> {
    /// What the query is.
    pub mode: Mode,
    /// Problems found so far.
    pub issues: Vec<Issue>,
    /// Warnings found so far (unquoted identifiers with capitals).
    pub warnings: Vec<Issue>,
    /// Request-side lookup values (table parameter queries).
    pub inputs: Vec<Input>,
    /// The query reads the JWT (`request.user_id()`, `request.jwt()`, `token_parameters`).
    pub uses_authenticated: bool,
    /// The query reads client parameters (`request.parameters()`, `request.parameter()`,
    /// `user_parameters`).
    pub uses_unauthenticated: bool,
    options: FunctionOptions,
    sql: &'q str,
}

impl<'q> ExprCompiler<'q> {
    /// A compiler for the query `sql`.
    pub fn new(mode: Mode, sql: &'q str, options: FunctionOptions) -> Self {
        ExprCompiler {
            mode,
            issues: Vec::new(),
            warnings: Vec::new(),
            inputs: Vec::new(),
            uses_authenticated: false,
            uses_unauthenticated: false,
            options,
            sql,
        }
    }

    /// Records a problem.
    pub fn issue(
        &mut self,
        message: impl Into<String>,
        hint: Option<&str>,
        location: Option<(u64, u64)>,
    ) {
        self.issues.push(Issue {
            message: message.into(),
            hint: hint.map(str::to_owned),
            location,
        });
    }

    /// Compiles `expr`; `None` if it has problems (recorded in [`issues`](Self::issues)).
    pub fn compile(&mut self, expr: &SqlExpr) -> Option<Clause> {
        self.expr(expr, 0)
    }

    fn input(&mut self, expr: Expr, kind: InputKind) -> usize {
        if let Some(i) = self
            .inputs
            .iter()
            .position(|i| i.expr == expr && i.kind == kind)
        {
            return i;
        }
        self.inputs.push(Input { expr, kind });
        self.inputs.len() - 1
    }

    fn expr(&mut self, expr: &SqlExpr, depth: usize) -> Option<Clause> {
        if depth > MAX_EXPRESSION_DEPTH {
            self.issue(
                format!("expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep"),
                Some("split it into simpler expressions"),
                None,
            );
            return None;
        }
        let at = first_location(expr);
        match expr {
            SqlExpr::Identifier(ident) => self.column(None, ident),
            SqlExpr::CompoundIdentifier(idents) => match idents.as_slice() {
                [qualifier, column] => self.column(Some(qualifier), column),
                _ => {
                    self.issue(
                        "schema-qualified column references are not supported",
                        Some("write `table.column` or just `column`"),
                        at,
                    );
                    None
                }
            },
            SqlExpr::Value(v) => self
                .literal(&v.value, false, at)
                .map(|v| Clause::Static(Expr::Literal(v))),
            // Parentheses add no level to the compiled tree (sqlparser bounds their nesting).
            SqlExpr::Nested(inner) => self.expr(inner, depth),
            SqlExpr::UnaryOp { op, expr: inner } => {
                if *op == UnaryOperator::Minus {
                    if let SqlExpr::Value(
                        v @ sqlparser::ast::ValueWithSpan {
                            value: SqlValue::Number(..),
                            ..
                        },
                    ) = inner.as_ref()
                    {
                        return self
                            .literal(&v.value, true, at)
                            .map(|v| Clause::Static(Expr::Literal(v)));
                    }
                }
                let op = match op {
                    UnaryOperator::Not => UnaryOp::Not,
                    UnaryOperator::Minus => UnaryOp::Negate,
                    UnaryOperator::Plus => UnaryOp::Plus,
                    other => {
                        self.issue(
                            format!("operator '{other}' is not supported"),
                            Some(OPERATORS),
                            at,
                        );
                        return None;
                    }
                };
                let operand = self.expr(inner, depth + 1)?;
                self.compose(vec![operand], at, |mut args| {
                    Expr::Unary(op, Box::new(args.remove(0)))
                })
            }
            SqlExpr::IsNull(inner) | SqlExpr::IsNotNull(inner) => {
                let op = if matches!(expr, SqlExpr::IsNull(_)) {
                    UnaryOp::IsNull
                } else {
                    UnaryOp::IsNotNull
                };
                let operand = self.expr(inner, depth + 1)?;
                self.compose(vec![operand], at, |mut args| {
                    Expr::Unary(op, Box::new(args.remove(0)))
                })
            }
            SqlExpr::BinaryOp { left, op, right } => self.binary(left, op, right, depth, at),
            SqlExpr::In {
                expr: left,
                target,
                negated,
                global: _,
            } => self.in_expr(left, target, *negated, depth, at),
            SqlExpr::Cast {
                kind,
                expr: inner,
                data_type,
                format,
            } => {
                if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) || format.is_some() {
                    self.issue(
                        "only CAST(x AS type) and x::type are supported",
                        Some("write CAST(x AS text)"),
                        at,
                    );
                    return None;
                }
                let type_name = data_type.to_string().to_lowercase();
                let Some(to) = CastType::from_name(&type_name) else {
                    self.issue(
                        format!("CAST to '{type_name}' is not supported"),
                        Some("cast to text, numeric, integer, real or blob"),
                        at,
                    );
                    return None;
                };
                let operand = self.expr(inner, depth + 1)?;
                self.compose(vec![operand], at, |mut args| {
                    Expr::Cast(Box::new(args.remove(0)), to)
                })
            }
            SqlExpr::Function(function) => self.function(function, depth, at),
            SqlExpr::Substring {
                expr: inner,
                substring_from,
                substring_for,
                ..
            } => {
                let Some(from) = substring_from else {
                    self.issue(
                        "substring() needs a start position",
                        Some("write substring(text, start[, length])"),
                        at,
                    );
                    return None;
                };
                let mut args = vec![self.expr(inner, depth + 1)?, self.expr(from, depth + 1)?];
                if let Some(length) = substring_for {
                    args.push(self.expr(length, depth + 1)?);
                }
                self.compose(args, at, |args| Expr::Call(Function::Substring, args))
            }
            other => {
                let (message, hint) = unsupported(other);
                self.issue(message, hint, at);
                None
            }
        }
    }

    fn literal(&mut self, value: &SqlValue, negate: bool, at: Option<(u64, u64)>) -> Option<Value> {
        let value = match value {
            SqlValue::Number(text, _) => {
                let integral = !text.contains(['.', 'e', 'E']);
                match text.parse::<i64>() {
                    Ok(i) if integral => Value::Integer(if negate { i.wrapping_neg() } else { i }),
                    _ if integral && negate && text == "9223372036854775808" => {
                        Value::Integer(i64::MIN)
                    }
                    _ => {
                        let r = text.parse::<f64>().unwrap_or(f64::INFINITY);
                        if !r.is_finite() {
                            self.issue(
                                "number is out of range",
                                Some("use a number between -1.7e308 and 1.7e308"),
                                at,
                            );
                            return None;
                        }
                        Value::Real(if negate { -r } else { r })
                    }
                }
            }
            SqlValue::Boolean(b) => Value::Integer(i64::from(*b)),
            SqlValue::Null => Value::Null,
            SqlValue::SingleQuotedString(s)
            | SqlValue::EscapedStringLiteral(s)
            | SqlValue::UnicodeStringLiteral(s)
            | SqlValue::NationalStringLiteral(s) => Value::Text(s.clone()),
            SqlValue::DollarQuotedString(d) => Value::Text(d.value.clone()),
            SqlValue::Placeholder(p) => {
                self.issue(
                    format!("placeholder '{p}' is not supported"),
                    Some("use request.parameter('name') for values sent by the client"),
                    at,
                );
                return None;
            }
            _ => {
                self.issue(
                    "this kind of literal is not supported",
                    Some("use a string or a number"),
                    at,
                );
                return None;
            }
        };
        Some(value)
    }

    /// A column reference, `qualifier.column` or `column`.
    fn column(&mut self, qualifier: Option<&Ident>, column: &Ident) -> Option<Clause> {
        let at = span_start(qualifier.map_or(column.span, |q| q.span));
        for ident in qualifier.into_iter().chain([column]) {
            if let Some(warning) = case_warning(ident) {
                if !self.warnings.contains(&warning) {
                    self.warnings.push(warning);
                }
            }
        }
        let name = ident_name(column);
        let Some(qualifier) = qualifier else {
            return match &self.mode {
                Mode::Data { .. } | Mode::ParameterTable { .. } => {
                    Some(Clause::Row(Expr::Column(name)))
                }
                Mode::ParameterJsonEach { .. } => self.element_column(&name, at),
                Mode::ParameterStatic => {
                    self.issue(
                        format!("unknown column '{name}': this query has no FROM table"),
                        Some("use request.user_id(), request.jwt() ->> 'claim' or request.parameter('name')"),
                        at,
                    );
                    None
                }
            };
        };
        let qualifier_name = ident_name(qualifier);
        match qualifier_name.as_str() {
            "bucket" if qualifier.quote_style.is_none() => return self.bucket_parameter(&name, at),
            "token_parameters" | "user_parameters" if qualifier.quote_style.is_none() => {
                if !self.mode.is_parameter() {
                    self.issue(
                        format!("{qualifier_name}.{name} cannot be used in a data query"),
                        Some("data queries filter on bucket parameters (`bucket.<name>`); read request values in the definition's parameter queries"),
                        at,
                    );
                    return None;
                }
                let value = if qualifier_name == "token_parameters" {
                    self.uses_authenticated = true;
                    RequestValue::TokenParameter(name)
                } else {
                    self.uses_unauthenticated = true;
                    RequestValue::UserParameter(name)
                };
                return Some(Clause::Request(Expr::Request(value)));
            }
            _ => {}
        }
        match &self.mode {
            Mode::Data { table, .. } | Mode::ParameterTable { table }
                if *table == qualifier_name =>
            {
                Some(Clause::Row(Expr::Column(name)))
            }
            Mode::ParameterJsonEach { alias } if *alias == qualifier_name => {
                self.element_column(&name, at)
            }
            Mode::Data { table, .. } | Mode::ParameterTable { table } => {
                let table = table.clone();
                self.issue(
                    format!("unknown table '{qualifier_name}' in '{qualifier_name}.{name}'"),
                    Some(&format!("this query reads only '{table}'; refer to its columns as `{table}.{name}` or `{name}`")),
                    at,
                );
                None
            }
            Mode::ParameterJsonEach { alias } => {
                let alias = alias.clone();
                self.issue(
                    format!("unknown table '{qualifier_name}' in '{qualifier_name}.{name}'"),
                    Some(&format!(
                        "the columns of json_each are `{alias}.value` and `{alias}.key`"
                    )),
                    at,
                );
                None
            }
            Mode::ParameterStatic => {
                self.issue(
                    format!("unknown table '{qualifier_name}': this query has no FROM table"),
                    Some("use request.user_id(), request.jwt() ->> 'claim' or request.parameter('name')"),
                    at,
                );
                None
            }
        }
    }

    fn element_column(&mut self, name: &str, at: Option<(u64, u64)>) -> Option<Clause> {
        match name {
            "value" => Some(Clause::Request(Expr::ElementValue)),
            "key" => Some(Clause::Request(Expr::ElementKey)),
            _ => {
                self.issue(
                    format!("unknown column '{name}' of json_each"),
                    Some("json_each has the columns `value` and `key`"),
                    at,
                );
                None
            }
        }
    }

    fn bucket_parameter(&mut self, name: &str, at: Option<(u64, u64)>) -> Option<Clause> {
        let Mode::Data {
            bucket_parameters, ..
        } = &self.mode
        else {
            self.issue(
                format!("bucket.{name} cannot be used in a parameter query"),
                Some("parameter queries define the bucket parameters: output them as columns, e.g. `SELECT request.user_id() AS user_id`"),
                at,
            );
            return None;
        };
        match bucket_parameters {
            None => Some(Clause::Bucket(0)),
            Some(params) => match params.iter().position(|p| p == name) {
                Some(i) => Some(Clause::Bucket(i)),
                None => {
                    let known = if params.is_empty() {
                        "this definition has no bucket parameters".to_owned()
                    } else {
                        format!(
                            "the bucket parameters are {}",
                            params
                                .iter()
                                .map(|p| format!("bucket.{p}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    self.issue(
                        format!("unknown bucket parameter 'bucket.{name}'"),
                        Some(&format!(
                            "{known} (the output columns of the parameter queries)"
                        )),
                        at,
                    );
                    None
                }
            },
        }
    }

    /// Combines operands with a plain operator or function: constants, row values and request
    /// values combine with their own kind (and constants); bucket parameters and matches do not.
    fn compose(
        &mut self,
        parts: Vec<Clause>,
        at: Option<(u64, u64)>,
        build: impl FnOnce(Vec<Expr>) -> Expr,
    ) -> Option<Clause> {
        #[derive(PartialEq)]
        enum Kind {
            Static,
            Row,
            Request,
        }
        let mut kind = Kind::Static;
        let mut exprs = Vec::with_capacity(parts.len());
        for part in parts {
            let (k, e) = match part {
                Clause::Static(e) => (Kind::Static, e),
                Clause::Row(e) => (Kind::Row, e),
                Clause::Request(e) => (Kind::Request, e),
                Clause::Bucket(_) => {
                    self.issue(
                        "bucket parameters cannot be used in expressions",
                        Some(BUCKET_HINT),
                        at,
                    );
                    return None;
                }
                Clause::Filter(_) => {
                    self.issue(
                        "a comparison between row and parameter values cannot be used inside another expression",
                        Some("use such comparisons directly in WHERE, combined with AND / OR"),
                        at,
                    );
                    return None;
                }
            };
            match (&kind, &k) {
                (_, Kind::Static) => {}
                (Kind::Static, _) => kind = k,
                (Kind::Row, Kind::Row) | (Kind::Request, Kind::Request) => {}
                _ => {
                    self.issue(
                        "row values and request values cannot be combined in one expression",
                        Some("compare them directly: `table.col = request.user_id()` or `request_value IN table.json_array_col`"),
                        at,
                    );
                    return None;
                }
            }
            exprs.push(e);
        }
        let expr = build(exprs);
        Some(match kind {
            Kind::Static => Clause::Static(self.fold(expr, at)?),
            Kind::Row => Clause::Row(expr),
            Kind::Request => Clause::Request(expr),
        })
    }

    /// Evaluates a constant expression once.
    fn fold(&mut self, expr: Expr, at: Option<(u64, u64)>) -> Option<Expr> {
        let scope = EvalScope {
            options: self.options,
            ..EvalScope::default()
        };
        match eval(&expr, &scope) {
            Ok(value) => match value.as_ref() {
                Value::Real(r) if !r.is_finite() => Some(expr),
                v => Some(Expr::Literal(v.clone())),
            },
            Err(e) => {
                self.issue(
                    format!("this constant expression always fails: {e}"),
                    None,
                    at,
                );
                None
            }
        }
    }

    fn binary(
        &mut self,
        left: &SqlExpr,
        op: &BinaryOperator,
        right: &SqlExpr,
        depth: usize,
        at: Option<(u64, u64)>,
    ) -> Option<Clause> {
        let op = match op {
            BinaryOperator::And => BinaryOp::And,
            BinaryOperator::Or => BinaryOp::Or,
            BinaryOperator::Eq => BinaryOp::Eq,
            BinaryOperator::NotEq => BinaryOp::Ne,
            BinaryOperator::Lt => BinaryOp::Lt,
            BinaryOperator::LtEq => BinaryOp::Le,
            BinaryOperator::Gt => BinaryOp::Gt,
            BinaryOperator::GtEq => BinaryOp::Ge,
            BinaryOperator::Plus => BinaryOp::Add,
            BinaryOperator::Minus => BinaryOp::Sub,
            BinaryOperator::Multiply => BinaryOp::Mul,
            BinaryOperator::Divide => BinaryOp::Div,
            BinaryOperator::StringConcat => BinaryOp::Concat,
            BinaryOperator::Arrow => BinaryOp::JsonArrow,
            BinaryOperator::LongArrow => BinaryOp::JsonArrow2,
            BinaryOperator::PGOverlap => BinaryOp::Overlap,
            other => {
                self.issue(
                    format!("operator '{other}' is not supported"),
                    Some(OPERATORS),
                    at,
                );
                return None;
            }
        };
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            // `a AND b AND c …` is one n-ary node, however long: no nesting, no recursion.
            let operands = chain_operands(left, right, op);
            let mut clauses = Vec::with_capacity(operands.len());
            let mut failed = false;
            for operand in operands {
                match self.expr(operand, depth + 1) {
                    Some(c) => clauses.push(c),
                    None => failed = true,
                }
            }
            if failed {
                return None;
            }
            return self.logical(op, clauses, at);
        }
        // Compile both sides even if the first fails, so both report their problems.
        let l = self.expr(left, depth + 1);
        let r = self.expr(right, depth + 1);
        let (l, r) = (l?, r?);
        match op {
            BinaryOp::Eq => self.equals(l, r, at),
            BinaryOp::Overlap => self.overlap(l, r, at),
            _ => self.plain_binary(op, l, r, at),
        }
    }

    /// A binary operator over operands of one kind (see [`compose`](Self::compose)).
    fn plain_binary(
        &mut self,
        op: BinaryOp,
        l: Clause,
        r: Clause,
        at: Option<(u64, u64)>,
    ) -> Option<Clause> {
        self.compose(vec![l, r], at, |mut args| {
            let b = args.pop().unwrap_or(Expr::Literal(Value::Null));
            let a = args.pop().unwrap_or(Expr::Literal(Value::Null));
            Expr::binary(op, a, b)
        })
    }

    /// `AND` / `OR` over `operands`: a plain expression when all are of one kind (row or
    /// request, with constants), else a match filter.
    fn logical(
        &mut self,
        op: BinaryOp,
        operands: Vec<Clause>,
        at: Option<(u64, u64)>,
    ) -> Option<Clause> {
        let rowish = operands
            .iter()
            .all(|c| matches!(c, Clause::Static(_) | Clause::Row(_)));
        let requestish = operands
            .iter()
            .all(|c| matches!(c, Clause::Static(_) | Clause::Request(_)));
        let in_static_query = matches!(
            self.mode,
            Mode::ParameterStatic | Mode::ParameterJsonEach { .. }
        );
        if rowish || requestish || in_static_query {
            return self.compose(operands, at, |args| {
                if op == BinaryOp::And {
                    Expr::All(args)
                } else {
                    Expr::Any(args)
                }
            });
        }
        let mut parts = Vec::with_capacity(operands.len());
        for operand in operands {
            match (op, self.condition_filter(operand, at)?) {
                (BinaryOp::And, Filter::And(inner)) | (BinaryOp::Or, Filter::Or(inner)) => {
                    parts.extend(inner)
                }
                (_, other) => parts.push(other),
            }
        }
        Some(Clause::Filter(if op == BinaryOp::And {
            Filter::And(parts)
        } else {
            Filter::Or(parts)
        }))
    }

    /// A clause used as a condition in a match filter.
    pub fn condition_filter(&mut self, clause: Clause, at: Option<(u64, u64)>) -> Option<Filter> {
        match clause {
            Clause::Static(e) | Clause::Row(e) => Some(Filter::Condition(e)),
            Clause::Request(e) => Some(Filter::IsTrue {
                input: self.input(e, InputKind::Boolean),
            }),
            Clause::Filter(f) => Some(f),
            Clause::Bucket(_) => {
                self.issue(
                    "a bucket parameter cannot be used as a condition on its own",
                    Some(BUCKET_HINT),
                    at,
                );
                None
            }
        }
    }

    fn equals(&mut self, l: Clause, r: Clause, at: Option<(u64, u64)>) -> Option<Clause> {
        match (l, r) {
            (Clause::Bucket(_), Clause::Bucket(_)) => {
                self.issue(
                    "bucket parameters cannot be on both sides of =",
                    Some(BUCKET_HINT),
                    at,
                );
                None
            }
            (Clause::Bucket(input), Clause::Row(value) | Clause::Static(value))
            | (Clause::Row(value) | Clause::Static(value), Clause::Bucket(input)) => {
                Some(Clause::Filter(Filter::Equals { input, value }))
            }
            (Clause::Row(value), Clause::Request(request))
            | (Clause::Request(request), Clause::Row(value)) => {
                let input = self.input(request, InputKind::Value);
                Some(Clause::Filter(Filter::Equals { input, value }))
            }
            (l, r) => self.plain_binary(BinaryOp::Eq, l, r, at),
        }
    }

    fn overlap(&mut self, l: Clause, r: Clause, at: Option<(u64, u64)>) -> Option<Clause> {
        match (l, r) {
            (Clause::Bucket(input), Clause::Row(array) | Clause::Static(array)) => {
                Some(Clause::Filter(Filter::Elements { input, array }))
            }
            (_, Clause::Bucket(_)) => {
                self.issue(
                    "bucket parameters cannot be on the right side of &&",
                    Some("write `bucket.x && table.json_array_col`"),
                    at,
                );
                None
            }
            (Clause::Row(array), Clause::Request(request))
            | (Clause::Request(request), Clause::Row(array)) => {
                let input = self.input(request, InputKind::Expanding);
                Some(Clause::Filter(Filter::Elements { input, array }))
            }
            (l, r) => self.plain_binary(BinaryOp::Overlap, l, r, at),
        }
    }

    fn in_expr(
        &mut self,
        left: &SqlExpr,
        target: &InTarget,
        negated: bool,
        depth: usize,
        at: Option<(u64, u64)>,
    ) -> Option<Clause> {
        let right = match target {
            InTarget::List(items) if items.len() == 1 && !self.is_parenthesised(&items[0]) => {
                &items[0]
            }
            InTarget::List(_) => {
                self.issue(
                    "IN with a list of values is not supported",
                    Some("put the values in a JSON array: `x IN '[\"a\", \"b\"]'`, or use `x = 'a' OR x = 'b'`"),
                    at,
                );
                return None;
            }
            InTarget::Subquery(_) => {
                self.issue(
                    "subqueries are not supported in sync rules",
                    Some("use a parameter query to look up related ids"),
                    at,
                );
                return None;
            }
            InTarget::Unnest(_) | InTarget::Table { .. } => {
                self.issue(
                    "this form of IN is not supported",
                    Some("write `x IN json_array_value`"),
                    at,
                );
                return None;
            }
        };
        let l = self.expr(left, depth + 1);
        let r = self.expr(right, depth + 1);
        let (l, r) = (l?, r?);
        let result = match (l, r) {
            (Clause::Bucket(input), Clause::Row(array) | Clause::Static(array)) => {
                Clause::Filter(Filter::Elements { input, array })
            }
            (_, Clause::Bucket(_)) => {
                self.issue(
                    "bucket parameters cannot be on the right side of IN",
                    Some("write `bucket.x IN table.json_array_col`"),
                    at,
                );
                return None;
            }
            (Clause::Request(request), Clause::Row(array)) => {
                let input = self.input(request, InputKind::Value);
                Clause::Filter(Filter::Elements { input, array })
            }
            (Clause::Row(value), Clause::Request(request)) => {
                let input = self.input(request, InputKind::Expanding);
                Clause::Filter(Filter::Equals { input, value })
            }
            (l, r) => self.plain_binary(BinaryOp::In, l, r, at)?,
        };
        if !negated {
            return Some(result);
        }
        if matches!(result, Clause::Filter(_)) {
            self.issue(
                "NOT IN cannot match parameter values",
                Some("only `IN` can match a bucket parameter or request value against a row"),
                at,
            );
            return None;
        }
        self.compose(vec![result], at, |mut args| {
            Expr::Unary(UnaryOp::Not, Box::new(args.remove(0)))
        })
    }

    /// True if the `IN` operand `item` was written inside parentheses (`x IN (a)`, a list) rather
    /// than bare (`x IN t.col`, a JSON array).
    fn is_parenthesised(&self, item: &SqlExpr) -> bool {
        let Some((line, column)) = first_location(item) else {
            return true;
        };
        let Some(offset) = byte_offset(self.sql, line, column) else {
            return true;
        };
        self.sql[..offset].trim_end().ends_with('(')
    }

    fn function(
        &mut self,
        function: &SqlFunction,
        depth: usize,
        at: Option<(u64, u64)>,
    ) -> Option<Clause> {
        let parts: Vec<String> = function
            .name
            .0
            .iter()
            .map(|p| p.as_ident().map(ident_name).unwrap_or_default())
            .collect();
        let display = parts.join(".");
        if function.over.is_some()
            || function.filter.is_some()
            || function.null_treatment.is_some()
            || !function.within_group.is_empty()
            || !matches!(function.parameters, FunctionArguments::None)
            || function.uses_odbc_syntax
        {
            self.issue(
                format!("window functions, aggregates and FILTER are not supported ('{display}')"),
                None,
                at,
            );
            return None;
        }
        let args: Vec<&SqlExpr> = match &function.args {
            FunctionArguments::List(list) => {
                if list.duplicate_treatment == Some(DuplicateTreatment::Distinct)
                    || !list.clauses.is_empty()
                {
                    self.issue(
                        format!("DISTINCT and other clauses are not supported in {display}()"),
                        None,
                        at,
                    );
                    return None;
                }
                let mut args = Vec::with_capacity(list.args.len());
                for arg in &list.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                        _ => {
                            self.issue(
                                format!("named arguments and * are not supported in {display}()"),
                                Some("pass plain values"),
                                at,
                            );
                            return None;
                        }
                    }
                }
                args
            }
            FunctionArguments::None => Vec::new(),
            FunctionArguments::Subquery(_) => {
                self.issue(
                    "subqueries are not supported in sync rules",
                    Some("use a parameter query to look up related ids"),
                    at,
                );
                return None;
            }
        };
        match parts.as_slice() {
            [schema, name]
                if schema == "request"
                    && function
                        .name
                        .0
                        .first()
                        .and_then(|p| p.as_ident())
                        .is_some_and(|i| i.quote_style.is_none()) =>
            {
                self.request_function(name, &args, depth, at)
            }
            [name] => {
                if name == "json_each" {
                    self.issue(
                        "json_each() can only be used in the FROM clause of a parameter query",
                        Some("write `SELECT value AS x FROM json_each(request.jwt() -> 'ids')`"),
                        at,
                    );
                    return None;
                }
                let Some(resolved) = Function::from_name(name) else {
                    self.issue(
                        format!("unknown function '{name}'"),
                        Some(&format!(
                            "supported functions are {}",
                            Function::ALL
                                .iter()
                                .map(|f| f.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        at,
                    );
                    return None;
                };
                if !resolved.accepts(args.len()) {
                    let (min, max) = resolved.arity();
                    let expected = match max {
                        Some(max) if max == min => format!("{min}"),
                        Some(max) => format!("{min} to {max}"),
                        None => format!("at least {min}"),
                    };
                    let noun = if expected == "1" {
                        "argument"
                    } else {
                        "arguments"
                    };
                    self.issue(
                        format!("{name}() takes {expected} {noun}, got {}", args.len()),
                        None,
                        at,
                    );
                    return None;
                }
                let mut compiled = Vec::with_capacity(args.len());
                let mut failed = false;
                for arg in args {
                    match self.expr(arg, depth + 1) {
                        Some(c) => compiled.push(c),
                        None => failed = true,
                    }
                }
                if failed {
                    return None;
                }
                self.compose(compiled, at, |args| Expr::Call(resolved, args))
            }
            _ => {
                self.issue(
                    format!("unknown function '{display}'"),
                    Some("request functions are request.user_id(), request.jwt(), request.parameters() and request.parameter('name')"),
                    at,
                );
                None
            }
        }
    }

    fn request_function(
        &mut self,
        name: &str,
        args: &[&SqlExpr],
        depth: usize,
        at: Option<(u64, u64)>,
    ) -> Option<Clause> {
        if !self.mode.is_parameter() {
            self.issue(
                format!("request.{name}() cannot be used in a data query"),
                Some("data queries filter on bucket parameters (`bucket.<name>`); read request values in the definition's parameter queries"),
                at,
            );
            return None;
        }
        let expected = if name == "parameter" { 1 } else { 0 };
        let value = match name {
            "user_id" => RequestValue::UserId,
            "jwt" => RequestValue::Jwt,
            "parameters" => RequestValue::Parameters,
            "parameter" => RequestValue::Parameters,
            _ => {
                self.issue(
                    format!("unknown function 'request.{name}'"),
                    Some("request functions are request.user_id(), request.jwt(), request.parameters() and request.parameter('name')"),
                    at,
                );
                return None;
            }
        };
        if args.len() != expected {
            let noun = if expected == 1 {
                "argument"
            } else {
                "arguments"
            };
            self.issue(
                format!(
                    "request.{name}() takes {expected} {noun}, got {}",
                    args.len()
                ),
                None,
                at,
            );
            return None;
        }
        if value.is_authenticated() {
            self.uses_authenticated = true;
        } else {
            self.uses_unauthenticated = true;
        }
        if name == "parameter" {
            let key = self.expr(args[0], depth + 1)?;
            let key = match key {
                Clause::Static(e) | Clause::Request(e) => e,
                _ => {
                    self.issue(
                        "the argument of request.parameter() must not depend on a row",
                        Some("pass the parameter name as a string"),
                        at,
                    );
                    return None;
                }
            };
            return Some(Clause::Request(Expr::RequestParameter(Box::new(key))));
        }
        Some(Clause::Request(Expr::Request(value)))
    }
}

/// The operands of a chain of one logical operator, in order: `a AND b AND c` → `[a, b, c]`.
/// Walks the (left-deep) chain iteratively; parentheses end it.
fn chain_operands<'e>(left: &'e SqlExpr, right: &'e SqlExpr, op: BinaryOp) -> Vec<&'e SqlExpr> {
    let sql_op = if op == BinaryOp::And {
        BinaryOperator::And
    } else {
        BinaryOperator::Or
    };
    let mut reversed = Vec::new();
    let mut stack = vec![right, left];
    while let Some(e) = stack.pop() {
        match e {
            SqlExpr::BinaryOp { left, op, right } if *op == sql_op => {
                stack.push(right);
                stack.push(left);
            }
            other => reversed.push(other),
        }
    }
    reversed
}

/// Byte offset of the 1-based `line`/`column` (in characters) in `text`.
pub(crate) fn byte_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    let mut current_line = 1u64;
    let mut current_column = 1u64;
    for (offset, c) in text.char_indices() {
        if current_line == line && current_column == column {
            return Some(offset);
        }
        if c == '\n' {
            current_line += 1;
            current_column = 1;
        } else {
            current_column += 1;
        }
    }
    (current_line == line && current_column == column).then_some(text.len())
}
