//! Errors and warnings about a sync rules document, each with its position.
//!
//! Holds [`Diagnostic`] (one problem: where, in which definition and query, what, what to do instead),
//! its two roles [`RuleError`] and [`RuleWarning`], the collection [`RulesErrors`] that
//! [`compile`](fn@crate::compile) returns, and [`PlanLoadError`] for a stored plan that cannot be loaded.
//! Errors raised while *evaluating* a row or a request are not here: they are reported per row in
//! [`RowError`](crate::RowError).

use std::fmt;

/// A position in the YAML document: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Which list of a bucket definition a query belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// An entry of `parameters`.
    Parameter,
    /// An entry of `data`.
    Data,
}

/// A query of a bucket definition: its kind and its 1-based index in that list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryRef {
    /// `parameters` or `data`.
    pub kind: QueryKind,
    /// 1-based index in the definition's `parameters` or `data` list.
    pub index: usize,
}

impl fmt::Display for QueryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            QueryKind::Parameter => write!(f, "parameter query {}", self.index),
            QueryKind::Data => write!(f, "data query {}", self.index),
        }
    }
}

/// One problem found in a sync rules document.
///
/// Displayed as `line:col: definition 'x', data query 2: message. hint` — parts that are unknown
/// (no position, a problem outside any definition) are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in the YAML document the problem is, when known.
    pub position: Option<Position>,
    /// The bucket definition the problem is in, if any.
    pub definition: Option<String>,
    /// The query the problem is in, if any.
    pub query: Option<QueryRef>,
    /// What is wrong.
    pub message: String,
    /// What to do instead, if there is something to suggest.
    pub hint: Option<String>,
}

/// A problem that makes a document unusable.
pub type RuleError = Diagnostic;

/// A problem that does not stop a document from being deployed (PROTOCOL.md §1.5.6).
pub type RuleWarning = Diagnostic;

impl Diagnostic {
    /// A diagnostic with a message only; add context with the `with_*` builders.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            position: None,
            definition: None,
            query: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Sets the position.
    pub fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }

    /// Sets the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the definition name.
    pub fn in_definition(mut self, definition: impl Into<String>) -> Self {
        self.definition = Some(definition.into());
        self
    }

    /// Sets the query.
    pub fn in_query(mut self, query: QueryRef) -> Self {
        self.query = Some(query);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(position) = self.position {
            write!(f, "{position}: ")?;
        }
        match (&self.definition, &self.query) {
            (Some(definition), Some(query)) => write!(f, "definition '{definition}', {query}: ")?,
            (Some(definition), None) => write!(f, "definition '{definition}': ")?,
            (None, Some(query)) => write!(f, "{query}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            if !self.message.ends_with(['.', '!', '?']) {
                f.write_str(".")?;
            }
            // Hints are written as sentences; start them with a capital letter.
            let mut chars = hint.chars();
            if let Some(first) = chars.next() {
                write!(f, " {}{}", first.to_uppercase(), chars.as_str())?;
            }
        }
        Ok(())
    }
}

/// Every error found in a sync rules document (never empty when returned by
/// [`compile`](fn@crate::compile)), in document order.
///
/// Displayed one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesErrors {
    /// The errors, in the order of their position in the document.
    pub errors: Vec<RuleError>,
    /// Warnings found alongside the errors.
    pub warnings: Vec<RuleWarning>,
}

impl fmt::Display for RulesErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RulesErrors {}

/// A stored plan (see [`Plan::from_json`](crate::Plan::from_json)) that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanLoadError {
    /// The text is not a plan of this format.
    #[error("stored sync rules plan is not valid JSON for this version of ferry-rules: {0}")]
    Json(#[from] serde_json::Error),
    /// The plan was written by an incompatible version of ferry-rules.
    #[error("stored sync rules plan has format {found}, this version of ferry-rules reads format {expected}; deploy the rules again")]
    Format {
        /// The format number found in the plan.
        found: u32,
        /// The format number this crate reads.
        expected: u32,
    },
}
