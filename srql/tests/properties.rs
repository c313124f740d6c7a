//! Property tests: printed ASTs re-parse to the same AST; random input never
//! panics; values only ever reach the SQL as parameters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use vigil_srql::ast::*;
use vigil_srql::{compile, parse, Config};

fn sp() -> Span {
    Span::default()
}

fn ident(name: &str) -> Ident {
    Ident { name: name.to_string(), span: sp() }
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("host".to_string()),
        Just("user".to_string()),
        Just("dst_port".to_string()),
        Just("raw.a.b".to_string()),
        "[a-z][a-z0-9_]{0,8}(\\.[a-z][a-z0-9_]{0,5})?",
    ]
}

fn bare_text() -> impl Strategy<Value = String> {
    // No leading `>`/`<`/`*`-alone/`/…/` shapes, which mean something else.
    "[a-z0-9][a-z0-9._*%-]{0,10}".prop_filter("not a keyword", |s| !["and", "or", "not", "to"].contains(&s.as_str()))
}

fn quoted_text() -> impl Strategy<Value = String> {
    "[ -~]{0,12}"
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        bare_text().prop_map(|text| Literal { text, quoted: false, span: sp() }),
        quoted_text().prop_map(|text| Literal { text, quoted: true, span: sp() }),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => literal().prop_map(Value::Literal),
        1 => prop::collection::vec(literal(), 1..4).prop_map(|v| Value::List(v, sp())),
        1 => (literal(), literal()).prop_map(|(a, b)| Value::Range(a, b, sp())),
        1 => (prop_oneof![Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le)], literal())
            .prop_map(|(op, l)| Value::Compare(op, l, sp())),
        1 => "[a-z0-9.+^$]{1,8}".prop_map(|r| Value::Regex(r, sp())),
        1 => Just(Value::Exists(sp())),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        3 => (any::<bool>(), field_name(), value()).prop_map(|(negated, f, value)| Expr::Term(Term {
            negated,
            field: ident(&f),
            value,
            span: sp()
        })),
        1 => "[a-z0-9]{1,8}"
            .prop_filter("not a keyword", |s| !["and", "or", "not"].contains(&s.as_str()))
            .prop_map(|text| Expr::Text(Text { text, phrase: false, span: sp() })),
        1 => quoted_text().prop_map(|text| Expr::Text(Text { text, phrase: true, span: sp() })),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Expr::And(v, sp())),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Expr::Or(v, sp())),
            inner.prop_map(|e| Expr::Not(Box::new(e), sp())),
        ]
    })
}

fn agg() -> impl Strategy<Value = Agg> {
    (
        prop_oneof![Just("count"), Just("avg"), Just("max"), Just("count_distinct")],
        prop::option::of(field_name()),
        prop::option::of("[a-z][a-z0-9_]{0,6}"),
    )
        .prop_map(|(f, arg, alias)| Agg {
            func: ident(f),
            arg: arg.map(|a| ident(&a)),
            alias: alias.map(|a| ident(&a)),
            span: sp(),
        })
}

fn pipe() -> impl Strategy<Value = Pipe> {
    prop_oneof![
        (prop::collection::vec(agg(), 1..3), prop::collection::vec(field_name(), 0..3)).prop_map(|(aggs, by)| {
            Pipe::Stats(StatsSpec { aggs, by: by.iter().map(|b| ident(b)).collect(), span: sp() })
        }),
        prop::option::of(0u64..1000).prop_map(|n| Pipe::Head(n, sp())),
        prop::collection::vec((field_name(), any::<bool>()), 1..3).prop_map(|keys| Pipe::Sort(
            keys.into_iter().map(|(f, descending)| SortKey { field: ident(&f), descending }).collect(),
            sp()
        )),
        prop::collection::vec(field_name(), 1..3)
            .prop_map(|f| Pipe::Fields(f.iter().map(|x| ident(x)).collect(), sp())),
        prop::collection::vec(field_name(), 1..3).prop_map(|f| Pipe::Dedup(f.iter().map(|x| ident(x)).collect(), sp())),
        expr().prop_map(|e| Pipe::Where(e, sp())),
        quoted_text().prop_map(|t| Pipe::SimilarTo {
            text: Literal { text: t, quoted: true, span: sp() },
            args: vec![NamedArg {
                name: ident("k"),
                value: Literal { text: "5".into(), quoted: false, span: sp() },
                span: sp()
            }],
            span: sp(),
        }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (prop::option::of(expr()), prop::collection::vec(pipe(), 0..3))
        .prop_filter("non-empty", |(f, p)| f.is_some() || !p.is_empty())
        .prop_map(|(filter, pipes)| Query { filter, pipes, span: sp() })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printed_queries_reparse_to_the_same_tree(q in query()) {
        let text = q.to_string();
        let back = parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        prop_assert_eq!(&back, &q, "printed as {}", text);
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,80}") {
        let _ = parse(&s);
        let _ = compile(&s, &Config::default(), chrono::Utc::now());
    }

    #[test]
    fn query_shaped_noise_never_panics(s in "[a-z_.:!()\\[\\]\"*%|<>=/ ,0-9-]{0,60}") {
        if let Err(e) = compile(&s, &Config::default(), chrono::Utc::now()) {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= s.len(), "span {:?} outside {:?}", e.span, s);
        }
    }

    #[test]
    fn literals_appear_only_in_parameters(
        words in prop::collection::vec("zq[a-z0-9 ']{1,10}", 1..5),
        fields in prop::collection::vec(prop_oneof![Just("host"), Just("user"), Just("message"), Just("raw.k"), Just("process")], 1..5),
    ) {
        let terms: Vec<String> = fields.iter().zip(&words).map(|(f, w)| format!("{f}:\"{w}\"")).collect();
        let text = format!("{} \"zqphrase {}\" | where host:\"zqw\" | stats count() by user", terms.join(" OR "), words[0]);
        let c = compile(&text, &Config::default(), chrono::Utc::now()).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        prop_assert!(!c.sql.contains("zq"), "a value leaked into SQL: {}", c.sql);
        let rendered: Vec<String> = c.params.iter().map(|p| p.render()).collect();
        for w in words.iter().take(fields.len()) {
            prop_assert!(rendered.iter().any(|p| p.contains(w.as_str())), "{w} missing from params {rendered:?}");
        }
    }
}
