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

use directives::{literal_of, merge_stats, no_directives, split_directives, Directives};

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

/// What the executor adds to the SQL for the one pipe SQL alone cannot do.
/// A query has at most one: each is the query's last executor-side stage
/// (`| cluster` and `| blast_radius` must be the last pipe and cannot follow
/// `SIMILAR_TO`; a later `SIMILAR_TO` replaces an earlier one).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PostStage {
    /// The SQL's rows are the result.
    #[default]
    None,
    /// `SIMILAR_TO`: the executor embeds the text and picks the path (exact
    /// distance in SQL, or a walk of the HNSW index whose events it binds).
    Similar(Similarity),
    /// `| cluster`: the SQL returns one row per distinct text; the executor
    /// merges similar texts into groups.
    Cluster(Cluster),
    /// `| blast_radius`: the SQL returns start points; the executor walks
    /// the connection graph from them.
    BlastRadius(BlastRadius),
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
    /// What the executor does beyond running the SQL.
    pub post: PostStage,
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

/// The base stage's conditions and what else the filters decide.
struct BaseFilter {
    conds: Vec<String>,
    window: Option<time::Window>,
    /// The parameters (ids, times, scores) of the BM25 hits of the free
    /// text that ranks the rows.
    ranked_text: Option<(String, String, String)>,
}

/// A query as far as it is planned.
struct Shaped {
    stage: Stage,
    visualization: Visualization,
    post: PostStage,
    /// Pipes already planned (a timechart over rolled-up metrics is planned
    /// with the first stage).
    pipes_done: usize,
}

/// Compiles SRQL text to SQL. `now` anchors relative times.
pub fn compile(text: &str, cfg: &Config, now: DateTime<Utc>) -> Result<Compiled, SrqlError> {
    let q = crate::parse::parse(text)?;
    compile_query(&q, cfg, now)
}

/// Compiles a parsed query.
pub fn compile_query(q: &Query, cfg: &Config, now: DateTime<Utc>) -> Result<Compiled, SrqlError> {
    let (d, filters) = split_directives(q.filter.as_ref())?;
    let entity = entity_of(&d)?;
    check_bucket_directives(&d)?;
    let mut p = Planner {
        cfg,
        now,
        entity,
        params: Params::default(),
        plan: vec![format!("scan {} ({})", entity.name, entity.table)],
        warnings: Vec::new(),
        stage_no: 0,
    };
    let base = p.base_filter(q, &d, &filters)?;
    let window = base.window;
    let shaped = p.first_stage(q, &d, &filters, base)?;
    let Shaped { mut stage, visualization, mut post, .. } = p.pipes(q, window, shaped)?;

    // Final shape: sort directive, then limit.
    if let Some(t) = d.sort {
        stage.order = p.sort_directive(&stage, t)?;
    }
    let limit = p.final_limit(d.limit, visualization, &mut post)?;
    let (count_sql, count_params) = count_query(&stage, &post);
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
        post,
        limit,
        count_sql,
        count_params,
    })
}

/// The entity a query reads: the last `in:`, though every one must name an
/// entity.
fn entity_of(d: &Directives<'_>) -> Result<&'static EntityDef, SrqlError> {
    let mut entity = &registry::ENTITIES[0];
    for t in &d.entities {
        let l = literal_of(t, "an entity name like `in:events`")?;
        entity = registry::entity(&l.text).ok_or_else(|| {
            SrqlError::new(ErrorKind::UnknownEntity, format!("unknown entity `{}`", l.text), l.span)
                .expected(registry::ENTITIES.iter().map(|e| format!("`in:{}`", e.name)))
                .suggest(crate::suggest::nearest(&l.text, registry::entity_names()))
        })?;
    }
    Ok(entity)
}

/// `agg:`, `value_field:` and `series:` only describe a `bucket:`, which is
/// an alternative to `stats:`.
fn check_bucket_directives(d: &Directives<'_>) -> Result<(), SrqlError> {
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
    Ok(())
}

/// `| cluster` and `| blast_radius` end a query: the executor completes
/// them after the SQL, and completes one pipe at most ([`PostStage`]).
fn check_final_pipe(q: &Query, i: usize, pipe: &str, post: &PostStage, span: Span) -> Result<(), SrqlError> {
    if let Some(next) = q.pipes.get(i + 1) {
        return Err(SrqlError::new(ErrorKind::BadOperator, format!("`| {pipe}` must be the last stage"), next.span()));
    }
    if matches!(post, PostStage::Similar(_)) {
        return Err(SrqlError::new(ErrorKind::BadOperator, format!("`| {pipe}` cannot follow `SIMILAR_TO`"), span));
    }
    Ok(())
}

/// A plain query's rows before their final order and limit, to count them
/// ([`Compiled::count_sql`]), and how many parameters that takes.
fn count_query(stage: &Stage, post: &PostStage) -> (Option<String>, usize) {
    if !matches!(post, PostStage::None) {
        return (None, 0);
    }
    let sql = format!("SELECT 1 FROM ({}) AS counted", stage.select);
    // The count reads the rows without their final order, so a parameter
    // only the order uses (a JSON sort key, `sort:raw.orig_bytes:desc`) is
    // not in its SQL: it takes the parameters up to the last one it names,
    // and there is no count when it skips one before that (PostgreSQL cannot
    // type a parameter its statement never mentions).
    let used = placeholders(&sql);
    if used.iter().enumerate().all(|(i, n)| *n == i + 1) {
        (Some(sql), used.len())
    } else {
        (None, 0)
    }
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
    /// The base stage's conditions: the entity's own filter, the ingestion
    /// and time windows, and the query's filters.
    fn base_filter(&mut self, q: &Query, d: &Directives<'_>, filters: &[&Expr]) -> Result<BaseFilter, SrqlError> {
        let (cfg, entity) = (self.cfg, self.entity);
        let mut conds: Vec<String> = entity.base_filter.iter().map(|s| s.to_string()).collect();
        let window = if cfg.ingested_window.is_some() && d.time.is_empty() { None } else { self.window(&d.time)? };
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
                self.params.add(Param::Time(after)),
                self.params.add(Param::Time(until))
            ));
            self.plan.push(format!("ingested in ({} .. {}]", after.to_rfc3339(), until.to_rfc3339()));
        }
        if let (Some(w), Some(tf)) = (window, entity.time_field) {
            let col = entity.field(tf).map(|f| f.column).unwrap_or(tf);
            conds.push(format!(
                "{col} >= {} AND {col} < {}",
                self.params.add(Param::Time(w.start)),
                self.params.add(Param::Time(w.end))
            ));
            self.plan.push(format!("time window {} .. {}", w.start.to_rfc3339(), w.end.to_rfc3339()));
        }
        // The first top-level free text ranks the rows (a join with the BM25
        // hits); any other free text is a plain membership test.
        let mut ranked_text = None;
        for f in filters {
            if let (Expr::Text(t), true, None) = (f, cfg.text_index && entity.similarity, &ranked_text) {
                let (text, phrase) = (t.text.clone(), t.phrase);
                ranked_text = Some((
                    self.params.add(Param::TextIds { text: text.clone(), phrase }),
                    self.params.add(Param::TextTimes { text: text.clone(), phrase }),
                    self.params.add(Param::TextScores { text, phrase }),
                ));
                continue;
            }
            let c = self.expr(f, None)?;
            conds.push(c);
        }
        if !filters.is_empty() {
            self.plan
                .push(format!("filter: {}", filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" AND ")));
        }
        Ok(BaseFilter { conds, window, ranked_text })
    }

    /// The stage the pipes start from: the filtered rows (or, for metrics
    /// past the rollup boundary, the first pipe's timechart over raw and
    /// rolled-up rows), ranked by free text, then the aggregation directives.
    fn first_stage(
        &mut self,
        q: &Query,
        d: &Directives<'_>,
        filters: &[&Expr],
        base: BaseFilter,
    ) -> Result<Shaped, SrqlError> {
        let directives_apply =
            !d.stats.is_empty() || d.bucket.is_some() || d.having.is_some() || base.ranked_text.is_some();
        let rollup = self.rollup_plan(q, filters, directives_apply, base.window);
        let mut visualization = Visualization::Table;
        let pipes_done = usize::from(rollup.is_some());
        let mut stage = match rollup {
            Some(r) => {
                visualization = Visualization::Timechart;
                self.rollup_timechart(&base.conds, r)
            }
            None => self.base_stage(&base.conds),
        };
        if let Some((ids, times, scores)) = base.ranked_text {
            self.rank_by_text(&mut stage, &ids, &times, &scores);
        }
        // ServiceRadar-style aggregation directives run first, then pipes in order.
        if !d.stats.is_empty() {
            let merged = merge_stats(&d.stats)?;
            stage = self.stats(stage, &merged, None)?;
            visualization = Visualization::Stats;
        } else if let Some(bucket) = d.bucket {
            stage = self.bucket_directive(stage, bucket, d)?;
            visualization = Visualization::Timechart;
        }
        if let Some(h) = d.having {
            stage = self.having(stage, h)?;
        }
        Ok(Shaped { stage, visualization, post: PostStage::None, pipes_done })
    }

    /// The pipes not yet planned, in order, each wrapping the stage before it.
    fn pipes(&mut self, q: &Query, window: Option<time::Window>, mut s: Shaped) -> Result<Shaped, SrqlError> {
        for (i, pipe) in q.pipes.iter().enumerate().skip(s.pipes_done) {
            match pipe {
                Pipe::Where(e, _) => {
                    no_directives(e, true)?;
                    s.stage = self.where_pipe(s.stage, e)?;
                }
                Pipe::Stats(spec) => {
                    s.stage = self.stats(s.stage, spec, None)?;
                    s.visualization = Visualization::Stats;
                }
                Pipe::Timechart { args, stats, span } => {
                    s.stage = self.timechart_pipe(s.stage, args, stats, window, *span)?;
                    s.visualization = Visualization::Timechart;
                }
                Pipe::Sort(keys, _) => self.sort_pipe(&mut s.stage, keys)?,
                Pipe::Head(n, _) => s.stage = self.head(s.stage, n.unwrap_or(10)),
                Pipe::Dedup(fields, _) => s.stage = self.dedup(s.stage, fields)?,
                Pipe::Fields(fields, _) => s.stage = self.fields(s.stage, fields)?,
                Pipe::SimilarTo { text, args, span } => {
                    let (stage, sim) = self.similar(s.stage, text, args, *span)?;
                    s.stage = stage;
                    s.post = PostStage::Similar(sim);
                    s.visualization = Visualization::Similarity;
                }
                Pipe::Cluster(threshold, span) => {
                    check_final_pipe(q, i, "cluster", &s.post, *span)?;
                    let (stage, threshold) = self.cluster(s.stage, threshold.as_ref(), *span)?;
                    s.stage = stage;
                    // Its limit (the number of groups) is `limit:`, read with the final shape.
                    s.post = PostStage::Cluster(Cluster { threshold, limit: 0 });
                    s.visualization = Visualization::Cluster;
                }
                Pipe::BlastRadius(args, span) => {
                    check_final_pipe(q, i, "blast_radius", &s.post, *span)?;
                    let (stage, b) = self.blast_radius(s.stage, args, *span)?;
                    s.stage = stage;
                    s.post = PostStage::BlastRadius(b);
                    s.visualization = Visualization::Graph;
                }
            }
        }
        Ok(s)
    }

    /// The SQL's row limit. `| cluster` and `| blast_radius` return what the
    /// executor makes of the rows, so `limit:` goes into their spec instead.
    fn final_limit(
        &mut self,
        t: Option<&Term>,
        visualization: Visualization,
        post: &mut PostStage,
    ) -> Result<u64, SrqlError> {
        Ok(match (post, t) {
            (PostStage::BlastRadius(b), t) => {
                // The SQL returns start points (at most MAX_GRAPH_STARTS); `limit` counts reached nodes.
                b.limit = self.limit(t)?;
                pipes::MAX_GRAPH_STARTS
            }
            (PostStage::Cluster(c), t) => {
                // The SQL returns distinct texts (up to max_limit); `limit` counts groups.
                c.limit = self.limit(t)?;
                self.cfg.max_limit
            }
            (_, None) if visualization == Visualization::Timechart => self.cfg.max_limit,
            (PostStage::Similar(sim), None) => sim.k,
            (_, t) => self.limit(t)?,
        })
    }
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
