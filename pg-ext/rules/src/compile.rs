//! The entry point: a sync rules YAML document → a [`Plan`], or every error in it.
//!
//! Holds [`compile`] and [`Compiled`]. Reads the document structure ([`document`]),
//! compiles each parameter and data query ([`compile_parameter`](crate::compile_parameter),
//! [`compile_data`](crate::compile_data)), checks what spans queries (all parameter queries of a
//! definition output the same columns), attaches to every problem its definition, query and
//! position in the YAML file, and assembles the plan.

use crate::compile_data::compile_data_query;
use crate::compile_expr::Issue;
use crate::compile_parameter::{compile_parameter_query, ParameterQueryParts};
use crate::document::{self, DefinitionSource, QuerySource};
use crate::error::{
    Diagnostic, Position, QueryKind, QueryRef, RuleError, RuleWarning, RulesErrors,
};
use crate::expr::Expr;
use crate::functions::FunctionOptions;
use crate::limits::MAX_REPORTED_ERRORS;
use crate::plan::{DataQuery, Definition, ParameterQuery, ParameterValue, Plan};
use crate::source_map::QueryText;
use crate::value::Value;
use crate::yaml;

/// A successfully compiled document.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The plan to store and evaluate.
    pub plan: Plan,
    /// Problems that do not prevent deployment (potentially dangerous queries, §1.5.6).
    pub warnings: Vec<RuleWarning>,
}

/// Compiles a sync rules YAML document.
///
/// Returns the plan and its warnings, or — if anything is wrong — [`RulesErrors`] with *every*
/// error found, each naming its definition, query, YAML line and column, and what to do instead.
/// Never panics, whatever the input; input larger than the [limits](crate::limits) is refused.
///
/// ```
/// let compiled = ferry_rules::compile(
///     "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM settings\n",
/// )
/// .unwrap();
/// assert_eq!(compiled.plan.definitions().collect::<Vec<_>>(), vec![("global", 3)]);
/// ```
pub fn compile(yaml_text: &str) -> Result<Compiled, RulesErrors> {
    let mut errors: Vec<RuleError> = Vec::new();
    let mut warnings: Vec<RuleWarning> = Vec::new();
    let root = match yaml::parse(yaml_text) {
        Ok(root) => root,
        Err(e) => {
            return Err(RulesErrors {
                errors: vec![e],
                warnings,
            })
        }
    };
    let source = document::read(root.as_ref(), &mut errors);
    let options = FunctionOptions {
        fixed_json_extract: source.config.fixed_json_extract,
    };

    let mut definitions = Vec::with_capacity(source.definitions.len());
    let mut data_queries = Vec::new();
    let mut parameter_queries = Vec::new();
    for (definition_index, def) in source.definitions.iter().enumerate() {
        let compiled = compile_definition(
            yaml_text,
            def,
            definition_index,
            options,
            &mut errors,
            &mut warnings,
        );
        let Some((bucket_parameters, params, data)) = compiled else {
            continue;
        };
        let parameter_indexes =
            (parameter_queries.len()..parameter_queries.len() + params.len()).collect();
        let data_indexes = (data_queries.len()..data_queries.len() + data.len()).collect();
        parameter_queries.extend(params);
        data_queries.extend(data);
        definitions.push(Definition {
            name: def.name.clone(),
            priority: def.priority,
            bucket_parameters,
            parameter_queries: parameter_indexes,
            data_queries: data_indexes,
        });
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| {
            e.position
                .map_or((u32::MAX, u32::MAX), |p| (p.line, p.column))
        });
        if errors.len() > MAX_REPORTED_ERRORS {
            let more = errors.len() - MAX_REPORTED_ERRORS;
            errors.truncate(MAX_REPORTED_ERRORS);
            errors.push(
                Diagnostic::new(format!("… and {more} more errors"))
                    .with_hint("fix the errors above first"),
            );
        }
        return Err(RulesErrors { errors, warnings });
    }
    Ok(Compiled {
        plan: Plan::new(source.config, definitions, data_queries, parameter_queries),
        warnings,
    })
}

/// Turns a query's issues into positioned errors.
fn report(
    yaml_text: &str,
    query: Option<&QuerySource>,
    fallback: Position,
    definition: &str,
    query_ref: QueryRef,
    issues: Vec<Issue>,
    out: &mut Vec<Diagnostic>,
) {
    for issue in issues {
        let position = match query {
            None => fallback,
            Some(q) => {
                let text = QueryText {
                    document: yaml_text,
                    value: &q.text,
                    loc: q.loc,
                };
                match issue.location {
                    Some((line, column)) => text.position_of_sql_location(line, column),
                    None => q.loc.position,
                }
            }
        };
        let mut d = Diagnostic::new(issue.message)
            .at(Some(position))
            .in_definition(definition)
            .in_query(query_ref);
        d.hint = issue.hint;
        out.push(d);
    }
}

type CompiledDefinition = (Vec<String>, Vec<ParameterQuery>, Vec<DataQuery>);

fn compile_definition(
    yaml_text: &str,
    def: &DefinitionSource,
    definition_index: usize,
    options: FunctionOptions,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<CompiledDefinition> {
    let errors_before = errors.len();
    // Parameter queries; omitted `parameters` is the single query `SELECT`.
    let default_query = [None];
    let sources: Vec<Option<&QuerySource>> = match &def.parameters {
        None => default_query.to_vec(),
        Some(list) => list.iter().map(Some).collect(),
    };
    let mut compiled: Vec<(usize, Option<&QuerySource>, ParameterQueryParts)> = Vec::new();
    let mut any_failed = false;
    for (i, source) in sources.iter().enumerate() {
        let query_ref = QueryRef {
            kind: QueryKind::Parameter,
            index: i + 1,
        };
        let sql = source.map_or("SELECT", |q| q.text.as_str());
        match compile_parameter_query(sql, options, def.priority.is_some()) {
            Ok(mut parts) => {
                report(
                    yaml_text,
                    *source,
                    def.position,
                    &def.name,
                    query_ref,
                    std::mem::take(&mut parts.warnings),
                    warnings,
                );
                if parts.potentially_dangerous && !def.accept_potentially_dangerous_queries {
                    let mut w = Vec::new();
                    report(
                        yaml_text,
                        *source,
                        def.position,
                        &def.name,
                        query_ref,
                        vec![Issue {
                            message: "potentially dangerous query: it reads parameters sent by the client (request.parameters(), request.parameter() or user_parameters) and nothing from the token".to_owned(),
                            hint: Some("clients can send any parameters; also match on request.user_id() or a JWT claim, or set `accept_potentially_dangerous_queries: true` on the definition".to_owned()),
                            location: parts.location,
                        }],
                        &mut w,
                    );
                    warnings.extend(w);
                }
                compiled.push((i, *source, parts));
            }
            Err(issues) => {
                any_failed = true;
                report(
                    yaml_text,
                    *source,
                    def.position,
                    &def.name,
                    query_ref,
                    issues,
                    errors,
                );
            }
        }
    }

    // All parameter queries must output the same bucket parameters.
    let bucket_parameters: Option<Vec<String>> = compiled
        .first()
        .map(|(_, _, parts)| parts.outputs.iter().map(|(n, _)| n.clone()).collect());
    if let Some(expected) = &bucket_parameters {
        let first_index = compiled.first().map_or(1, |(i, _, _)| i + 1);
        for (i, source, parts) in compiled.iter().skip(1) {
            let mut names: Vec<&String> = parts.outputs.iter().map(|(n, _)| n).collect();
            let mut wanted: Vec<&String> = expected.iter().collect();
            names.sort();
            wanted.sort();
            if names != wanted {
                let list =
                    |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                report(
                    yaml_text,
                    *source,
                    def.position,
                    &def.name,
                    QueryRef {
                        kind: QueryKind::Parameter,
                        index: i + 1,
                    },
                    vec![Issue {
                        message: format!(
                            "all parameter queries of a definition must output the same columns: parameter query {first_index} outputs ({}), this one ({})",
                            list(&wanted),
                            list(&names)
                        ),
                        hint: Some("rename the columns with AS so every parameter query outputs the same bucket parameters".to_owned()),
                        location: parts.location,
                    }],
                    errors,
                );
            }
        }
    }
    let known_parameters = if any_failed {
        None
    } else {
        bucket_parameters.clone()
    };

    // Data queries.
    let mut data = Vec::with_capacity(def.data.len());
    for (i, source) in def.data.iter().enumerate() {
        let query_ref = QueryRef {
            kind: QueryKind::Data,
            index: i + 1,
        };
        match compile_data_query(&source.text, known_parameters.as_deref(), options) {
            Ok(parts) => {
                report(
                    yaml_text,
                    Some(source),
                    def.position,
                    &def.name,
                    query_ref,
                    parts.warnings,
                    warnings,
                );
                data.push(DataQuery {
                    definition: definition_index,
                    index: i + 1,
                    table: parts.table,
                    object_type: parts.object_type,
                    columns: parts.columns,
                    filter: parts.filter,
                });
            }
            Err(issues) => report(
                yaml_text,
                Some(source),
                def.position,
                &def.name,
                query_ref,
                issues,
                errors,
            ),
        }
    }

    if errors.len() > errors_before {
        return None;
    }
    let bucket_parameters = bucket_parameters.unwrap_or_default();
    let parameters = compiled
        .into_iter()
        .map(|(i, _, parts)| {
            let values = bucket_parameters
                .iter()
                .map(|name| {
                    parts.outputs.iter().find(|(n, _)| n == name).map_or(
                        ParameterValue::Request(Expr::Literal(Value::Null)),
                        |(_, v)| v.clone(),
                    )
                })
                .collect();
            ParameterQuery {
                definition: definition_index,
                index: i + 1,
                id: (i + 1).to_string(),
                priority: parts.priority,
                kind: parts.kind,
                bucket_parameters: values,
            }
        })
        .collect::<Vec<_>>();
    Some((bucket_parameters, parameters, data))
}
