//! Text → [`Query`]: the pest grammar in `srql.pest`, turned into the AST.

use pest::iterators::Pair;
use pest::Parser;

use crate::ast::*;
use crate::error::{ErrorKind, SrqlError};

#[derive(pest_derive::Parser)]
#[grammar = "srql.pest"]
struct Grammar;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Deepest nesting of parentheses and NOTs accepted.
pub const MAX_DEPTH: usize = 64;

/// Parses SRQL text into a syntax tree.
pub fn parse(text: &str) -> Result<Query, SrqlError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(SrqlError::new(
            ErrorKind::Syntax,
            format!("query is {} bytes; the limit is {MAX_QUERY_BYTES}", text.len()),
            Span::new(MAX_QUERY_BYTES.min(text.len()), text.len()),
        ));
    }
    check_depth(text)?;
    let mut pairs = Grammar::parse(Rule::query, text).map_err(|e| syntax_error(text, e))?;
    let query = pairs.next().ok_or_else(|| SrqlError::new(ErrorKind::Syntax, "empty parse", Span::default()))?;
    let span = span_of(&query);
    let mut filter = None;
    let mut pipes = Vec::new();
    for p in query.into_inner() {
        match p.as_rule() {
            Rule::search => filter = p.into_inner().next().map(expr),
            Rule::pipe => pipes.push(pipe(p)?),
            _ => {}
        }
    }
    Ok(Query { filter, pipes, span })
}

/// Pest recurses per nesting level; refuse absurd nesting before it does,
/// and unclosed brackets (whose failed parse backtracks exponentially) and
/// quotes. One pass over the text, outside quotes and past escapes.
fn check_depth(text: &str) -> Result<(), SrqlError> {
    let mut open: Vec<(usize, char)> = Vec::new();
    let mut parens = 0usize;
    let mut too_deep = None;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quote = !in_quote,
            '(' | '[' if !in_quote => {
                open.push((i, c));
                if c == '(' {
                    parens += 1;
                    if parens > MAX_DEPTH && too_deep.is_none() {
                        too_deep = Some(i);
                    }
                }
            }
            ')' | ']' if !in_quote => {
                let want = if c == ')' { '(' } else { '[' };
                if open.last().is_some_and(|(_, o)| *o == want) {
                    open.pop();
                    parens -= usize::from(want == '(');
                }
            }
            _ => {}
        }
    }
    if let Some((at, c)) = open.pop() {
        let close = if c == '(' { ')' } else { ']' };
        return Err(SrqlError::new(ErrorKind::Syntax, format!("this `{c}` is never closed"), Span::new(at, at + 1))
            .expected([format!("`{close}`")]));
    }
    if let Some(i) = too_deep {
        return Err(SrqlError::new(
            ErrorKind::Syntax,
            format!("parentheses nest deeper than {MAX_DEPTH} levels"),
            Span::new(i, i + 1),
        ));
    }
    if in_quote {
        let start = text.rfind('"').unwrap_or(0);
        return Err(SrqlError::new(
            ErrorKind::Syntax,
            "this quoted string is never closed",
            Span::new(start, text.len()),
        ));
    }
    let nots = text.split_whitespace().filter(|w| w.eq_ignore_ascii_case("NOT")).count();
    if nots > MAX_DEPTH {
        return Err(SrqlError::new(ErrorKind::Syntax, format!("more than {MAX_DEPTH} NOTs"), Span::new(0, text.len())));
    }
    Ok(())
}

/// Parses the inside of a quoted `stats:"…"` directive; `offset` is where
/// the inner text starts in the whole query, so spans stay true.
pub(crate) fn parse_stats_spec(inner: &str, offset: usize) -> Result<StatsSpec, SrqlError> {
    let mut pairs = Grammar::parse(Rule::stats_spec_only, inner).map_err(|e| {
        let mut err = syntax_error(inner, e);
        err.span = err.span.shift(offset);
        err
    })?;
    let spec = pairs
        .next()
        .and_then(|p| p.into_inner().find(|p| p.as_rule() == Rule::stats_spec))
        .ok_or_else(|| SrqlError::new(ErrorKind::Syntax, "expected aggregates", Span::new(offset, offset)))?;
    Ok(shift_stats(stats_spec(spec), offset))
}

fn shift_stats(mut s: StatsSpec, by: usize) -> StatsSpec {
    s.span = s.span.shift(by);
    for a in &mut s.aggs {
        a.span = a.span.shift(by);
        a.func.span = a.func.span.shift(by);
        if let Some(x) = a.arg.as_mut() {
            x.span = x.span.shift(by);
        }
        if let Some(x) = a.alias.as_mut() {
            x.span = x.span.shift(by);
        }
    }
    for b in &mut s.by {
        b.span = b.span.shift(by);
    }
    s
}

fn span_of(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

fn ident(p: Pair<'_, Rule>) -> Ident {
    Ident { name: p.as_str().to_string(), span: span_of(&p) }
}

fn expr(p: Pair<'_, Rule>) -> Expr {
    let span = span_of(&p);
    match p.as_rule() {
        Rule::or_expr => {
            let mut items: Vec<Expr> = p.into_inner().filter(|c| c.as_rule() != Rule::or_op).map(expr).collect();
            if items.len() == 1 {
                items.remove(0)
            } else {
                Expr::Or(items, span)
            }
        }
        Rule::and_expr => {
            let mut items: Vec<Expr> = p.into_inner().filter(|c| c.as_rule() != Rule::and_op).map(expr).collect();
            if items.len() == 1 {
                items.remove(0)
            } else {
                Expr::And(items, span)
            }
        }
        Rule::unary => {
            let mut inner = p.into_inner();
            match inner.next() {
                Some(first) if first.as_rule() == Rule::not_op => match inner.next() {
                    Some(operand) => Expr::Not(Box::new(expr(operand)), span),
                    None => Expr::Text(Text { text: first.as_str().into(), phrase: false, span }),
                },
                Some(first) => expr(first),
                None => Expr::And(Vec::new(), span),
            }
        }
        Rule::neg_text => match p.into_inner().next() {
            Some(inner) => Expr::Not(Box::new(expr(inner)), span),
            None => Expr::And(Vec::new(), span),
        },
        Rule::group => match p.into_inner().next() {
            Some(inner) => expr(inner),
            None => Expr::And(Vec::new(), span),
        },
        Rule::term => term(p),
        Rule::phrase => {
            let text = p.into_inner().next().map(|q| unquote(q.as_str())).unwrap_or_default();
            Expr::Text(Text { text, phrase: true, span })
        }
        Rule::stats_directive => {
            let inner = p.into_inner().next();
            match inner {
                Some(q) if q.as_rule() == Rule::quoted => {
                    let qs = span_of(&q);
                    let text = q.as_str();
                    let body = &text[1..text.len().saturating_sub(1)];
                    match parse_stats_spec(body, qs.start + 1) {
                        Ok(mut s) => {
                            s.span = span;
                            Expr::Stats(s)
                        }
                        // Keep the bad text; the planner reports it with its span.
                        Err(_) => Expr::Term(Term {
                            negated: false,
                            field: Ident { name: "stats".into(), span: Span::new(span.start, span.start + 5) },
                            value: Value::Literal(Literal { text: unquote(text), quoted: true, span: qs }),
                            span,
                        }),
                    }
                }
                Some(spec) => {
                    let mut s = stats_spec(spec);
                    s.span = span;
                    Expr::Stats(s)
                }
                None => Expr::And(Vec::new(), span),
            }
        }
        // `word` and anything unexpected: free text.
        _ => Expr::Text(Text { text: unescape_bare(p.as_str()), phrase: false, span }),
    }
}

fn term(p: Pair<'_, Rule>) -> Expr {
    let span = span_of(&p);
    let mut negated = false;
    let mut field = None;
    let mut value = None;
    for c in p.into_inner() {
        match c.as_rule() {
            Rule::bang => negated = true,
            Rule::field => field = Some(ident(c)),
            _ => value = Some(value_of(c)),
        }
    }
    Expr::Term(Term {
        negated,
        field: field.unwrap_or(Ident { name: String::new(), span }),
        value: value.unwrap_or(Value::Exists(span)),
        span,
    })
}

fn literal(p: Pair<'_, Rule>) -> Literal {
    let span = span_of(&p);
    match p.as_rule() {
        Rule::quoted => Literal { text: unquote(p.as_str()), quoted: true, span },
        _ => Literal { text: unescape_bare(p.as_str()), quoted: false, span },
    }
}

fn value_of(p: Pair<'_, Rule>) -> Value {
    let span = span_of(&p);
    match p.as_rule() {
        Rule::exists => Value::Exists(span),
        Rule::list => Value::List(p.into_inner().map(literal).collect(), span),
        Rule::bracket => {
            let Some(body) = p.into_inner().next() else { return Value::Bracket(Vec::new(), span) };
            match body.as_rule() {
                Rule::range => {
                    let mut items = body.into_inner().map(literal);
                    match (items.next(), items.next()) {
                        (Some(a), Some(b)) => Value::Range(a, b, span),
                        _ => Value::Bracket(Vec::new(), span),
                    }
                }
                _ => {
                    Value::Bracket(body.into_inner().map(|slot| slot.into_inner().next().map(literal)).collect(), span)
                }
            }
        }
        Rule::compare => {
            let mut inner = p.into_inner();
            let op = match inner.next().map(|o| o.as_str()) {
                Some(">=") => CmpOp::Ge,
                Some("<=") => CmpOp::Le,
                Some("<") => CmpOp::Lt,
                _ => CmpOp::Gt,
            };
            let lit = inner.next().map(literal).unwrap_or(Literal { text: String::new(), quoted: false, span });
            Value::Compare(op, lit, span)
        }
        Rule::regex => {
            let body = p.into_inner().next().map(|b| b.as_str().replace("\\/", "/")).unwrap_or_default();
            Value::Regex(body, span)
        }
        Rule::fieldref => match p.into_inner().next() {
            Some(f) => Value::Field(ident(f), span),
            None => Value::Exists(span),
        },
        _ => Value::Literal(literal(p)),
    }
}

fn stats_spec(p: Pair<'_, Rule>) -> StatsSpec {
    let span = span_of(&p);
    let mut aggs = Vec::new();
    let mut by = Vec::new();
    for c in p.into_inner() {
        match c.as_rule() {
            Rule::agg => aggs.push(agg(c)),
            Rule::field_list_atomic | Rule::by_clause => {
                by.extend(c.into_inner().filter(|f| f.as_rule() == Rule::field).map(ident))
            }
            _ => {}
        }
    }
    StatsSpec { aggs, by, span }
}

fn agg(p: Pair<'_, Rule>) -> Agg {
    let span = span_of(&p);
    let mut inner = p.into_inner();
    let func = inner.next().map(ident).unwrap_or(Ident { name: String::new(), span });
    let mut arg = None;
    let mut alias = None;
    for c in inner {
        match c.as_rule() {
            Rule::agg_arg => arg = Some(ident(c)),
            Rule::ident => alias = Some(ident(c)),
            _ => {}
        }
    }
    Agg { func, arg, alias, span }
}

fn named_arg(p: Pair<'_, Rule>) -> NamedArg {
    let span = span_of(&p);
    let mut inner = p.into_inner();
    let name = inner.next().map(ident).unwrap_or(Ident { name: String::new(), span });
    let value = inner.next().map(literal).unwrap_or(Literal { text: String::new(), quoted: false, span });
    NamedArg { name, value, span }
}

fn pipe(p: Pair<'_, Rule>) -> Result<Pipe, SrqlError> {
    let Some(body) = p.into_inner().next() else {
        return Err(SrqlError::new(ErrorKind::Syntax, "expected a pipe stage after `|`", Span::default()));
    };
    let span = span_of(&body);
    let rule = body.as_rule();
    let mut inner = body.into_inner().filter(|p| !is_keyword(p.as_rule()));
    Ok(match rule {
        Rule::similar_pipe => {
            let text = inner.next().map(literal).unwrap_or(Literal { text: String::new(), quoted: true, span });
            Pipe::SimilarTo { text, args: inner.map(named_arg).collect(), span }
        }
        Rule::stats_pipe => {
            let mut s = stats_spec_from(inner);
            s.span = span;
            Pipe::Stats(s)
        }
        Rule::timechart_pipe => {
            let mut args = Vec::new();
            let mut rest = Vec::new();
            for c in inner {
                if c.as_rule() == Rule::named_arg {
                    args.push(named_arg(c));
                } else {
                    rest.push(c);
                }
            }
            let mut stats = stats_spec_from(rest.into_iter());
            stats.span = span;
            Pipe::Timechart { args, stats, span }
        }
        Rule::where_pipe => match inner.next() {
            Some(e) => Pipe::Where(expr(e), span),
            None => return Err(SrqlError::new(ErrorKind::Syntax, "`| where` needs a filter", span)),
        },
        Rule::sort_pipe => Pipe::Sort(
            inner
                .map(|k| {
                    let mut descending = false;
                    let mut field = Ident { name: String::new(), span: span_of(&k) };
                    for c in k.into_inner() {
                        match c.as_rule() {
                            Rule::sort_dir => descending = c.as_str() == "-",
                            _ => field = ident(c),
                        }
                    }
                    SortKey { field, descending }
                })
                .collect(),
            span,
        ),
        Rule::head_pipe => {
            let n =
                match inner.next() {
                    Some(n) => Some(n.as_str().parse::<u64>().map_err(|_| {
                        SrqlError::new(ErrorKind::BadValue, "`| head` needs a whole number", span_of(&n))
                    })?),
                    None => None,
                };
            Pipe::Head(n, span)
        }
        Rule::dedup_pipe => Pipe::Dedup(inner.map(ident).collect(), span),
        Rule::fields_pipe => Pipe::Fields(inner.map(ident).collect(), span),
        Rule::cluster_pipe => Pipe::Cluster(inner.next().map(literal), span),
        Rule::blast_pipe => Pipe::BlastRadius(inner.map(named_arg).collect(), span),
        _ => {
            let name = inner.next().map(ident).unwrap_or(Ident { name: String::new(), span });
            if let Some(usage) = usage(&name.name) {
                return Err(SrqlError::new(ErrorKind::Syntax, format!("malformed `| {}`", name.name), span)
                    .expected([format!("`| {usage}`")]));
            }
            let suggestions = crate::suggest::nearest(&name.name, crate::PIPES.iter().copied());
            return Err(SrqlError::new(ErrorKind::UnknownPipe, format!("unknown pipe `{}`", name.name), name.span)
                .expected(crate::PIPES.iter().map(|p| format!("`{p}`")))
                .suggest(suggestions));
        }
    })
}

/// How each pipe is written, for errors about a malformed one.
fn usage(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "similar_to" => "SIMILAR_TO(\"text\", k:50, min_score:0.6)",
        "stats" => "stats count(), avg(field) as name by field1, field2",
        "timechart" => "timechart span:5m count() by field",
        "where" => "where field:value",
        "sort" => "sort -field, field2",
        "head" => "head 10",
        "dedup" => "dedup field1, field2",
        "fields" => "fields field1, field2",
        "cluster" => "cluster 0.8",
        "blast_radius" => "blast_radius hops:2 direction:out",
        _ => return None,
    })
}

fn is_keyword(r: Rule) -> bool {
    matches!(
        r,
        Rule::kw_similar_to
            | Rule::kw_stats
            | Rule::kw_timechart
            | Rule::kw_where
            | Rule::kw_sort
            | Rule::kw_head
            | Rule::kw_dedup
            | Rule::kw_fields
            | Rule::kw_cluster
            | Rule::kw_blast_radius
            | Rule::kw_by
    )
}

fn stats_spec_from<'a>(pairs: impl Iterator<Item = Pair<'a, Rule>>) -> StatsSpec {
    let mut aggs = Vec::new();
    let mut by = Vec::new();
    for c in pairs {
        match c.as_rule() {
            Rule::agg => aggs.push(agg(c)),
            Rule::by_clause => by.extend(c.into_inner().filter(|f| f.as_rule() == Rule::field).map(ident)),
            _ => {}
        }
    }
    StatsSpec { aggs, by, span: Span::default() }
}

/// `"a \"b\" \\ c"` → `a "b" \ c`; other escapes are kept as written.
fn unquote(s: &str) -> String {
    let inner = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// In bare values a backslash makes the next character literal (a trailing
/// one stands for itself).
fn unescape_bare(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().unwrap_or('\\'));
        } else {
            out.push(c);
        }
    }
    out
}

fn rule_name(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of query",
        Rule::field => "a field name",
        Rule::ident => "a name",
        Rule::value | Rule::bare | Rule::list_bare | Rule::bracket_bare => "a value",
        Rule::quoted | Rule::quoted_inner | Rule::phrase => "a quoted string",
        Rule::list => "a list `(a, b)`",
        Rule::bracket => "a range `[a TO b]`",
        Rule::compare | Rule::cmp_op => "a comparison `>` `>=` `<` `<=`",
        Rule::regex => "a regex `/…/`",
        Rule::fieldref => "a field reference `$field`",
        Rule::exists => "`*`",
        Rule::or_op => "`OR`",
        Rule::and_op => "`AND`",
        Rule::not_op => "`NOT`",
        Rule::term => "a filter `field:value`",
        Rule::word => "a search word",
        Rule::group => "`(`",
        Rule::pipe => "`|`",
        Rule::agg => "an aggregate like `count()`",
        Rule::agg_arg => "a field name or `*`",
        Rule::named_arg => "an argument `name:value`",
        Rule::arg_value => "an argument value",
        Rule::by_clause => "`by`",
        Rule::sort_key => "a field to sort by",
        Rule::number => "a number",
        Rule::unary | Rule::or_expr | Rule::and_expr | Rule::search => "a filter",
        Rule::stats_spec | Rule::stats_spec_only => "aggregates like `count() by field`",
        _ => return None,
    })
}

fn syntax_error(text: &str, e: pest::error::Error<Rule>) -> SrqlError {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let end = text[pos..].chars().next().map(|c| pos + c.len_utf8()).unwrap_or(pos);
    let mut expected: Vec<String> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(rule_name).map(str::to_string).collect()
        }
        pest::error::ErrorVariant::CustomError { message } => vec![message.clone()],
    };
    expected.sort();
    expected.dedup();
    let next = text[pos..].chars().next();
    let mut message = match next {
        Some(c) => format!("unexpected `{c}`"),
        None => "the query ends too early".to_string(),
    };
    let rest = text[pos..].to_ascii_uppercase();
    if let Some(op) = ["AND", "OR"].iter().find(|op| rest.starts_with(*op)) {
        message = format!("`{op}` needs a filter on each side");
    } else if text[..pos].ends_with(':') && next.is_none_or(char::is_whitespace) {
        message = format!("{message}: a value must follow `:` with no space");
    }
    SrqlError::new(ErrorKind::Syntax, message, Span::new(pos, end)).expected(expected)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Query {
        parse(s).unwrap_or_else(|e| panic!("{}", e.render(s)))
    }

    #[test]
    fn implicit_and_explicit_and_or_precedence() {
        let q = p("a b AND c OR d");
        match q.filter.unwrap() {
            Expr::Or(items, _) => {
                assert_eq!(items.len(), 2);
                assert!(matches!(&items[0], Expr::And(v, _) if v.len() == 3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_of_every_shape() {
        let q = p(r#"a:1 b:"x y" c:(1,2) d:[1 TO 5] e:>=3 f:/ab+/ g:* h:[2026-01-01,] raw.x.y:z"#);
        let Some(Expr::And(items, _)) = q.filter else { panic!() };
        let v: Vec<&Value> = items
            .iter()
            .map(|e| match e {
                Expr::Term(t) => &t.value,
                _ => panic!(),
            })
            .collect();
        assert!(matches!(v[0], Value::Literal(l) if l.text == "1" && !l.quoted));
        assert!(matches!(v[1], Value::Literal(l) if l.text == "x y" && l.quoted));
        assert!(matches!(v[2], Value::List(l, _) if l.len() == 2));
        assert!(matches!(v[3], Value::Range(..)));
        assert!(matches!(v[4], Value::Compare(CmpOp::Ge, ..)));
        assert!(matches!(v[5], Value::Regex(r, _) if r == "ab+"));
        assert!(matches!(v[6], Value::Exists(_)));
        assert!(matches!(v[7], Value::Bracket(s, _) if s.len() == 2 && s[1].is_none()));
    }

    #[test]
    fn paths_are_values_not_regexes() {
        let q = p("process_path:/usr/bin/curl");
        let Some(Expr::Term(t)) = q.filter else { panic!() };
        assert!(matches!(t.value, Value::Literal(l) if l.text == "/usr/bin/curl"));
    }

    #[test]
    fn spans_point_at_the_text() {
        let src = "host:web-01 !user:root";
        let Some(Expr::And(items, _)) = p(src).filter else { panic!() };
        let Expr::Term(t) = &items[1] else { panic!() };
        assert!(t.negated);
        assert_eq!(&src[t.field.span.start..t.field.span.end], "user");
        assert_eq!(&src[t.span.start..t.span.end], "!user:root");
    }

    #[test]
    fn pipes_parse() {
        let q = p(
            r#"kind:process | SIMILAR_TO("reading shadow", k:5, min_score:0.6) | stats count() as n, avg(x) by host | sort -n | head 5"#,
        );
        assert_eq!(q.pipes.len(), 4);
        assert!(matches!(&q.pipes[0], Pipe::SimilarTo { args, .. } if args.len() == 2));
        assert!(matches!(&q.pipes[1], Pipe::Stats(s) if s.aggs.len() == 2 && s.by.len() == 1));
    }

    #[test]
    fn service_radar_stats_forms() {
        let q = p(r#"in:flows stats:"sum(bytes_total) as total_bytes by dst_endpoint_ip" sort:total_bytes:desc"#);
        let Some(Expr::And(items, _)) = q.filter else { panic!() };
        let Expr::Stats(s) = &items[1] else { panic!("{:?}", items[1]) };
        assert_eq!(s.by[0].name, "dst_endpoint_ip");
        let q = p("in:flows stats:sum(bytes_total) as bytes by exporter_name limit:5");
        let Some(Expr::And(items, _)) = q.filter else { panic!() };
        assert!(matches!(&items[1], Expr::Stats(s) if s.aggs[0].alias.as_ref().unwrap().name == "bytes"));
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("host: web").unwrap_err();
        assert_eq!(e.span.start, 5);
        let e = parse("host:a | frobnicate x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownPipe);
        assert_eq!((e.span.start, e.span.end), (9, 19));
        let e = parse("(host:a").unwrap_err();
        assert_eq!((e.span.start, e.message.as_str()), (0, "this `(` is never closed"));
    }
}
