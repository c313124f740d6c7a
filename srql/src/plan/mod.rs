//! The planner: a checked [`Query`] becomes a chain of SQL stages. The search
//! part (filters, time window) is the base `SELECT`; each pipe wraps the
//! previous stage; `sort:`/`limit:` shape the final result.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::ast::*;
use crate::cond::{self, like_pattern, Resolved};
use crate::error::{ErrorKind, SrqlError};
use crate::params::{Param, Params};
use crate::registry::{self, EntityDef, FieldDef, FieldType};
use crate::time;

mod directives;
mod pipes;
mod rollup;

use directives::{literal_of, merge_stats, no_directives, split_directives};

/// Limits and defaults the planner applies.
#[derive(Debug, Clone)]
pub struct Config {
    /// Window searched when a query names no time.
    pub default_window: Duration,
    /// Longest window a query may search.
    pub max_span: Duration,
    /// Rows returned when a query names no limit.
    pub default_limit: u64,
    /// Most rows any query may return; larger limits are capped.
    pub max_limit: u64,
    /// `SIMILAR_TO` neighbours when `k` is not given, and its cap.
    pub default_k: u64,
    pub max_k: u64,
    /// How `SIMILAR_TO` reaches the vectors. The executor picks it from the
    /// estimated number of candidate events and compiles again when it differs.
    pub similarity_path: SimilarityPath,
    /// Whether free text on events runs in the BM25 index (ranked, with a
    /// `text_score` column) instead of an ILIKE scan. The executor turns it
    /// on when it has the index.
    pub text_index: bool,
    /// Only rows stored in this ingestion window, `ingested_at > start AND
    /// ingested_at <= end` (bound parameters): what a scheduled hunt's run
    /// covers. A query that names no `time:` then gets no event-time window
    /// (late events still match); an entity without `ingested_at` is an error.
    pub ingested_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The metric rollup boundary (docs/retention.md): `metric` events
    /// before it were moved into hourly `metric_rollups` rows. A
    /// `kind:metric | timechart` whose window reaches before it reads those
    /// rows too; the executor reads the boundary from the database.
    pub rollup_before: Option<DateTime<Utc>>,
}

/// The two ways `SIMILAR_TO` finds neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimilarityPath {
    /// Exact cosine distance over every candidate event's vector: right for a
    /// selective left side.
    #[default]
    Exact,
    /// The HNSW index over distinct texts, nearest first, each text's newest
    /// events checked against the left side until `k` match: right for a
    /// broad left side.
    Indexed,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_window: Duration::hours(24),
            max_span: Duration::days(90),
            default_limit: 100,
            max_limit: 10_000,
            default_k: 50,
            max_k: 1_000,
            similarity_path: SimilarityPath::Exact,
            text_index: false,
            ingested_window: None,
            rollup_before: None,
        }
    }
}

/// A result column: its name for users and its alias in the SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    /// The column's name in the SQL result (a registry name or `aN`).
    pub alias: String,
    #[serde(rename = "type")]
    pub ty: &'static str,
}

/// How a result is best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visualization {
    Table,
    Stats,
    Timechart,
    Similarity,
    Cluster,
    /// Nodes reached over the connection graph (`| blast_radius`).
    Graph,
}

/// Which way a `| blast_radius` follows connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphDirection {
    /// From the start to what it connected to.
    Out,
    /// From what connected to the start.
    In,
    Both,
}

/// A `| blast_radius`: the SQL returns the distinct start points (column
/// `start`: host names or IPs) of the left side; the executor walks the
/// connection graph from them and returns up to `limit` reached nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlastRadius {
    pub hops: u32,
    pub direction: GraphDirection,
    /// Only connections to these ports (empty: any).
    pub ports: Vec<u16>,
    /// Only these protocols (empty: any).
    pub protocols: Vec<String>,
    /// The left side's column the start points come from.
    pub start_column: String,
    /// Rows (reached nodes) returned.
    pub limit: u64,
}

/// A `| cluster`: the SQL returns one row per distinct embedded text (with its
/// vector, count and time span); the executor merges texts whose cosine
/// similarity reaches `threshold` and returns `limit` groups, largest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    pub threshold: f64,
    pub limit: u64,
}

/// A `SIMILAR_TO` the executor must embed before running the SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Similarity {
    pub text: String,
    /// Rows returned.
    pub k: u64,
    /// Neighbours the similarity stage finds (more than `k` when fused with BM25).
    pub neighbours: u64,
    pub min_score: Option<f64>,
    /// The path this SQL was compiled for.
    pub path: SimilarityPath,
    /// The left side's SQL: what the executor estimates the candidate count from.
    pub candidates_sql: String,
    /// How many of the query's parameters (from the first) `candidates_sql` uses.
    pub candidates_params: usize,
    /// Keeps the (event_id, time) pairs of two array parameters bound after
    /// the first `candidates_params` that the left side matches: the HNSW
    /// path's filter check.
    pub check_sql: String,
}

/// A compiled query: SQL, its parameters, and what it returns.
#[derive(Debug, Clone, Serialize)]
pub struct Compiled {
    pub entity: &'static str,
    pub sql: String,
    pub params: Vec<Param>,
    pub columns: Vec<Column>,
    /// Human-readable plan steps, for `explain`.
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub visualization: Visualization,
    pub similarity: Option<Similarity>,
    pub cluster: Option<Cluster>,
    pub blast_radius: Option<BlastRadius>,
    pub limit: u64,
    /// For counting what a query matches beyond the page it returns: its rows
    /// before the final order and limit, as a `SELECT` over parameters
    /// `$1..$count_params` of [`Compiled::params`]. `None` where rows are not
    /// plain filtered or aggregated rows (`SIMILAR_TO`, cluster, blast radius).
    pub count_sql: Option<String>,
    pub count_params: usize,
}

// ------------------------------------------------------------ stages

#[derive(Debug, Clone)]
struct Col {
    name: String,
    /// SQL reference to the column in the next stage (quoted alias).
    sql: String,
    alias: String,
    ty: FieldType,
    /// What to order by for this column (enum columns order by their id).
    order_sql: String,
}

#[derive(Debug, Clone)]
struct Stage {
    /// `SELECT … FROM … [WHERE …]` without ORDER BY/LIMIT.
    select: String,
    cols: Vec<Col>,
    /// Current logical order: (order expression, descending).
    order: Vec<(String, bool)>,
    /// Whether this stage is still the entity's base select (filters merge in).
    is_base: bool,
    /// Name of a time column usable by `timechart`.
    time_col: Option<String>,
}

struct Planner<'a> {
    cfg: &'a Config,
    now: DateTime<Utc>,
    entity: &'static EntityDef,
    params: Params,
    plan: Vec<String>,
    warnings: Vec<String>,
    stage_no: usize,
}

/// Compiles SRQL text to SQL. `now` anchors relative times.
pub fn compile(text: &str, cfg: &Config, now: DateTime<Utc>) -> Result<Compiled, SrqlError> {
    let q = crate::parse::parse(text)?;
    compile_query(&q, cfg, now)
}

/// Compiles a parsed query.
pub fn compile_query(q: &Query, cfg: &Config, now: DateTime<Utc>) -> Result<Compiled, SrqlError> {
    let (d, filters) = split_directives(q.filter.as_ref())?;
    let mut entity = &registry::ENTITIES[0];
    for t in &d.entities {
        let l = literal_of(t, "an entity name like `in:events`")?;
        entity = registry::entity(&l.text).ok_or_else(|| {
            SrqlError::new(ErrorKind::UnknownEntity, format!("unknown entity `{}`", l.text), l.span)
                .expected(registry::ENTITIES.iter().map(|e| format!("`in:{}`", e.name)))
                .suggest(crate::suggest::nearest(&l.text, registry::entity_names()))
        })?;
    }
    if d.bucket.is_none() {
        if let Some(t) = d.agg.or(d.value_field).or(d.series) {
            return Err(SrqlError::new(
                ErrorKind::BadValue,
                format!("`{}:` only applies with `bucket:` (e.g. bucket:5m agg:avg value_field:x)", t.field.name),
                t.span,
            ));
        }
    } else if let (Some(b), false) = (d.bucket, d.stats.is_empty()) {
        return Err(SrqlError::new(ErrorKind::BadValue, "use either `bucket:` or `stats:`, not both", b.span));
    }
    let mut p = Planner {
        cfg,
        now,
        entity,
        params: Params::default(),
        plan: vec![format!("scan {} ({})", entity.name, entity.table)],
        warnings: Vec::new(),
        stage_no: 0,
    };

    // Base stage: filters and the time window.
    let mut conds: Vec<String> = entity.base_filter.iter().map(|s| s.to_string()).collect();
    let window = if cfg.ingested_window.is_some() && d.time.is_empty() { None } else { p.window(&d.time)? };
    if let Some((after, until)) = cfg.ingested_window {
        let col = entity.field("ingested_at").map(|f| f.column).ok_or_else(|| {
            SrqlError::new(
                ErrorKind::BadValue,
                format!("`in:{}` has no ingestion time to run by", entity.name),
                q.filter.as_ref().map(|f| f.span()).unwrap_or_default(),
            )
        })?;
        conds.push(format!(
            "{col} > {} AND {col} <= {}",
            p.params.add(Param::Time(after)),
            p.params.add(Param::Time(until))
        ));
        p.plan.push(format!("ingested in ({} .. {}]", after.to_rfc3339(), until.to_rfc3339()));
    }
    if let (Some(w), Some(tf)) = (window, entity.time_field) {
        let col = entity.field(tf).map(|f| f.column).unwrap_or(tf);
        conds.push(format!(
            "{col} >= {} AND {col} < {}",
            p.params.add(Param::Time(w.start)),
            p.params.add(Param::Time(w.end))
        ));
        p.plan.push(format!("time window {} .. {}", w.start.to_rfc3339(), w.end.to_rfc3339()));
    }
    // The first top-level free text ranks the rows (a join with the BM25
    // hits); any other free text is a plain membership test.
    let mut ranked_text = None;
    for f in &filters {
        if let (Expr::Text(t), true, None) = (f, cfg.text_index && entity.similarity, &ranked_text) {
            let (text, phrase) = (t.text.clone(), t.phrase);
            ranked_text = Some((
                p.params.add(Param::TextIds { text: text.clone(), phrase }),
                p.params.add(Param::TextTimes { text: text.clone(), phrase }),
                p.params.add(Param::TextScores { text, phrase }),
            ));
            continue;
        }
        let c = p.expr(f, None)?;
        conds.push(c);
    }
    if !filters.is_empty() {
        p.plan.push(format!("filter: {}", filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" AND ")));
    }
    let directives_apply = !d.stats.is_empty() || d.bucket.is_some() || d.having.is_some() || ranked_text.is_some();
    let rollup = p.rollup_plan(q, &filters, directives_apply, window);
    let mut visualization = Visualization::Table;
    // Rolled-up metrics: the first pipe (a timechart) reads raw and rollup rows.
    let first_pipe = usize::from(rollup.is_some());
    let mut stage = match rollup {
        Some(r) => {
            visualization = Visualization::Timechart;
            p.rollup_timechart(&conds, r)
        }
        None => p.base_stage(&conds),
    };
    if let Some((ids, times, scores)) = ranked_text {
        p.rank_by_text(&mut stage, &ids, &times, &scores);
    }
    let mut similarity = None;
    let mut cluster_threshold = None;
    let mut blast = None;

    // ServiceRadar-style aggregation directives run first, then pipes in order.
    if !d.stats.is_empty() {
        let merged = merge_stats(&d.stats)?;
        stage = p.stats(stage, &merged, None)?;
        visualization = Visualization::Stats;
    } else if let Some(bucket) = d.bucket {
        stage = p.bucket_directive(stage, bucket, &d)?;
        visualization = Visualization::Timechart;
    }
    if let Some(h) = d.having {
        stage = p.having(stage, h)?;
    }
    for (i, pipe) in q.pipes.iter().enumerate().skip(first_pipe) {
        match pipe {
            Pipe::Where(e, _) => {
                no_directives(e, true)?;
                stage = p.where_pipe(stage, e)?;
            }
            Pipe::Stats(s) => {
                stage = p.stats(stage, s, None)?;
                visualization = Visualization::Stats;
            }
            Pipe::Timechart { args, stats, span } => {
                let span_arg = args.iter().find(|a| a.name.name.eq_ignore_ascii_case("span"));
                if let Some(bad) = args.iter().find(|a| !a.name.name.eq_ignore_ascii_case("span")) {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        format!("unknown timechart argument `{}`", bad.name.name),
                        bad.name.span,
                    )
                    .expected(["`span:5m`".to_string()]));
                }
                let bucket = match span_arg {
                    Some(a) => Some(time::parse_duration(&a.value.text).ok_or_else(|| {
                        SrqlError::new(
                            ErrorKind::BadValue,
                            format!("`{}` is not a duration like 5m or 1h", a.value.text),
                            a.value.span,
                        )
                    })?),
                    None => None,
                };
                stage = p.timechart(stage, bucket, stats, window, *span)?;
                visualization = Visualization::Timechart;
            }
            Pipe::Sort(keys, _) => {
                let order =
                    keys.iter().map(|k| p.order_key(&stage, &k.field, k.descending)).collect::<Result<_, _>>()?;
                stage.order = order;
                p.plan.push(format!(
                    "sort {}",
                    keys.iter()
                        .map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.field.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Pipe::Head(n, _) => {
                let n = n.unwrap_or(10);
                stage = p.head(stage, n);
            }
            Pipe::Dedup(fields, _) => stage = p.dedup(stage, fields)?,
            Pipe::Fields(fields, _) => stage = p.fields(stage, fields)?,
            Pipe::SimilarTo { text, args, span } => {
                let (s, sim) = p.similar(stage, text, args, *span)?;
                stage = s;
                similarity = Some(sim);
                visualization = Visualization::Similarity;
            }
            Pipe::Cluster(threshold, span) => {
                if i + 1 < q.pipes.len() {
                    return Err(SrqlError::new(
                        ErrorKind::BadOperator,
                        "`| cluster` must be the last stage",
                        q.pipes[i + 1].span(),
                    ));
                }
                let (s, threshold) = p.cluster(stage, threshold.as_ref(), *span)?;
                stage = s;
                cluster_threshold = Some(threshold);
                visualization = Visualization::Cluster;
            }
            Pipe::BlastRadius(args, span) => {
                if i + 1 < q.pipes.len() {
                    return Err(SrqlError::new(
                        ErrorKind::BadOperator,
                        "`| blast_radius` must be the last stage",
                        q.pipes[i + 1].span(),
                    ));
                }
                let (s, b) = p.blast_radius(stage, args, *span)?;
                stage = s;
                blast = Some(b);
                visualization = Visualization::Graph;
            }
        }
    }

    // Final shape: sort directive, then limit.
    if let Some(t) = d.sort {
        stage.order = p.sort_directive(&stage, t)?;
    }
    let mut cluster = None;
    let limit = match (d.limit, visualization, &similarity) {
        (t, Visualization::Graph, _) => {
            // The SQL returns start points (at most MAX_GRAPH_STARTS); `limit` counts reached nodes.
            let reached = p.limit(t)?;
            if let Some(b) = blast.as_mut() {
                b.limit = reached;
            }
            pipes::MAX_GRAPH_STARTS
        }
        (t, Visualization::Cluster, _) => {
            // The SQL returns distinct texts (up to max_limit); `limit` counts groups.
            cluster = cluster_threshold.map(|threshold| Cluster { threshold, limit: 0 });
            let groups = p.limit(t)?;
            if let Some(c) = cluster.as_mut() {
                c.limit = groups;
            }
            cfg.max_limit
        }
        (None, Visualization::Timechart, _) => cfg.max_limit,
        (None, _, Some(sim)) => sim.k,
        (t, ..) => p.limit(t)?,
    };
    let count_sql = (similarity.is_none() && cluster.is_none() && blast.is_none())
        .then(|| format!("SELECT 1 FROM ({}) AS counted", stage.select));
    // The count reads the rows without their final order, so a parameter
    // only the order uses (a JSON sort key, `sort:raw.orig_bytes:desc`) is
    // not in its SQL: it takes the parameters up to the last one it names,
    // and there is no count when it skips one before that (PostgreSQL cannot
    // type a parameter its statement never mentions).
    let (count_sql, count_params) = match count_sql.map(|sql| (placeholders(&sql), sql)) {
        Some((used, sql)) if used.iter().enumerate().all(|(i, n)| *n == i + 1) => (Some(sql), used.len()),
        _ => (None, 0),
    };
    let sql = p.finish(&stage, limit);
    let columns =
        stage.cols.iter().map(|c| Column { name: c.name.clone(), alias: c.alias.clone(), ty: c.ty.name() }).collect();
    Ok(Compiled {
        entity: entity.name,
        sql,
        params: p.params.0,
        columns,
        plan: p.plan,
        warnings: p.warnings,
        window: window.map(|w| (w.start, w.end)),
        visualization,
        similarity,
        cluster,
        blast_radius: blast,
        limit,
        count_sql,
        count_params,
    })
}

/// The distinct `$n` placeholders of generated SQL, in increasing order (the
/// SQL holds no literals: values are parameters, names come from the registry).
fn placeholders(sql: &str) -> Vec<usize> {
    let mut found = std::collections::BTreeSet::new();
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if let Ok(n) = rest[..digits].parse::<usize>() {
            found.insert(n);
        }
        rest = &rest[digits..];
    }
    found.into_iter().collect()
}

/// A quoted SQL alias: registry names and generated `aN` only.
fn q(alias: &str) -> String {
    format!("\"{alias}\"")
}

/// Each entity's base projection (every field, enum labels included) and
/// its columns, built once: it is the same for every query.
fn base_projection(e: &'static EntityDef) -> &'static (String, Vec<Col>) {
    static CACHE: std::sync::OnceLock<Vec<(String, Vec<Col>)>> = std::sync::OnceLock::new();
    let all = CACHE.get_or_init(|| registry::ENTITIES.iter().map(build_projection).collect());
    let i = registry::ENTITIES.iter().position(|x| std::ptr::eq(x, e)).unwrap_or(0);
    &all[i]
}

fn build_projection(e: &EntityDef) -> (String, Vec<Col>) {
    let mut cols = Vec::new();
    let mut select = Vec::new();
    for f in e.fields {
        match f.ty {
            FieldType::Enum(labels) => {
                select.push(format!("{} AS {}", enum_label_sql(f.column, labels), q(f.name)));
                let id_alias = format!("{}_id", f.name);
                if f.column == id_alias {
                    select.push(f.column.to_string());
                } else {
                    select.push(format!("{} AS {}", f.column, q(&id_alias)));
                }
                cols.push(Col {
                    name: f.name.into(),
                    sql: q(f.name),
                    alias: f.name.into(),
                    ty: f.ty,
                    order_sql: q(&id_alias),
                });
                cols.push(Col {
                    name: id_alias.clone(),
                    sql: q(&id_alias),
                    alias: id_alias.clone(),
                    ty: FieldType::Int,
                    order_sql: q(&id_alias),
                });
            }
            ty => {
                if f.column == f.name {
                    select.push(f.column.to_string());
                } else {
                    select.push(format!("{} AS {}", f.column, q(f.name)));
                }
                cols.push(Col { name: f.name.into(), sql: q(f.name), alias: f.name.into(), ty, order_sql: q(f.name) });
            }
        }
    }
    (select.join(", "), cols)
}

fn enum_label_sql(column: &str, labels: &[(&str, i64)]) -> String {
    let mut seen = Vec::new();
    let mut out = format!("CASE {column}");
    for (name, id) in labels {
        if !seen.contains(id) {
            seen.push(*id);
            out.push_str(&format!(" WHEN {id} THEN '{name}'"));
        }
    }
    out.push_str(" END");
    out
}

impl Planner<'_> {
    /// A stage column by name, accepting the registry's aliases too
    /// (`dst_endpoint_ip` finds the `dst_ip` column and the other way round).
    pub(super) fn stage_col<'s>(&self, stage: &'s Stage, name: &str) -> Option<&'s Col> {
        let canon =
            |n: &str| self.entity.field(n).map(|f| f.name.to_string()).unwrap_or_else(|| n.to_ascii_lowercase());
        stage
            .cols
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .or_else(|| stage.cols.iter().find(|c| canon(&c.name) == canon(name)))
    }

    pub(super) fn next_alias(&mut self) -> String {
        self.stage_no += 1;
        format!("s{}", self.stage_no)
    }

    /// Resolves a field name for the base stage (registry) or a later one (its columns).
    pub(super) fn resolve(&mut self, ident: &Ident, stage: Option<&Stage>) -> Result<Resolved, SrqlError> {
        match stage {
            None => self.resolve_base(ident),
            Some(s) => {
                if let Some(c) = self.stage_col(s, &ident.name) {
                    // Enum columns filter on their ids (severity:>=high), shown as labels.
                    let sql = if matches!(c.ty, FieldType::Enum(_)) { c.order_sql.clone() } else { c.sql.clone() };
                    return Ok(Resolved { name: ident.name.clone(), sql, ty: c.ty, json_path: None });
                }
                if let Some((root, path)) = ident.name.split_once('.') {
                    if let Some(c) = self.stage_col(s, root).filter(|c| c.ty == FieldType::Json) {
                        let path_param = self.json_path_param(path, ident.span)?;
                        return Ok(Resolved {
                            name: ident.name.clone(),
                            sql: c.sql.clone(),
                            ty: FieldType::Json,
                            json_path: Some(path_param),
                        });
                    }
                }
                Err(SrqlError::new(
                    ErrorKind::UnknownField,
                    format!("no column `{}` at this point of the pipeline", ident.name),
                    ident.span,
                )
                .expected(s.cols.iter().map(|c| format!("`{}`", c.name)))
                .suggest(crate::suggest::nearest(&ident.name, s.cols.iter().map(|c| c.name.as_str()))))
            }
        }
    }

    pub(super) fn json_path_param(&mut self, path: &str, span: Span) -> Result<String, SrqlError> {
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        if keys.iter().any(String::is_empty) {
            return Err(SrqlError::new(ErrorKind::UnknownField, format!("the path `{path}` has an empty key"), span));
        }
        Ok(self.params.add(Param::TextArray(keys)))
    }

    pub(super) fn base_field(&self, name: &str) -> Option<&'static FieldDef> {
        self.entity.field(name)
    }

    pub(super) fn resolve_base(&mut self, ident: &Ident) -> Result<Resolved, SrqlError> {
        if let Some(f) = self.base_field(&ident.name) {
            return Ok(Resolved { name: ident.name.clone(), sql: f.column.to_string(), ty: f.ty, json_path: None });
        }
        if let Some((root, path)) = ident.name.split_once('.') {
            if let Some(f) = self.base_field(root).filter(|f| f.ty == FieldType::Json) {
                let path_param = self.json_path_param(path, ident.span)?;
                return Ok(Resolved {
                    name: ident.name.clone(),
                    sql: f.column.to_string(),
                    ty: FieldType::Json,
                    json_path: Some(path_param),
                });
            }
        }
        let mut hint = crate::suggest::nearest(&ident.name, self.entity.field_names());
        hint.truncate(3);
        Err(SrqlError::new(
            ErrorKind::UnknownField,
            format!("unknown field `{}` in `in:{}`", ident.name, self.entity.name),
            ident.span,
        )
        .suggest(hint))
    }

    /// A filter expression as SQL; `stage` is `None` for the base select.
    pub(super) fn expr(&mut self, e: &Expr, stage: Option<&Stage>) -> Result<String, SrqlError> {
        Ok(match e {
            Expr::And(items, _) if items.is_empty() => "TRUE".into(),
            Expr::And(items, _) => {
                let parts = items.iter().map(|i| self.expr(i, stage)).collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(" AND "))
            }
            Expr::Or(items, _) => {
                let parts = items.iter().map(|i| self.expr(i, stage)).collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(" OR "))
            }
            // IS NOT TRUE keeps rows where the field is missing (NULL): `!user:root` includes events with no user.
            Expr::Not(inner, _) => format!("({}) IS NOT TRUE", self.expr(inner, stage)?),
            Expr::Term(t) => {
                let f = self.resolve(&t.field, stage)?;
                let c = match &t.value {
                    crate::ast::Value::Field(other, span) => {
                        let o = self.resolve(other, stage)?;
                        cond::fields_equal(&f, &o, *span)?
                    }
                    _ => cond::term_condition(t, &f, &mut self.params, self.now)?,
                };
                if t.negated {
                    format!("({c}) IS NOT TRUE")
                } else {
                    c
                }
            }
            Expr::Text(t) => self.free_text(t, stage)?,
            Expr::Stats(s) => {
                return Err(SrqlError::new(ErrorKind::MisplacedDirective, "`stats:` cannot be used here", s.span))
            }
        })
    }

    /// Free text. The one seam for the search strategy: membership in the
    /// BM25 index's hits when the executor has the index, else an ILIKE over
    /// the entity's text columns.
    pub(super) fn free_text(&mut self, t: &Text, stage: Option<&Stage>) -> Result<String, SrqlError> {
        if stage.is_some() {
            return Err(SrqlError::new(
                ErrorKind::BadOperator,
                "free text searches the events; put it before the first pipe",
                t.span,
            ));
        }
        if self.cfg.text_index && self.entity.similarity {
            self.plan.push(format!("free text {:?} in the BM25 index", t.text));
            let ids = self.params.add(Param::TextIds { text: t.text.clone(), phrase: t.phrase });
            return Ok(format!("event_id = ANY({ids})"));
        }
        let pattern = like_pattern(&t.text, t.phrase, true);
        let p = self.params.add(Param::Text(pattern));
        let parts: Vec<String> = self.entity.text_columns.iter().map(|c| format!("{c} ILIKE {p}")).collect();
        Ok(format!("({})", parts.join(" OR ")))
    }

    /// Joins the base stage with the BM25 hits of a free text: only matching
    /// events remain, each with its `text_score`, best first.
    fn rank_by_text(&mut self, stage: &mut Stage, ids: &str, times: &str, scores: &str) {
        let table = self.entity.table;
        let from = format!(" FROM {table}");
        if let Some(i) = stage.select.find(&from) {
            let join = format!(
                " FROM {table} JOIN unnest({ids}, {times}, {scores}) AS bm(bm_id, bm_time, bm_score) \
                 ON {table}.event_id = bm.bm_id AND {table}.time = bm.bm_time"
            );
            stage.select = format!(
                "{}, bm.bm_score AS \"text_score\"{join}{}",
                &stage.select[..i],
                &stage.select[i + from.len()..]
            );
            stage.cols.push(Col {
                name: "text_score".into(),
                sql: q("text_score"),
                alias: "text_score".into(),
                ty: FieldType::Float,
                order_sql: q("text_score"),
            });
            stage.order.insert(0, (q("text_score"), true));
            self.plan.push("ranked by BM25 (text_score)".into());
        }
    }

    pub(super) fn base_stage(&mut self, conds: &[String]) -> Stage {
        let e = self.entity;
        let (projection, cols) = base_projection(e);
        let cols = cols.clone();
        let mut sql = format!("SELECT {projection} FROM {}", e.table);
        let conds: Vec<&String> = conds.iter().filter(|c| c.as_str() != "TRUE").collect();
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" AND "));
        }
        let mut order = Vec::new();
        if let Some(tf) = e.time_field {
            order.push((q(tf), true));
        }
        for k in e.key_columns {
            let name = e.fields.iter().find(|f| f.column == *k).map(|f| f.name).unwrap_or(k);
            order.push((q(name), false));
        }
        Stage { select: sql, cols, order, is_base: true, time_col: e.time_field.map(str::to_string) }
    }

    /// The stage's SQL with its current order and an optional limit.
    pub(super) fn ordered(&mut self, stage: &Stage, limit: Option<u64>) -> String {
        let mut sql = stage.select.clone();
        if !stage.order.is_empty() {
            let keys: Vec<String> = stage
                .order
                .iter()
                .map(|(c, desc)| format!("{c} {}", if *desc { "DESC NULLS LAST" } else { "ASC NULLS LAST" }))
                .collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
        if let Some(n) = limit {
            let p = self.params.add(Param::Int(n as i64));
            sql.push_str(&format!(" LIMIT {p}"));
        }
        sql
    }

    pub(super) fn finish(&mut self, stage: &Stage, limit: u64) -> String {
        self.plan.push(format!("limit {limit}"));
        self.ordered(stage, Some(limit))
    }

    /// Wraps a stage: the next SELECT reads it as a subquery.
    pub(super) fn wrap(&mut self, prev: &Stage, keep_order: bool) -> (String, String) {
        let alias = self.next_alias();
        let inner = if keep_order { self.ordered(prev, None) } else { prev.select.clone() };
        (format!("({inner}) AS {alias}"), alias)
    }
}
