//! From a SELECT's syntax tree to what runs: the sources resolved to
//! measurements and shards, wildcards expanded as InfluxDB's `RewriteFields`
//! does, the GROUP BY tags, the time range, the column names.

mod sources;
pub(crate) use sources::policy_of;

use std::collections::BTreeSet;

use jiff::tz::TimeZone;
use sundial_influxql::select::{
    compile, compile_subquery, condition_expr, reduce, Clock, Compiled, DataType, Expr, Field,
    Fill, Offset, SelectStatement,
};
use sundial_meta::{MetaClient, ShardInfo};

use crate::agg::Shape;
use crate::error::{query_err, Error, Result};
use crate::eval::{compile_regex, Regexes};
use crate::seam::{Schema, SeriesRead, ShardReader, TagFilter};
use crate::value::FieldType;

/// InfluxDB's time bounds (`influxql.MinTime`, `MaxTime`).
pub const MIN_TIME: i64 = i64::MIN + 2;
pub const MAX_TIME: i64 = i64::MAX - 1;

/// Where a statement runs: the request's database and retention policy, the
/// query's start time, and how shards are reached.
#[derive(Debug)]
pub struct Context<'a> {
    pub meta: &'a MetaClient,
    pub reader: &'a dyn ShardReader,
    /// The `db` parameter (may be empty).
    pub database: &'a str,
    /// The `rp` parameter (may be empty: the database's default).
    pub retention_policy: &'a str,
    pub now: i64,
    /// Bytes of data one statement may hold.
    pub memory_limit: usize,
    /// GROUP BY time() windows one statement may make (0: no limit;
    /// InfluxDB's `max-select-buckets`).
    pub max_buckets: usize,
    /// Points (field values) one statement may read (0: no limit;
    /// InfluxDB's `max-select-point`).
    pub max_points: usize,
    /// Series one statement may read from one shard (0: no limit;
    /// InfluxDB's `max-select-series`, checked per shard as 1.6 checks it).
    pub max_series: usize,
    /// Points read so far, for `max_points`.
    pub points_read: std::sync::atomic::AtomicUsize,
}

impl Context<'_> {
    /// Counts one shard's read of `series` series and `points` values
    /// against `max-select-series` and `max-select-point` (InfluxDB's
    /// errors, its spelling included).
    pub(crate) fn count_read(&self, series: usize, points: usize) -> Result<()> {
        if self.max_series > 0 && series > self.max_series {
            return Err(Error::Query(format!(
                "max-select-series limit exceeded: ({series}/{})",
                self.max_series
            )));
        }
        let read = self
            .points_read
            .fetch_add(points, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(points);
        if self.max_points > 0 && read > self.max_points {
            return Err(Error::Query(format!(
                "max-select-point limit exceeed: ({read}/{})",
                self.max_points
            )));
        }
        Ok(())
    }
}

/// A measurement a statement reads: from shards, or the rows a subquery
/// answered under that name.
#[derive(Debug, Clone)]
pub struct Source {
    pub database: String,
    pub measurement: String,
    pub shards: Vec<ShardInfo>,
    /// Each shard's time range: its shard group's `[start, end)`.
    pub spans: Vec<(i64, i64)>,
    pub schema: Schema,
    /// A subquery's series (then `shards` is empty).
    pub rows: Option<Vec<SeriesRead>>,
}

/// What a subquery takes from the statement around it.
#[derive(Debug, Clone)]
pub struct Parent {
    pub compiled: Compiled,
    pub min: i64,
    pub max: i64,
    pub open_start: bool,
    pub dimensions: Vec<String>,
}

/// A statement ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub sources: Vec<Source>,
    /// The SELECT fields after wildcard expansion (constants folded).
    pub fields: Vec<Field>,
    /// Output columns, `time` (or its alias) first.
    pub columns: Vec<String>,
    /// GROUP BY tag keys, sorted.
    pub dimensions: Vec<String>,
    /// The condition on tags and fields (time taken out).
    pub condition: Option<Expr>,
    pub regexes: Regexes,
    /// Inclusive, ns.
    pub min: i64,
    pub max: i64,
    /// Where reads start: one window before `min` when a transformation of an
    /// aggregate needs the window before the first.
    pub read_min: i64,
    /// The time range had no lower bound.
    pub open_start: bool,
    pub interval: i64,
    pub offset: i64,
    pub tz: Option<TimeZone>,
    pub fill: Fill,
    pub limit: usize,
    pub offset_rows: usize,
    pub slimit: usize,
    pub soffset: usize,
    pub ascending: bool,
    pub compiled: Compiled,
    /// Bytes the statement may hold (`query-memory-limit`).
    pub memory_limit: usize,
    /// An aggregate's calls and expressions, read once for all its groups.
    pub shape: Option<Shape>,
}

impl Plan {
    pub fn is_aggregate(&self) -> bool {
        !self.compiled.calls.is_empty()
    }
}

pub async fn plan(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    parent: Option<&Parent>,
) -> Result<Plan> {
    let compiled = match parent {
        None => compile(stmt),
        Some(p) => compile_subquery(stmt, &p.compiled),
    }
    .map_err(Error::Query)?;
    let clock = Clock::new(cx.now, stmt.location.as_deref()).map_err(Error::Query)?;
    let (condition, range) = match &stmt.condition {
        Some(c) => condition_expr(c, &clock).map_err(Error::Query)?,
        None => (None, Default::default()),
    };
    let mut min = range.min.unwrap_or(MIN_TIME).max(MIN_TIME);
    // A GROUP BY time() query without an upper bound ends now.
    let mut max = match range.max {
        Some(m) => m.min(MAX_TIME),
        None if compiled.interval > 0 => cx.now,
        None => MAX_TIME,
    };
    let mut open_start = range.min.is_none();
    // A subquery reads within its statement's range.
    if let Some(p) = parent {
        min = min.max(p.min);
        max = max.min(p.max);
        open_start &= p.open_start;
    }
    let offset = match &compiled.offset {
        Some(Offset::Duration(d)) => *d,
        Some(Offset::Now) if compiled.interval > 0 => cx.now.rem_euclid(compiled.interval),
        _ => 0,
    };
    let parent_here = Parent {
        compiled: compiled.clone(),
        min,
        max,
        open_start,
        // What groups this statement groups its subqueries too.
        dimensions: parent.map(|p| p.dimensions.clone()).unwrap_or_default(),
    };
    let sources = sources::resolve_sources(stmt, cx, min, max, &parent_here).await?;

    // Fields and tags across every source, for wildcards.
    let mut schema = Schema::default();
    for s in &sources {
        schema.merge(s.schema.clone());
    }
    let mut dimensions = dimensions(stmt, &schema)?;
    if let Some(p) = parent {
        // The statement's GROUP BY tags group the subquery too.
        dimensions.extend(p.dimensions.iter().cloned());
        dimensions.sort();
        dimensions.dedup();
    }
    let mut fields = expand_fields(stmt, &schema, &dimensions)?;
    crate::typecheck::annotate(&mut fields, &schema);
    crate::typecheck::check(&fields)?;
    let mut regexes = Regexes::default();
    if let Some(c) = &condition {
        regexes.add(c)?;
    }
    for f in &fields {
        regexes.add(&f.expr)?;
    }
    let time_name = compiled.time_alias.clone().unwrap_or_else(|| "time".into());
    let mut columns = vec![time_name];
    columns.extend(column_names(&fields));
    let non_negative = |n: i64| usize::try_from(n).unwrap_or(0);
    let mut plan = Plan {
        sources,
        fields,
        columns,
        dimensions,
        condition,
        regexes,
        min,
        max,
        read_min: min,
        open_start,
        interval: compiled.interval,
        offset,
        tz: stmt.location.as_ref().map(|_| clock.tz.clone()),
        // A subquery with its own interval fills nothing unless asked to.
        fill: match (&stmt.fill, parent) {
            (Fill::Null, Some(_)) if compiled.interval > 0 && !compiled.inherited_interval => {
                Fill::None
            }
            (f, _) => f.clone(),
        },
        limit: non_negative(stmt.limit),
        offset_rows: non_negative(stmt.offset),
        slimit: non_negative(stmt.slimit),
        soffset: non_negative(stmt.soffset),
        ascending: compiled.ascending,
        compiled,
        memory_limit: cx.memory_limit,
        shape: None,
    };
    check_buckets(&plan, cx.max_buckets)?;
    if plan.is_aggregate() {
        let shape = Shape::of(&plan)?;
        if plan.interval > 0 && shape.needs_previous_window() {
            plan.read_min = plan.min.saturating_sub(plan.interval).max(MIN_TIME);
        }
        plan.shape = Some(shape);
    }
    Ok(plan)
}

/// 1.6's `max-select-buckets`: the windows from the one holding the start
/// to the one holding the end, for an aggregate with GROUP BY time() and a
/// lower time bound.
fn check_buckets(plan: &Plan, max: usize) -> Result<()> {
    if max == 0 || plan.interval <= 0 || !plan.is_aggregate() || plan.min <= MIN_TIME {
        return Ok(());
    }
    let window = |t: i64| t - (t - plan.offset).rem_euclid(plan.interval);
    let (first, last) = (window(plan.min), window(plan.max));
    let buckets = (i128::from(last) - i128::from(first) + i128::from(plan.interval))
        / i128::from(plan.interval);
    if buckets > max as i128 {
        return Err(Error::Query(format!(
            "max-select-buckets limit exceeded: ({buckets}/{max})"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------- GROUP BY

fn dimensions(stmt: &SelectStatement, schema: &Schema) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for d in &stmt.dimensions {
        match reduce(d.clone()) {
            Expr::VarRef { name, .. } => {
                out.insert(name);
            }
            Expr::Wildcard(_) => out.extend(schema.tags.iter().cloned()),
            Expr::Regex(r) => {
                let rx = compile_regex(&r)?;
                out.extend(schema.tags.iter().filter(|t| rx.is_match(t)).cloned());
            }
            _ => {}
        }
    }
    Ok(out.into_iter().collect())
}

fn has_dimension_wildcard(stmt: &SelectStatement) -> bool {
    stmt.dimensions
        .iter()
        .any(|d| matches!(d, Expr::Wildcard(_) | Expr::Regex(_)))
}

// ---------------------------------------------------------------- fields

/// A name the wildcard expands to: a field (with its type) or a tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ref {
    name: String,
    /// None: a tag.
    ty: Option<FieldType>,
}

fn var(r: &Ref) -> Expr {
    Expr::VarRef {
        name: r.name.clone(),
        ty: Some(match r.ty {
            None => DataType::Tag,
            Some(FieldType::Float) => DataType::Float,
            Some(FieldType::Integer) => DataType::Integer,
            Some(FieldType::Unsigned) => DataType::Unsigned,
            Some(FieldType::String) => DataType::String,
            Some(FieldType::Boolean) => DataType::Boolean,
        }),
    }
}

fn expand_fields(stmt: &SelectStatement, schema: &Schema, dims: &[String]) -> Result<Vec<Field>> {
    let dim_wild = has_dimension_wildcard(stmt);
    let mut refs: Vec<Ref> = Vec::new();
    let mut names: Vec<&str> = schema.fields.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    for n in names {
        refs.push(Ref {
            name: n.to_string(),
            ty: schema.field_type(n),
        });
    }
    if !refs.is_empty() && !dim_wild {
        for t in &schema.tags {
            if !dims.contains(t) {
                refs.push(Ref {
                    name: t.clone(),
                    ty: None,
                });
            }
        }
    }
    refs.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then(type_rank(a.ty).cmp(&type_rank(b.ty)))
    });

    let mut out = Vec::new();
    for f in &stmt.fields {
        let expr = reduce(f.expr.clone());
        match &expr {
            Expr::Wildcard(ty) => {
                for r in &refs {
                    let keep = match ty {
                        Some(DataType::Tag) => r.ty.is_none(),
                        Some(_) => r.ty.is_some(),
                        None => true,
                    };
                    if keep {
                        out.push(Field {
                            expr: var(r),
                            alias: None,
                        });
                    }
                }
            }
            Expr::Regex(re) => {
                let rx = compile_regex(re)?;
                for r in refs.iter().filter(|r| rx.is_match(&r.name)) {
                    out.push(Field {
                        expr: var(r),
                        alias: None,
                    });
                }
            }
            Expr::Call { name, args } if matches!(name.as_str(), "top" | "bottom") => {
                out.push(Field {
                    expr: expr.clone(),
                    alias: f.alias.clone(),
                });
                // Its tag arguments become columns after it.
                for a in args.iter().skip(1).take(args.len().saturating_sub(2)) {
                    if let Expr::VarRef { name, .. } = a {
                        out.push(Field {
                            expr: Expr::VarRef {
                                name: name.clone(),
                                ty: Some(DataType::Tag),
                            },
                            alias: None,
                        });
                    }
                }
            }
            Expr::Call { .. } => expand_call(f, &expr, &refs, &mut out)?,
            _ => out.push(Field {
                expr,
                alias: f.alias.clone(),
            }),
        }
    }
    Ok(out)
}

/// InfluxDB sorts wildcard names, then by type (`VarRefs`): float, integer,
/// string, boolean, tag, unsigned.
fn type_rank(t: Option<FieldType>) -> u8 {
    match t {
        Some(FieldType::Float) => 1,
        Some(FieldType::Integer) => 2,
        Some(FieldType::String) => 3,
        Some(FieldType::Boolean) => 4,
        None => 7,
        Some(FieldType::Unsigned) => 9,
    }
}

/// `mean(*)`, `max(/re/)`, `derivative(mean(*))`: one field per matching field,
/// named `<name>_<field>`.
fn expand_call(f: &Field, expr: &Expr, refs: &[Ref], out: &mut Vec<Field>) -> Result<()> {
    let as_is = |out: &mut Vec<Field>| {
        out.push(Field {
            expr: expr.clone(),
            alias: f.alias.clone(),
        })
    };
    // The innermost call's first argument decides.
    let mut call = expr;
    let (name, arg) = loop {
        let Expr::Call { name, args } = call else {
            as_is(out);
            return Ok(());
        };
        match args.first() {
            Some(inner @ Expr::Call { .. }) => call = inner,
            Some(a) => break (name.as_str(), a),
            None => {
                as_is(out);
                return Ok(());
            }
        }
    };
    let re = match arg {
        Expr::Wildcard(Some(DataType::Tag)) => {
            return Err(query_err(format!("unable to use tag wildcard in {name}()")))
        }
        Expr::Wildcard(_) => None,
        Expr::Regex(r) => Some(compile_regex(r)?),
        _ => {
            as_is(out);
            return Ok(());
        }
    };
    let mut types = vec![FieldType::Float, FieldType::Integer, FieldType::Unsigned];
    match name {
        "count" | "first" | "last" | "distinct" | "elapsed" | "mode" | "sample" => {
            types.push(FieldType::String);
            types.push(FieldType::Boolean);
        }
        "min" | "max" => types.push(FieldType::Boolean),
        _ => {}
    }
    let outer = field_name(f);
    for r in refs {
        let Some(ty) = r.ty else { continue };
        if !types.contains(&ty) || re.as_ref().is_some_and(|re| !re.is_match(&r.name)) {
            continue;
        }
        out.push(Field {
            expr: replace_innermost_arg(expr, &var(r)),
            alias: Some(format!("{outer}_{}", r.name)),
        });
    }
    Ok(())
}

fn replace_innermost_arg(e: &Expr, with: &Expr) -> Expr {
    match e {
        Expr::Call { name, args } => {
            let mut args = args.clone();
            if let Some(first) = args.first_mut() {
                *first = match first {
                    Expr::Call { .. } => replace_innermost_arg(first, with),
                    _ => with.clone(),
                };
            }
            Expr::Call {
                name: name.clone(),
                args,
            }
        }
        e => e.clone(),
    }
}

// ---------------------------------------------------------------- names

/// A field's name as InfluxDB's `Field.Name` gives it.
pub fn field_name(f: &Field) -> String {
    if let Some(a) = &f.alias {
        return a.clone();
    }
    expr_name(&f.expr)
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Call { name, .. } => name.clone(),
        Expr::VarRef { name, .. } => name.clone(),
        Expr::Paren(x) => expr_name(x),
        Expr::Distinct(_) => "distinct".into(),
        Expr::Binary { .. } => {
            let mut names = Vec::new();
            binary_names(e, &mut names);
            names.join("_")
        }
        _ => String::new(),
    }
}

fn binary_names(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Binary { lhs, rhs, .. } => {
            binary_names(lhs, out);
            binary_names(rhs, out);
        }
        Expr::Paren(x) => binary_names(x, out),
        Expr::Call { name, .. } => out.push(name.clone()),
        Expr::VarRef { name, .. } => out.push(name.clone()),
        _ => {}
    }
}

/// Column names with InfluxDB's conflict rule: aliases first, then generated
/// names, a repeated one suffixed `_1`, `_2`, ….
pub fn column_names(fields: &[Field]) -> Vec<String> {
    let mut out = vec![String::new(); fields.len()];
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for (i, f) in fields.iter().enumerate() {
        if let Some(a) = &f.alias {
            out[i] = a.clone();
            seen.insert(a.clone(), 1);
        }
    }
    for (i, f) in fields.iter().enumerate() {
        if !out[i].is_empty() {
            continue;
        }
        let mut name = field_name(f);
        if let Some(&count) = seen.get(&name) {
            let mut count = count;
            loop {
                let candidate = format!("{name}_{count}");
                if !seen.contains_key(&candidate) {
                    seen.insert(name.clone(), count + 1);
                    name = candidate;
                    break;
                }
                count += 1;
            }
        }
        *seen.entry(name.clone()).or_insert(0) += 1;
        out[i] = name;
    }
    out
}

// ---------------------------------------------------------------- tag filter

/// The tags a condition can match, for the shard's index: exact for tag
/// comparisons, everything where fields decide.
pub fn tag_filter(cond: Option<&Expr>, schema: &Schema) -> TagFilter {
    let Some(e) = cond else {
        return TagFilter::All;
    };
    match e {
        Expr::Paren(x) => tag_filter(Some(x), schema),
        Expr::Binary { op, lhs, rhs } => match op.symbol() {
            "AND" => match (tag_filter(Some(lhs), schema), tag_filter(Some(rhs), schema)) {
                (TagFilter::All, x) | (x, TagFilter::All) => x,
                (a, b) => TagFilter::And(Box::new(a), Box::new(b)),
            },
            "OR" => match (tag_filter(Some(lhs), schema), tag_filter(Some(rhs), schema)) {
                (TagFilter::All, _) | (_, TagFilter::All) => TagFilter::All,
                (a, b) => TagFilter::Or(Box::new(a), Box::new(b)),
            },
            sym => tag_comparison(sym, lhs, rhs, schema).unwrap_or(TagFilter::All),
        },
        _ => TagFilter::All,
    }
}

fn tag_comparison(sym: &str, lhs: &Expr, rhs: &Expr, schema: &Schema) -> Option<TagFilter> {
    let (key, val) = match (lhs, rhs) {
        (Expr::VarRef { name, ty }, v) | (v, Expr::VarRef { name, ty })
            if is_tag_ref(name, *ty, schema) =>
        {
            (name.clone(), v)
        }
        _ => return None,
    };
    // An empty value matches series without the tag: left to the rows.
    Some(match (sym, val) {
        ("=", Expr::Str(v)) if !v.is_empty() => TagFilter::Eq(key, v.clone()),
        ("!=", Expr::Str(v)) if !v.is_empty() => TagFilter::NotEq(key, v.clone()),
        ("=~", Expr::Regex(r)) => TagFilter::Regex(key, r.clone()),
        ("!~", Expr::Regex(r)) => TagFilter::NotRegex(key, r.clone()),
        _ => return None,
    })
}

/// Whether a condition reads only tags (no source holds any name it uses as
/// a field): it can be decided per series from the series' tags.
pub(crate) fn tags_only(e: &Expr, plan: &Plan) -> bool {
    let mut only = true;
    e.walk(&mut |x| match x {
        Expr::VarRef { name, ty } => {
            only &= !matches!(ty, Some(t) if *t != DataType::Tag)
                && plan
                    .sources
                    .iter()
                    .all(|s| s.schema.field_type(name).is_none());
        }
        Expr::Call { .. } => only = false,
        _ => {}
    });
    only
}

pub(crate) fn is_tag_ref(name: &str, ty: Option<DataType>, schema: &Schema) -> bool {
    match ty {
        Some(DataType::Tag) => true,
        None => schema.has_tag(name) && schema.field_type(name).is_none(),
        Some(_) => false,
    }
}
