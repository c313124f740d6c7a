//! The SRQL syntax tree. Every node carries the byte span of the text it came
//! from, so errors can point at it. Spans do not take part in equality: two
//! trees are equal when they say the same thing.

use std::fmt;

/// A byte range in the query text.
#[derive(Debug, Clone, Copy, Default, Eq, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl PartialEq for Span {
    /// Always equal: spans locate nodes, they are not part of their meaning.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    pub fn shift(self, by: usize) -> Span {
        Span { start: self.start + by, end: self.end + by }
    }
}

/// A parsed query: an optional filter expression, then pipe stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Option<Expr>,
    pub pipes: Vec<Pipe>,
    pub span: Span,
}

/// A boolean filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>, Span),
    Or(Vec<Expr>, Span),
    Not(Box<Expr>, Span),
    /// `field:value`, possibly negated with `!`.
    Term(Term),
    /// A bare word or a "quoted phrase": free text.
    Text(Text),
    /// ServiceRadar's `stats:"…"` directive.
    Stats(StatsSpec),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::And(_, s) | Expr::Or(_, s) | Expr::Not(_, s) => *s,
            Expr::Term(t) => t.span,
            Expr::Text(t) => t.span,
            Expr::Stats(s) => s.span,
        }
    }
}

/// A name with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub negated: bool,
    pub field: Ident,
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub text: String,
    /// A "quoted phrase" rather than a bare word.
    pub phrase: bool,
    pub span: Span,
}

/// A literal as written: its unescaped text and whether it was quoted.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub text: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// The right-hand side of `field:…`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `value`, `"quoted value"`, `web-*` (wildcards are decided by the planner).
    Literal(Literal),
    /// `(a, b, c)`
    List(Vec<Literal>, Span),
    /// `[a, b]`, whose slots may be empty (`[2026-01-01,]`).
    Bracket(Vec<Option<Literal>>, Span),
    /// `[10 TO 20]`
    Range(Literal, Literal, Span),
    /// `>80`, `<=5`
    Compare(CmpOp, Literal, Span),
    /// `/pattern/`
    Regex(String, Span),
    /// `*`: the field is present.
    Exists(Span),
    /// `$other_field`: equal to another field of the same row.
    Field(Ident, Span),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Literal(l) => l.span,
            Value::List(_, s)
            | Value::Bracket(_, s)
            | Value::Range(_, _, s)
            | Value::Compare(_, _, s)
            | Value::Regex(_, s)
            | Value::Exists(s)
            | Value::Field(_, s) => *s,
        }
    }
}

/// One aggregate: `count()`, `avg(x) as name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    pub func: Ident,
    pub arg: Option<Ident>,
    pub alias: Option<Ident>,
    pub span: Span,
}

/// Aggregates and their grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSpec {
    pub aggs: Vec<Agg>,
    pub by: Vec<Ident>,
    pub span: Span,
}

/// `name:value` argument of a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedArg {
    pub name: Ident,
    pub value: Literal,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub field: Ident,
    pub descending: bool,
}

/// A `| stage`.
#[derive(Debug, Clone, PartialEq)]
pub enum Pipe {
    SimilarTo { text: Literal, args: Vec<NamedArg>, span: Span },
    Stats(StatsSpec),
    Timechart { args: Vec<NamedArg>, stats: StatsSpec, span: Span },
    Where(Expr, Span),
    Sort(Vec<SortKey>, Span),
    Head(Option<u64>, Span),
    Dedup(Vec<Ident>, Span),
    Fields(Vec<Ident>, Span),
    Cluster(Option<Literal>, Span),
    BlastRadius(Vec<NamedArg>, Span),
}

impl Pipe {
    pub fn span(&self) -> Span {
        match self {
            Pipe::SimilarTo { span, .. } | Pipe::Timechart { span, .. } => *span,
            Pipe::Stats(s) => s.span,
            Pipe::Where(_, s)
            | Pipe::Sort(_, s)
            | Pipe::Head(_, s)
            | Pipe::Dedup(_, s)
            | Pipe::Fields(_, s)
            | Pipe::Cluster(_, s)
            | Pipe::BlastRadius(_, s) => *s,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Pipe::SimilarTo { .. } => "SIMILAR_TO",
            Pipe::Stats(_) => "stats",
            Pipe::Timechart { .. } => "timechart",
            Pipe::Where(..) => "where",
            Pipe::Sort(..) => "sort",
            Pipe::Head(..) => "head",
            Pipe::Dedup(..) => "dedup",
            Pipe::Fields(..) => "fields",
            Pipe::Cluster(..) => "cluster",
            Pipe::BlastRadius(..) => "blast_radius",
        }
    }
}

// ------------------------------------------------------------ pretty-printing
// `Display` writes a query back as SRQL that parses to an equal tree.

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            f.write_str(&quote(&self.text))
        } else {
            // Escape what would end or change a bare value.
            for c in self.text.chars() {
                if c.is_whitespace() || "()\"|\\,[]".contains(c) {
                    write!(f, "\\{c}")?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            Ok(())
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Literal(l) => write!(f, "{l}"),
            Value::List(items, _) => {
                f.write_str("(")?;
                for (i, l) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{l}")?;
                }
                f.write_str(")")
            }
            Value::Bracket(items, _) => {
                f.write_str("[")?;
                for (i, l) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if let Some(l) = l {
                        write!(f, "{l}")?;
                    }
                }
                f.write_str("]")
            }
            Value::Range(a, b, _) => write!(f, "[{a} TO {b}]"),
            Value::Compare(op, l, _) => write!(f, "{}{l}", op.as_str()),
            Value::Regex(r, _) => write!(f, "/{r}/"),
            Value::Exists(_) => f.write_str("*"),
            Value::Field(i, _) => write!(f, "${}", i.name),
        }
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.func.name, self.arg.as_ref().map(|a| a.name.as_str()).unwrap_or(""))?;
        if let Some(a) = &self.alias {
            write!(f, " as {}", a.name)?;
        }
        Ok(())
    }
}

impl fmt::Display for StatsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aggs: Vec<String> = self.aggs.iter().map(ToString::to_string).collect();
        f.write_str(&aggs.join(", "))?;
        if !self.by.is_empty() {
            let by: Vec<&str> = self.by.iter().map(|i| i.name.as_str()).collect();
            write!(f, " by {}", by.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(items, _) => {
                let parts: Vec<String> = items.iter().map(|e| wrap(e, false)).collect();
                f.write_str(&parts.join(" AND "))
            }
            Expr::Or(items, _) => {
                let parts: Vec<String> = items.iter().map(|e| wrap(e, true)).collect();
                f.write_str(&parts.join(" OR "))
            }
            Expr::Not(e, _) => write!(f, "NOT {}", wrap(e, false)),
            Expr::Term(t) => write!(f, "{}{}:{}", if t.negated { "!" } else { "" }, t.field.name, t.value),
            Expr::Text(t) if t.phrase => f.write_str(&quote(&t.text)),
            Expr::Text(t) => {
                // A word must not read as an operator, a negation or a filter.
                let keyword = ["AND", "OR", "NOT"].iter().any(|k| k.eq_ignore_ascii_case(&t.text));
                if keyword || t.text.starts_with('!') {
                    f.write_str("\\")?;
                }
                let lit = Literal { text: t.text.clone(), quoted: false, span: t.span };
                f.write_str(&lit.to_string().replace(':', "\\:"))
            }
            Expr::Stats(s) => write!(f, "stats:{}", quote(&s.to_string())),
        }
    }
}

/// Parenthesises compound operands so precedence survives printing.
fn wrap(e: &Expr, in_or: bool) -> String {
    match e {
        Expr::And(..) if in_or => e.to_string(),
        Expr::And(..) | Expr::Or(..) | Expr::Not(..) => format!("({e})"),
        _ => e.to_string(),
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args = |args: &[NamedArg]| -> String {
            args.iter().map(|a| format!("{}:{}", a.name.name, a.value.text)).collect::<Vec<_>>().join(" ")
        };
        let idents = |v: &[Ident]| v.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
        match self {
            Pipe::SimilarTo { text, args, .. } => {
                write!(f, "SIMILAR_TO({}", quote(&text.text))?;
                for a in args {
                    write!(f, ", {}:{}", a.name.name, a.value.text)?;
                }
                f.write_str(")")
            }
            Pipe::Stats(s) => write!(f, "stats {s}"),
            Pipe::Timechart { args: a, stats, .. } => {
                let a = args(a);
                if a.is_empty() {
                    write!(f, "timechart {stats}")
                } else {
                    write!(f, "timechart {a} {stats}")
                }
            }
            Pipe::Where(e, _) => write!(f, "where {e}"),
            Pipe::Sort(keys, _) => {
                let k: Vec<String> =
                    keys.iter().map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.field.name)).collect();
                write!(f, "sort {}", k.join(", "))
            }
            Pipe::Head(n, _) => match n {
                Some(n) => write!(f, "head {n}"),
                None => f.write_str("head"),
            },
            Pipe::Dedup(v, _) => write!(f, "dedup {}", idents(v)),
            Pipe::Fields(v, _) => write!(f, "fields {}", idents(v)),
            Pipe::Cluster(t, _) => match t {
                Some(t) => write!(f, "cluster {}", t.text),
                None => f.write_str("cluster"),
            },
            Pipe::BlastRadius(a, _) => {
                let a = args(a);
                if a.is_empty() {
                    f.write_str("blast_radius")
                } else {
                    write!(f, "blast_radius {a}")
                }
            }
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = &self.filter {
            parts.push(e.to_string());
        }
        for p in &self.pipes {
            parts.push(format!("| {p}"));
        }
        f.write_str(&parts.join(" "))
    }
}
