//! Pipe stages: each wraps the stage before it in a new SELECT.

use chrono::Duration;

use super::{q, BlastRadius, Col, GraphDirection, Planner, Similarity, SimilarityPath, Stage};

/// Start points a `| blast_radius` walks from, at most.
pub(crate) const MAX_GRAPH_STARTS: u64 = 100;
/// Hops a `| blast_radius` may ask for, at most.
pub(crate) const MAX_GRAPH_HOPS: u32 = 6;
use crate::ast::*;
use crate::error::{ErrorKind, SrqlError};
use crate::params::Param;
use crate::registry::FieldType;
use crate::time::Window;

impl Planner<'_> {
    pub(super) fn where_pipe(&mut self, stage: Stage, e: &Expr) -> Result<Stage, SrqlError> {
        self.plan.push(format!("where {e}"));
        if stage.is_base {
            let c = self.expr(e, None)?;
            let mut s = stage;
            let joiner = if s.select.contains(" WHERE ") { " AND " } else { " WHERE " };
            s.select = format!("{}{joiner}{c}", s.select);
            return Ok(s);
        }
        let c = self.expr(e, Some(&stage))?;
        let (from, _) = self.wrap(&stage, false);
        Ok(Stage { select: format!("SELECT * FROM {from} WHERE {c}"), is_base: false, ..stage })
    }

    pub(super) fn group_expr(&mut self, stage: &Stage, ident: &Ident) -> Result<(String, FieldType), SrqlError> {
        // Group enums by their label; the id rides along for order and filters.
        if let Some(c) = self.stage_col(stage, &ident.name).filter(|c| matches!(c.ty, FieldType::Enum(_))) {
            return Ok((c.sql.clone(), c.ty));
        }
        let f = self.resolve(ident, Some(stage))?;
        Ok(match &f.json_path {
            Some(p) => (format!("({} #>> {p})", f.sql), FieldType::Keyword),
            None => (f.sql, f.ty),
        })
    }

    pub(super) fn agg_sql(&mut self, stage: &Stage, a: &Agg) -> Result<(String, FieldType, String), SrqlError> {
        let func = a.func.name.to_ascii_lowercase();
        let arg = match &a.arg {
            Some(i) if i.name == "*" => None,
            other => other.clone(),
        };
        let default_name = match &arg {
            None => func.clone(),
            Some(i) => format!("{func}_{}", i.name.replace('.', "_")),
        };
        let name = a.alias.as_ref().map(|i| i.name.clone()).unwrap_or(default_name);
        let need_arg = |this: &mut Self| -> Result<(String, FieldType), SrqlError> {
            let i = arg.as_ref().ok_or_else(|| {
                SrqlError::new(
                    ErrorKind::BadValue,
                    format!("`{}()` needs a field, like `{}(bytes)`", a.func.name, a.func.name),
                    a.span,
                )
            })?;
            let f = this.resolve(i, Some(stage))?;
            Ok(match &f.json_path {
                Some(p) => (
                    format!(
                        "(CASE WHEN jsonb_typeof({c} #> {p}) = 'number' THEN ({c} #>> {p})::float8 END)",
                        c = f.sql
                    ),
                    FieldType::Float,
                ),
                None => (f.sql, f.ty),
            })
        };
        let numeric = |this: &mut Self| -> Result<String, SrqlError> {
            let (sql, ty) = need_arg(this)?;
            if !ty.is_numeric() {
                let i = arg.as_ref().map(|i| i.span).unwrap_or(a.span);
                return Err(SrqlError::new(
                    ErrorKind::BadOperator,
                    format!(
                        "`{}()` needs a number field; `{}` is {}",
                        a.func.name,
                        arg.as_ref().map(|i| i.name.as_str()).unwrap_or(""),
                        ty.name()
                    ),
                    i,
                ));
            }
            Ok(sql)
        };
        let (sql, ty) = match func.as_str() {
            "count" => match &arg {
                None => ("count(*)".to_string(), FieldType::Int),
                Some(_) => (format!("count({})", need_arg(self)?.0), FieldType::Int),
            },
            "count_distinct" | "dc" | "distinct_count" => {
                (format!("count(DISTINCT {})", need_arg(self)?.0), FieldType::Int)
            }
            // float8 so every client reads one numeric type (sum/avg of integers are numeric in SQL).
            "sum" => (format!("sum({})::float8", numeric(self)?), FieldType::Float),
            "avg" | "mean" => (format!("avg({})::float8", numeric(self)?), FieldType::Float),
            "min" | "max" => {
                let (sql, ty) = need_arg(self)?;
                (format!("{func}({sql})"), ty)
            }
            "median" | "p50" | "p90" | "p95" | "p99" => {
                let frac = match func.as_str() {
                    "p90" => "0.9",
                    "p95" => "0.95",
                    "p99" => "0.99",
                    _ => "0.5",
                };
                (format!("percentile_cont({frac}) WITHIN GROUP (ORDER BY {})", numeric(self)?), FieldType::Float)
            }
            _ => {
                const FUNCS: &[&str] =
                    &["count", "count_distinct", "sum", "avg", "min", "max", "median", "p90", "p95", "p99"];
                return Err(SrqlError::new(
                    ErrorKind::UnknownFunction,
                    format!("unknown aggregate `{}()`", a.func.name),
                    a.func.span,
                )
                .expected(FUNCS.iter().map(|f| format!("`{f}()`")))
                .suggest(crate::suggest::nearest(&a.func.name, FUNCS.iter().copied())));
            }
        };
        // sum of integers stays an integer in meaning; numeric types print as numbers either way.
        Ok((sql, ty, name))
    }

    pub(super) fn stats(
        &mut self,
        stage: Stage,
        spec: &StatsSpec,
        bucket: Option<(String, String)>,
    ) -> Result<Stage, SrqlError> {
        if spec.aggs.is_empty() {
            return Err(SrqlError::new(
                ErrorKind::BadValue,
                "stats needs at least one aggregate, like count()",
                spec.span,
            ));
        }
        let mut select = Vec::new();
        let mut cols = Vec::new();
        let mut group = Vec::new();
        if let Some((expr, name)) = &bucket {
            select.push(format!("{expr} AS {}", q(name)));
            cols.push(Col {
                name: name.clone(),
                sql: q(name),
                alias: name.clone(),
                ty: FieldType::Time,
                order_sql: q(name),
            });
            group.push(q(name));
        }
        for (i, b) in spec.by.iter().enumerate() {
            let (sql, ty) = self.group_expr(&stage, b)?;
            let alias = format!("g{i}");
            select.push(format!("{sql} AS {}", q(&alias)));
            // Enum labels keep their natural order (severity: low < high) through a hidden column.
            let mut order_sql = q(&alias);
            if let Some(c) = self.stage_col(&stage, &b.name).filter(|c| c.order_sql != c.sql) {
                let ord = format!("{alias}_order");
                select.push(format!("min({}) AS {}", c.order_sql, q(&ord)));
                order_sql = q(&ord);
            }
            cols.push(Col { name: b.name.clone(), sql: q(&alias), alias: alias.clone(), ty, order_sql });
            group.push(q(&alias));
        }
        for (i, a) in spec.aggs.iter().enumerate() {
            let (sql, ty, name) = self.agg_sql(&stage, a)?;
            if cols.iter().any(|c| c.name == name) {
                return Err(SrqlError::new(
                    ErrorKind::BadValue,
                    format!("two result columns are named `{name}`; name one with `as`"),
                    a.span,
                ));
            }
            let alias = format!("a{i}");
            select.push(format!("{sql} AS {}", q(&alias)));
            cols.push(Col { name, sql: q(&alias), alias: alias.clone(), ty, order_sql: q(&alias) });
        }
        let (from, _) = self.wrap(&stage, false);
        let mut sql = format!("SELECT {} FROM {from}", select.join(", "));
        if !group.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", group.join(", ")));
        }
        // Default order: time buckets ascending, else the first aggregate descending, then the groups.
        let n_groups = spec.by.len() + usize::from(bucket.is_some());
        let mut order: Vec<(String, bool)> = Vec::new();
        if bucket.is_some() {
            order.push((cols[0].sql.clone(), false));
            order.extend(cols[1..n_groups].iter().map(|c| (c.order_sql.clone(), false)));
        } else {
            order.push((cols[n_groups].sql.clone(), true));
            order.extend(cols[..n_groups].iter().map(|c| (c.order_sql.clone(), false)));
        }
        self.plan.push(format!("{} {spec}", if bucket.is_some() { "timechart" } else { "stats" }));
        let time_col = bucket.map(|(_, n)| n);
        Ok(Stage { select: sql, cols, order, is_base: false, time_col })
    }

    pub(super) fn auto_bucket(&self, window: Option<Window>) -> Duration {
        let span = window.map(|w| w.end - w.start).unwrap_or(self.cfg.default_window);
        let steps = [
            Duration::minutes(1),
            Duration::minutes(5),
            Duration::minutes(15),
            Duration::hours(1),
            Duration::hours(6),
            Duration::days(1),
        ];
        steps.into_iter().find(|s| span.num_seconds() / s.num_seconds().max(1) <= 300).unwrap_or(Duration::days(7))
    }

    pub(super) fn timechart(
        &mut self,
        stage: Stage,
        bucket: Option<Duration>,
        spec: &StatsSpec,
        window: Option<Window>,
        span: Span,
    ) -> Result<Stage, SrqlError> {
        let time_col = stage.time_col.clone().ok_or_else(|| {
            SrqlError::new(ErrorKind::BadOperator, "timechart needs a time column, and this stage has none", span)
        })?;
        let time_sql =
            stage.cols.iter().find(|c| c.name == time_col).map(|c| c.sql.clone()).unwrap_or_else(|| q(&time_col));
        let bucket = bucket.unwrap_or_else(|| self.auto_bucket(window));
        if bucket.num_seconds() <= 0 {
            return Err(SrqlError::new(ErrorKind::BadValue, "timechart span must be at least 1s", span));
        }
        let p = self.params.add(Param::Text(format!("{} seconds", bucket.num_seconds())));
        let expr = format!("date_bin({p}::interval, {time_sql}, TIMESTAMPTZ '2000-01-01 00:00:00+00')");
        self.stats(stage, spec, Some((expr, "bucket".to_string())))
    }

    /// `| timechart [span:5m] aggregates [by fields]`.
    pub(super) fn timechart_pipe(
        &mut self,
        stage: Stage,
        args: &[NamedArg],
        stats: &StatsSpec,
        window: Option<Window>,
        span: Span,
    ) -> Result<Stage, SrqlError> {
        if let Some(bad) = args.iter().find(|a| !a.name.name.eq_ignore_ascii_case("span")) {
            return Err(SrqlError::new(
                ErrorKind::BadValue,
                format!("unknown timechart argument `{}`", bad.name.name),
                bad.name.span,
            )
            .expected(["`span:5m`".to_string()]));
        }
        let bucket = match args.iter().find(|a| a.name.name.eq_ignore_ascii_case("span")) {
            Some(a) => Some(crate::time::parse_duration(&a.value.text).ok_or_else(|| {
                SrqlError::new(
                    ErrorKind::BadValue,
                    format!("`{}` is not a duration like 5m or 1h", a.value.text),
                    a.value.span,
                )
            })?),
            None => None,
        };
        self.timechart(stage, bucket, stats, window, span)
    }

    /// `| sort field, -field`: the stage's new order.
    pub(super) fn sort_pipe(&mut self, stage: &mut Stage, keys: &[SortKey]) -> Result<(), SrqlError> {
        stage.order = keys.iter().map(|k| self.order_key(stage, &k.field, k.descending)).collect::<Result<_, _>>()?;
        self.plan.push(format!(
            "sort {}",
            keys.iter()
                .map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.field.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }

    pub(super) fn order_key(&mut self, stage: &Stage, ident: &Ident, desc: bool) -> Result<(String, bool), SrqlError> {
        if let Some(c) = self.stage_col(stage, &ident.name) {
            return Ok((c.order_sql.clone(), desc));
        }
        let f = self.resolve(ident, Some(stage))?;
        // jsonb orders numbers as numbers (text would put "9" after "10").
        Ok((f.json_path.map(|p| format!("({} #> {p})", f.sql)).unwrap_or(f.sql), desc))
    }

    pub(super) fn head(&mut self, stage: Stage, n: u64) -> Stage {
        self.plan.push(format!("head {n}"));
        let inner = self.ordered(&stage, Some(n));
        let alias = self.next_alias();
        Stage { select: format!("SELECT * FROM ({inner}) AS {alias}"), is_base: false, ..stage }
    }

    pub(super) fn dedup(&mut self, stage: Stage, fields: &[Ident]) -> Result<Stage, SrqlError> {
        let keys = fields.iter().map(|f| self.group_expr(&stage, f).map(|(s, _)| s)).collect::<Result<Vec<_>, _>>()?;
        // Keep the first row of each group in the stage's current order.
        let mut order: Vec<String> = keys.clone();
        order.extend(
            stage.order.iter().map(|(c, d)| format!("{c} {}", if *d { "DESC NULLS LAST" } else { "ASC NULLS LAST" })),
        );
        let alias = self.next_alias();
        self.plan.push(format!("dedup {}", fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")));
        let select = format!(
            "SELECT DISTINCT ON ({}) * FROM ({}) AS {alias} ORDER BY {}",
            keys.join(", "),
            stage.select,
            order.join(", ")
        );
        // DISTINCT ON needs its own ORDER BY; wrap again so the outer order is free.
        let outer = self.next_alias();
        Ok(Stage { select: format!("SELECT * FROM ({select}) AS {outer}"), is_base: false, ..stage })
    }

    pub(super) fn fields(&mut self, stage: Stage, fields: &[Ident]) -> Result<Stage, SrqlError> {
        let mut cols = Vec::new();
        let mut select = Vec::new();
        for f in fields {
            let c = self.stage_col(&stage, &f.name).cloned().ok_or_else(|| {
                SrqlError::new(
                    ErrorKind::UnknownField,
                    format!("no column `{}` at this point of the pipeline", f.name),
                    f.span,
                )
                .suggest(crate::suggest::nearest(&f.name, stage.cols.iter().map(|c| c.name.as_str())))
            })?;
            if !cols.iter().any(|x: &Col| x.alias == c.alias) {
                select.push(c.sql.clone());
                // An enum's id column stays (hidden) so later filters and sorts can use it.
                if c.order_sql != c.sql && !select.contains(&c.order_sql) {
                    select.push(c.order_sql.clone());
                }
                cols.push(c);
            }
        }
        // Keep the columns the current order needs (e.g. severity_id) out of the output but in the select.
        for (o, _) in &stage.order {
            if !cols.iter().any(|c| &c.sql == o) && !select.contains(o) {
                select.push(o.clone());
            }
        }
        self.plan.push(format!("fields {}", fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")));
        let (from, _) = self.wrap(&stage, false);
        let time_col = stage.time_col.clone().filter(|t| cols.iter().any(|c| &c.name == t));
        Ok(Stage {
            select: format!("SELECT {} FROM {from}", select.join(", ")),
            cols,
            order: stage.order,
            is_base: false,
            time_col,
        })
    }

    /// `SIMILAR_TO("text", k:N, min_score:X)`: the `k` events of the left
    /// side nearest to the text, with their `score`, on the path the executor
    /// chose (`Config::similarity_path`).
    pub(super) fn similar(
        &mut self,
        stage: Stage,
        text: &Literal,
        args: &[NamedArg],
        span: Span,
    ) -> Result<(Stage, Similarity), SrqlError> {
        self.similar_applies(&stage, text, span)?;
        let (k, min_score) = self.similar_args(args)?;
        let candidates_params = self.params.0.len();
        let candidates_sql = stage.select.clone();
        let check_sql = self.similar_check_sql(&stage, candidates_params);
        let path = self.cfg.similarity_path;
        // With BM25-ranked free text on the left, both rankings are fused
        // (reciprocal rank fusion) over a wider set of neighbours.
        let fuse = stage.cols.iter().any(|c| c.alias == "text_score");
        let neighbours = if fuse { (k * 4).min(self.cfg.max_k * 4) } else { k };
        let select = self.nearest_select(&stage, &text.text, path, neighbours, min_score);
        let outer = self.next_alias();
        let mut cols = stage.cols.clone();
        cols.push(float_col("score"));
        self.plan.push(format!(
            "similar to {:?} (k {k}{}) by {}",
            text.text,
            min_score.map(|m| format!(", min_score {m}")).unwrap_or_default(),
            match path {
                SimilarityPath::Exact => "exact cosine distance over the candidates' vectors",
                SimilarityPath::Indexed => "the HNSW index (iterative scan) over distinct texts",
            }
        ));
        let (select, order) = if fuse {
            cols.push(float_col("rrf"));
            self.plan.push(format!(
                "rank by reciprocal rank fusion of BM25 and similarity (k=60) over the {neighbours} nearest"
            ));
            (
                format!(
                    "SELECT *, 1.0::float8 / (60 + rank() OVER (ORDER BY \"text_score\" DESC)) \
                     + 1.0::float8 / (60 + rank() OVER (ORDER BY \"score\" DESC)) AS \"rrf\" FROM ({select}) AS {outer}"
                ),
                vec![(q("rrf"), true), (q("score"), true)],
            )
        } else {
            (format!("SELECT * FROM ({select}) AS {outer}"), vec![(q("score"), true)])
        };
        let stage = Stage { select, cols, order, is_base: false, time_col: stage.time_col };
        Ok((
            stage,
            Similarity {
                text: text.text.clone(),
                k,
                neighbours,
                min_score,
                path,
                candidates_sql,
                candidates_params,
                check_sql,
            },
        ))
    }

    /// Whether `SIMILAR_TO` can search the left side: events that have
    /// vectors, and some text to compare them with.
    fn similar_applies(&self, stage: &Stage, text: &Literal, span: Span) -> Result<(), SrqlError> {
        if !self.entity.similarity {
            return Err(SrqlError::new(
                ErrorKind::NotAvailable,
                format!("`SIMILAR_TO` searches event embeddings; `in:{}` has none", self.entity.name),
                span,
            ));
        }
        let has = |n: &str| stage.cols.iter().any(|c| c.alias == n);
        if !(has("event_id") && has("time")) {
            return Err(SrqlError::new(
                ErrorKind::BadOperator,
                "`SIMILAR_TO` needs events (with event_id and time); it cannot follow stats or fields that drop them",
                span,
            ));
        }
        if text.text.trim().is_empty() {
            return Err(SrqlError::new(ErrorKind::BadValue, "`SIMILAR_TO` needs some text to compare with", text.span));
        }
        Ok(())
    }

    /// `k` (capped at the configured most, with a warning) and `min_score`.
    fn similar_args(&mut self, args: &[NamedArg]) -> Result<(u64, Option<f64>), SrqlError> {
        let mut k = self.cfg.default_k;
        let mut min_score = None;
        for a in args {
            match a.name.name.to_ascii_lowercase().as_str() {
                "k" => {
                    k = a.value.text.parse().map_err(|_| {
                        SrqlError::new(
                            ErrorKind::BadValue,
                            format!("k must be a whole number, not `{}`", a.value.text),
                            a.value.span,
                        )
                    })?;
                    if k == 0 {
                        return Err(SrqlError::new(ErrorKind::BadValue, "k must be at least 1", a.value.span));
                    }
                    if k > self.cfg.max_k {
                        self.warnings.push(format!("k {k} capped at {}", self.cfg.max_k));
                        k = self.cfg.max_k;
                    }
                }
                "min_score" => {
                    let x: f64 = a.value.text.parse().map_err(|_| {
                        SrqlError::new(
                            ErrorKind::BadValue,
                            format!("min_score must be a number, not `{}`", a.value.text),
                            a.value.span,
                        )
                    })?;
                    if !(-1.0..=1.0).contains(&x) {
                        return Err(SrqlError::new(
                            ErrorKind::BadValue,
                            "min_score is a cosine similarity between -1 and 1",
                            a.value.span,
                        ));
                    }
                    min_score = Some(x);
                }
                _ => {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        format!("unknown SIMILAR_TO argument `{}`", a.name.name),
                        a.name.span,
                    )
                    .expected(["`k:50`".to_string(), "`min_score:0.6`".to_string()]))
                }
            }
        }
        Ok((k, min_score))
    }

    /// The HNSW path's filter check ([`Similarity::check_sql`]): which of a
    /// list of (event_id, time) pairs the left side keeps, from the
    /// candidates' parameters, then the two arrays.
    fn similar_check_sql(&mut self, stage: &Stage, candidates_params: usize) -> String {
        let check_alias = self.next_alias();
        format!(
            "SELECT {c}.\"event_id\", {c}.\"time\" FROM ({left}) AS {c} \
             JOIN unnest(${ids}::uuid[], ${times}::timestamptz[]) AS r(event_id, time) \
             ON {c}.\"event_id\" = r.event_id AND {c}.\"time\" = r.time",
            c = check_alias,
            left = stage.select,
            ids = candidates_params + 1,
            times = candidates_params + 2,
        )
    }

    /// The left side's `neighbours` events nearest to `text`, best first,
    /// with a `score` column.
    fn nearest_select(
        &mut self,
        stage: &Stage,
        text: &str,
        path: SimilarityPath,
        neighbours: u64,
        min_score: Option<f64>,
    ) -> String {
        let a = self.next_alias();
        // Only the exact path compares vectors in SQL (an unused parameter
        // would be an error, so the HNSW path binds none).
        let (vec_param, model) = match path {
            SimilarityPath::Exact => {
                (self.params.add(Param::Embedding(text.to_string())), self.params.add(Param::EmbeddingModel))
            }
            SimilarityPath::Indexed => (String::new(), String::new()),
        };
        let k_param = self.params.add(Param::Int(neighbours as i64));
        let min_param = min_score.map(|m| self.params.add(Param::Float(m)));
        let min_cond = |distance: &str| match &min_param {
            Some(m) => format!(" AND 1 - ({distance}) >= {m}"),
            None => String::new(),
        };
        // Vectors live once per distinct normalised text (embedding_texts);
        // event_embeddings says which event carries which text.
        let join_vectors = format!(
            "JOIN event_embeddings AS v ON v.event_id = {a}.\"event_id\" AND v.time = {a}.\"time\" \
             JOIN embedding_texts AS t ON t.id = v.text_id AND t.model = {model}"
        );
        match path {
            SimilarityPath::Exact => format!(
                "SELECT {a}.*, 1 - (t.embedding <=> {vec_param}) AS \"score\" FROM ({left}) AS {a} {join_vectors} \
                 WHERE TRUE{min} ORDER BY t.embedding <=> {vec_param}, {a}.\"time\" DESC LIMIT {k_param}",
                left = stage.select,
                min = min_cond(&format!("t.embedding <=> {vec_param}")),
            ),
            // The HNSW scan keeps going (hnsw.iterative_scan) until it has k
            // texts that some candidate event carries; their events follow.
            // The executor walks the HNSW index over texts and, per text, the
            // newest events carrying it, checking them against the left side
            // (check_sql) until it has k; this SQL returns those events.
            SimilarityPath::Indexed => {
                let ids = self.params.add(Param::SimilarIds);
                let times = self.params.add(Param::SimilarTimes);
                let scores = self.params.add(Param::SimilarScores);
                format!(
                    "SELECT {a}.*, r.score AS \"score\" FROM ({left}) AS {a} \
                     JOIN unnest({ids}, {times}, {scores}) AS r(event_id, time, score) \
                     ON {a}.\"event_id\" = r.event_id AND {a}.\"time\" = r.time \
                     WHERE TRUE{min} ORDER BY r.score DESC, {a}.\"time\" DESC LIMIT {k_param}",
                    left = stage.select,
                    min = min_param.as_ref().map(|m| format!(" AND r.score >= {m}")).unwrap_or_default(),
                )
            }
        }
    }

    /// `| cluster [threshold]`: one row per distinct embedded text among the
    /// left side's events; the executor merges similar texts into groups.
    pub(super) fn cluster(
        &mut self,
        stage: Stage,
        threshold: Option<&Literal>,
        span: Span,
    ) -> Result<(Stage, f64), SrqlError> {
        if !self.entity.similarity {
            return Err(SrqlError::new(
                ErrorKind::NotAvailable,
                format!("`| cluster` groups events by their embeddings; `in:{}` has none", self.entity.name),
                span,
            ));
        }
        let has = |n: &str| stage.cols.iter().any(|c| c.alias == n);
        if !(has("event_id") && has("time")) {
            return Err(SrqlError::new(
                ErrorKind::BadOperator,
                "`| cluster` needs events (with event_id and time); it cannot follow stats or fields that drop them",
                span,
            ));
        }
        let threshold = match threshold {
            None => 0.8,
            Some(l) => {
                let x: f64 = l.text.parse().map_err(|_| {
                    SrqlError::new(
                        ErrorKind::BadValue,
                        format!("the cluster threshold is a cosine similarity like 0.8, not `{}`", l.text),
                        l.span,
                    )
                })?;
                if !(x > 0.0 && x <= 1.0) {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        "the cluster threshold is a cosine similarity above 0 and at most 1",
                        l.span,
                    ));
                }
                x
            }
        };
        let model = self.params.add(Param::EmbeddingModel);
        let a = self.next_alias();
        // Grouping by the primary key lets the text and vector be selected.
        let select = format!(
            "SELECT t.id AS \"text_id\", t.text AS \"pattern\", t.embedding::real[] AS \"embedding\", \
             count(*) AS \"count\", min({a}.\"time\") AS \"first_seen\", max({a}.\"time\") AS \"last_seen\", \
             (array_agg({a}.\"event_id\" ORDER BY {a}.\"time\" DESC))[1] AS \"example_event_id\" \
             FROM ({left}) AS {a} LEFT JOIN event_embeddings AS v ON v.event_id = {a}.\"event_id\" AND v.time = {a}.\"time\" \
             LEFT JOIN embedding_texts AS t ON t.id = v.text_id AND t.model = {model} GROUP BY t.id",
            left = stage.select
        );
        let col = |name: &str, ty: FieldType| Col {
            name: name.into(),
            sql: q(name),
            alias: name.into(),
            ty,
            order_sql: q(name),
        };
        let cols = vec![
            col("pattern", FieldType::Text),
            col("count", FieldType::Int),
            col("texts", FieldType::Int),
            col("first_seen", FieldType::Time),
            col("last_seen", FieldType::Time),
            col("example_event_id", FieldType::Uuid),
        ];
        self.plan.push(format!("cluster texts by embedding (cosine >= {threshold})"));
        Ok((Stage { select, cols, order: vec![(q("count"), true)], is_base: false, time_col: None }, threshold))
    }

    /// `| blast_radius hops:N direction:out|in|both port:P protocol:X`: the
    /// distinct hosts (or source IPs) of the left side become the start
    /// points of a walk over the connection graph, which the executor does.
    pub(super) fn blast_radius(
        &mut self,
        stage: Stage,
        args: &[NamedArg],
        span: Span,
    ) -> Result<(Stage, BlastRadius), SrqlError> {
        // A host name where the row has one, else its (source) address:
        // network sensors report addresses only.
        let sources: Vec<&Col> =
            ["host", "src_ip", "ip"].iter().filter_map(|n| stage.cols.iter().find(|c| c.alias == *n)).collect();
        if sources.is_empty() {
            return Err(SrqlError::new(
                ErrorKind::BadOperator,
                "`| blast_radius` starts from hosts: the left side needs a host, src_ip or ip column",
                span,
            ));
        }
        let start_column = sources.iter().map(|c| c.alias.as_str()).collect::<Vec<_>>().join(" or ");
        let b = blast_args(args, start_column.clone())?;
        let a = self.next_alias();
        let exprs: Vec<String> = sources
            .iter()
            .map(|c| {
                let col = format!("{a}.{}", q(&c.alias));
                // host() drops the /32 an inet's text form carries.
                if c.ty == FieldType::Ip {
                    format!("host({col})")
                } else {
                    format!("{col}::text")
                }
            })
            .collect();
        let start = if exprs.len() == 1 { exprs[0].clone() } else { format!("coalesce({})", exprs.join(", ")) };
        let select = format!(
            "SELECT DISTINCT {start} AS \"start\" FROM ({left}) AS {a} WHERE {start} IS NOT NULL",
            left = stage.select
        );
        self.plan.push(format!(
            "blast radius: distinct {start_column} of the left side (at most {MAX_GRAPH_STARTS}), then {} hop(s) {} over the connection graph{}{}",
            b.hops,
            match b.direction {
                GraphDirection::Out => "outbound",
                GraphDirection::In => "inbound",
                GraphDirection::Both => "both ways",
            },
            if b.ports.is_empty() { String::new() } else { format!(", ports {:?}", b.ports) },
            if b.protocols.is_empty() { String::new() } else { format!(", protocols {:?}", b.protocols) },
        ));
        let cols = vec![Col {
            name: "start".into(),
            sql: q("start"),
            alias: "start".into(),
            ty: FieldType::Text,
            order_sql: q("start"),
        }];
        Ok((Stage { select, cols, order: vec![(q("start"), false)], is_base: false, time_col: None }, b))
    }
}

/// The arguments of a `| blast_radius`, with the defaults (2 hops, outbound).
fn blast_args(args: &[NamedArg], start_column: String) -> Result<BlastRadius, SrqlError> {
    let mut b = BlastRadius {
        hops: 2,
        direction: GraphDirection::Out,
        ports: Vec::new(),
        protocols: Vec::new(),
        start_column,
        limit: 0,
    };
    for a in args {
        let v = &a.value;
        match a.name.name.to_ascii_lowercase().as_str() {
            "hops" => {
                b.hops = v.text.parse().ok().filter(|h| (1..=MAX_GRAPH_HOPS).contains(h)).ok_or_else(|| {
                    SrqlError::new(
                        ErrorKind::BadValue,
                        format!("hops is a whole number from 1 to {MAX_GRAPH_HOPS}, not `{}`", v.text),
                        v.span,
                    )
                })?
            }
            "direction" => {
                b.direction = match v.text.to_ascii_lowercase().as_str() {
                    "out" | "outbound" => GraphDirection::Out,
                    "in" | "inbound" => GraphDirection::In,
                    "both" => GraphDirection::Both,
                    _ => {
                        return Err(SrqlError::new(
                            ErrorKind::BadValue,
                            format!("direction is out, in or both, not `{}`", v.text),
                            v.span,
                        )
                        .expected(["out".to_string(), "in".to_string(), "both".to_string()]))
                    }
                }
            }
            "port" => b.ports.push(v.text.parse().map_err(|_| {
                SrqlError::new(
                    ErrorKind::BadValue,
                    format!("port is a number from 0 to 65535, not `{}`", v.text),
                    v.span,
                )
            })?),
            "protocol" | "proto" => b.protocols.push(v.text.to_ascii_lowercase()),
            other => {
                return Err(SrqlError::new(
                    ErrorKind::BadValue,
                    format!("unknown blast_radius argument `{other}`"),
                    a.name.span,
                )
                .expected(["hops", "direction", "port", "protocol"].map(String::from)))
            }
        }
    }
    Ok(b)
}

/// A float column the stage computes under `name`.
fn float_col(name: &str) -> Col {
    Col { name: name.into(), sql: q(name), alias: name.into(), ty: FieldType::Float, order_sql: q(name) }
}
