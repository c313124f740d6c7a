//! SRQL errors: what was wrong, where (a byte span), what was expected, and
//! for unknown names the nearest valid ones.

use std::fmt;

use crate::ast::Span;

/// The class of an error, stable for API clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    UnknownEntity,
    UnknownField,
    UnknownPipe,
    UnknownFunction,
    /// A value that does not fit its field (not a number, IP, time …).
    BadValue,
    /// An operator the field's type does not support (regex on a number …).
    BadOperator,
    /// A directive (`in:`, `time:`, `sort:`, `limit:`, `stats:`) inside OR/NOT.
    MisplacedDirective,
    /// A time range longer than the configured maximum.
    TimeRange,
    /// Valid SRQL this build cannot run yet.
    NotAvailable,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::UnknownEntity => "unknown_entity",
            ErrorKind::UnknownField => "unknown_field",
            ErrorKind::UnknownPipe => "unknown_pipe",
            ErrorKind::UnknownFunction => "unknown_function",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::BadOperator => "bad_operator",
            ErrorKind::MisplacedDirective => "misplaced_directive",
            ErrorKind::TimeRange => "time_range",
            ErrorKind::NotAvailable => "not_available",
        }
    }
}

/// An error in a query, located by span.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub struct SrqlError {
    pub kind: ErrorKind,
    pub message: String,
    pub span: Span,
    /// What would have been valid here.
    pub expected: Vec<String>,
    /// Nearest valid names, for typos.
    pub suggestions: Vec<String>,
}

impl SrqlError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, span: Span) -> Self {
        SrqlError { kind, message: message.into(), span, expected: Vec::new(), suggestions: Vec::new() }
    }

    pub fn expected(mut self, e: impl IntoIterator<Item = String>) -> Self {
        self.expected = e.into_iter().collect();
        self
    }

    pub fn suggest(mut self, s: impl IntoIterator<Item = String>) -> Self {
        self.suggestions = s.into_iter().collect();
        self
    }

    /// The message with the query and a caret line under the span:
    ///
    /// ```text
    /// error: unknown field `hots`
    ///   hots:web-01
    ///   ^^^^
    ///   did you mean `host`?
    /// ```
    pub fn render(&self, query: &str) -> String {
        let mut out = format!("error: {self}\n");
        // Show the line holding the span, with the caret under it. A span
        // that does not fall on character boundaries is widened to them.
        let floor = |mut i: usize| {
            i = i.min(query.len());
            while !query.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = floor(self.span.start);
        let line_start = query[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = query[start..].find('\n').map(|i| start + i).unwrap_or(query.len());
        let line = &query[line_start..line_end];
        let pad = query[line_start..start].chars().count();
        let mut end = self.span.end.clamp(start, line_end);
        while !query.is_char_boundary(end) {
            end += 1;
        }
        let width = query[start..end].chars().count().max(1);
        out.push_str(&format!("  {line}\n  {}{}\n", " ".repeat(pad), "^".repeat(width)));
        if !self.expected.is_empty() {
            out.push_str(&format!("  expected {}\n", join_or(&self.expected)));
        }
        if !self.suggestions.is_empty() {
            let s: Vec<String> = self.suggestions.iter().map(|s| format!("`{s}`")).collect();
            out.push_str(&format!("  did you mean {}?\n", join_or(&s)));
        }
        out
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl fmt::Display for SrqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at {}..{})", self.message, self.span.start, self.span.end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn render_puts_a_caret_under_the_span() {
        let e = SrqlError::new(ErrorKind::UnknownField, "unknown field `hots`", Span::new(12, 16))
            .suggest(["host".to_string()]);
        let r = e.render("severity:hi hots:web-01");
        assert_eq!(
            r,
            "error: unknown field `hots` (at 12..16)\n  severity:hi hots:web-01\n              ^^^^\n  did you mean `host`?\n"
        );
    }
}
