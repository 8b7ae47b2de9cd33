//! The SQL dialect sync rules are parsed with: PostgreSQL, plus PowerSync's unparenthesised `IN`.
//!
//! sqlparser's PostgreSQL dialect requires `x IN (…)`, but sync rules write
//! `bucket.x IN table.json_array_col` and `request_value IN table.col` (PROTOCOL.md §1.3, §1.4),
//! and `&&` (array overlap) is only recognised by the PostgreSQL and generic dialects. So
//! [`SyncRulesDialect`] is the PostgreSQL dialect — it keeps PostgreSQL's identity for sqlparser's
//! dialect checks, so `&&`, `->` and `->>` parse exactly as there — with one change: the right side
//! of `IN` may be any expression (parenthesised lists and subqueries still parse as before, and are
//! then judged by the validator). Nothing else differs; every other method delegates.

use std::any::TypeId;

use sqlparser::dialect::{BindPlaceholderStyle, Dialect, PostgreSqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// Precedence of `->`/`->>`: that of PostgreSQL's `[]` subscript, above every binary operator.
const JSON_MEMBER_PRECEDENCE: u8 = 130;

/// PostgreSQL, with `x IN <expression>` allowed (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SyncRulesDialect(PostgreSqlDialect);

impl Dialect for SyncRulesDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn supports_in_unparenthesized_expr(&self) -> bool {
        true
    }

    fn supports_cte_materialization(&self) -> bool {
        self.0.supports_cte_materialization()
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.0.identifier_quote_style(identifier)
    }

    fn ordered_bind_placeholder_style(&self) -> Option<BindPlaceholderStyle> {
        self.0.ordered_bind_placeholder_style()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.0.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }

    fn supports_unicode_string_literal(&self) -> bool {
        self.0.supports_unicode_string_literal()
    }

    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        self.0.is_reserved_for_identifier(kw)
    }

    fn is_table_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool {
        self.0.is_table_alias(kw, parser)
    }

    fn supports_string_literal_column_alias(&self, explicit: bool) -> bool {
        self.0.supports_string_literal_column_alias(explicit)
    }

    fn supports_string_literal_table_alias(&self, explicit: bool) -> bool {
        self.0.supports_string_literal_table_alias(explicit)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.0.is_custom_operator_part(ch)
    }

    /// `->` and `->>` are member access in sync rules (as in PowerSync's parser), binding tighter
    /// than every binary operator: `'a' || j ->> 'b'` is `'a' || (j ->> 'b')`.
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        match parser.peek_token_ref().token {
            Token::Arrow | Token::LongArrow => Some(Ok(JSON_MEMBER_PRECEDENCE)),
            _ => self.0.get_next_precedence(parser),
        }
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        self.0.supports_filter_during_aggregation()
    }

    fn supports_group_by_expr(&self) -> bool {
        self.0.supports_group_by_expr()
    }

    fn supports_drop_group(&self) -> bool {
        self.0.supports_drop_group()
    }

    fn supports_alter_user_as_alter_role(&self) -> bool {
        self.0.supports_alter_user_as_alter_role()
    }

    fn supports_create_group(&self) -> bool {
        self.0.supports_create_group()
    }

    fn supports_create_role_if_not_exists(&self) -> bool {
        self.0.supports_create_role_if_not_exists()
    }

    fn prec_value(&self, prec: Precedence) -> u8 {
        self.0.prec_value(prec)
    }

    fn allow_extract_custom(&self) -> bool {
        self.0.allow_extract_custom()
    }

    fn allow_extract_single_quotes(&self) -> bool {
        self.0.allow_extract_single_quotes()
    }

    fn supports_create_index_with_clause(&self) -> bool {
        self.0.supports_create_index_with_clause()
    }

    fn supports_sql_option_without_value(&self) -> bool {
        self.0.supports_sql_option_without_value()
    }

    fn supports_explain_with_utility_options(&self) -> bool {
        self.0.supports_explain_with_utility_options()
    }

    fn supports_listen_notify(&self) -> bool {
        self.0.supports_listen_notify()
    }

    fn supports_exclude_constraint(&self) -> bool {
        self.0.supports_exclude_constraint()
    }

    fn supports_factorial_operator(&self) -> bool {
        self.0.supports_factorial_operator()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        self.0.supports_bitwise_shift_operators()
    }

    fn supports_tilde_like_match_operator(&self) -> bool {
        self.0.supports_tilde_like_match_operator()
    }

    fn supports_comparison_in_between_low_bound(&self) -> bool {
        self.0.supports_comparison_in_between_low_bound()
    }

    fn supports_comment_on(&self) -> bool {
        self.0.supports_comment_on()
    }

    fn supports_load_extension(&self) -> bool {
        self.0.supports_load_extension()
    }

    fn supports_named_fn_args_with_colon_operator(&self) -> bool {
        self.0.supports_named_fn_args_with_colon_operator()
    }

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        self.0.supports_named_fn_args_with_expr_name()
    }

    fn supports_named_fn_args_with_assignment_operator(&self) -> bool {
        self.0.supports_named_fn_args_with_assignment_operator()
    }

    fn supports_empty_projections(&self) -> bool {
        self.0.supports_empty_projections()
    }

    fn supports_nested_comments(&self) -> bool {
        self.0.supports_nested_comments()
    }

    fn supports_copy_from_stdin_data(&self) -> bool {
        self.0.supports_copy_from_stdin_data()
    }

    fn supports_string_escape_constant(&self) -> bool {
        self.0.supports_string_escape_constant()
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        self.0.supports_numeric_literal_underscores()
    }

    fn supports_non_decimal_integer_literals(&self) -> bool {
        self.0.supports_non_decimal_integer_literals()
    }

    fn supports_array_typedef_with_brackets(&self) -> bool {
        self.0.supports_array_typedef_with_brackets()
    }

    fn supports_geometric_types(&self) -> bool {
        self.0.supports_geometric_types()
    }

    fn supports_order_by_using_operator(&self) -> bool {
        self.0.supports_order_by_using_operator()
    }

    fn supports_set_names(&self) -> bool {
        self.0.supports_set_names()
    }

    fn supports_alter_column_type_using(&self) -> bool {
        self.0.supports_alter_column_type_using()
    }

    fn supports_left_associative_joins_without_parens(&self) -> bool {
        self.0.supports_left_associative_joins_without_parens()
    }

    fn supports_notnull_operator(&self) -> bool {
        self.0.supports_notnull_operator()
    }

    fn supports_interval_options(&self) -> bool {
        self.0.supports_interval_options()
    }

    fn is_interval_qualifier(&self, kw: Keyword) -> bool {
        self.0.is_interval_qualifier(kw)
    }

    fn supports_insert_table_alias(&self) -> bool {
        self.0.supports_insert_table_alias()
    }

    fn supports_create_table_like_parenthesized(&self) -> bool {
        self.0.supports_create_table_like_parenthesized()
    }

    fn supports_select_wildcard_with_alias(&self) -> bool {
        self.0.supports_select_wildcard_with_alias()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        self.0.supports_comma_separated_trim()
    }

    fn supports_xml_expressions(&self) -> bool {
        self.0.supports_xml_expressions()
    }

    fn is_custom_type_typed_string(&self, first_keyword: Keyword, qualified: bool) -> bool {
        self.0.is_custom_type_typed_string(first_keyword, qualified)
    }

    fn supports_aliased_function_args(&self) -> bool {
        self.0.supports_aliased_function_args()
    }

    fn supports_comment_optimizer_hint(&self) -> bool {
        self.0.supports_comment_optimizer_hint()
    }

    fn supports_add_column_if_not_exists(&self) -> bool {
        self.0.supports_add_column_if_not_exists()
    }

    fn supports_attach_partition_of(&self) -> bool {
        self.0.supports_attach_partition_of()
    }

    fn supports_detach_partition_of(&self) -> bool {
        self.0.supports_detach_partition_of()
    }

    fn supports_table_inheritance_markers(&self) -> bool {
        self.0.supports_table_inheritance_markers()
    }

    fn supports_column_generic_options(&self) -> bool {
        self.0.supports_column_generic_options()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{BinaryOperator, Expr, InTarget, SetExpr, Statement};

    fn where_clause(sql: &str) -> Expr {
        let statements = Parser::parse_sql(&SyncRulesDialect::default(), sql).unwrap();
        let Statement::Query(query) = &statements[0] else {
            panic!()
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            panic!()
        };
        select.selection.clone().unwrap()
    }

    #[test]
    fn in_accepts_a_column_on_the_right() {
        let Expr::In {
            target: InTarget::List(list),
            ..
        } = where_clause("SELECT * FROM t WHERE bucket.x IN t.tags")
        else {
            panic!()
        };
        assert!(matches!(&list[..], [Expr::CompoundIdentifier(_)]));
    }

    #[test]
    fn in_accepts_a_request_function_on_the_left() {
        let Expr::In { expr, .. } =
            where_clause("SELECT id FROM t WHERE request.user_id() IN t.members")
        else {
            panic!()
        };
        assert!(matches!(*expr, Expr::Function(_)));
    }

    #[test]
    fn in_with_parentheses_still_parses_as_a_list() {
        let Expr::In {
            target: InTarget::List(list),
            ..
        } = where_clause("SELECT * FROM t WHERE x IN (1, 2)")
        else {
            panic!()
        };
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn double_ampersand_is_array_overlap() {
        let Expr::BinaryOp { op, right, .. } =
            where_clause("SELECT * FROM t WHERE t.a && request.jwt() -> 'b'")
        else {
            panic!()
        };
        assert_eq!(op, BinaryOperator::PGOverlap);
        assert!(matches!(
            *right,
            Expr::BinaryOp {
                op: BinaryOperator::Arrow,
                ..
            }
        ));
    }

    #[test]
    fn json_arrows_bind_tighter_than_equality() {
        let Expr::BinaryOp { op, left, .. } =
            where_clause("SELECT 1 WHERE request.jwt() ->> 'role' = 'admin'")
        else {
            panic!()
        };
        assert_eq!(op, BinaryOperator::Eq);
        assert!(matches!(
            *left,
            Expr::BinaryOp {
                op: BinaryOperator::LongArrow,
                ..
            }
        ));
    }
}
