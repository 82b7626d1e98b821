//! Results: a JSON file with every run, a Markdown table of medians, and an SVG chart of
//! throughput against concurrency (hand-written: one polyline per series, log-scale y).

use std::fmt::Write as _;

use serde::Serialize;

use crate::idle::IdleResult;
use crate::server::Argon2Params;
use crate::timing::TimingResult;

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// CPU time per request in the measurement window: the server's, and the load
    /// generator's (which competes with the server and Postgres for the same cores).
    pub server_us_per_request: f64,
    pub load_us_per_request: f64,
    /// pgbench transactions/s or raw argon2id hashes/s, measured right after this run.
    pub baseline_rate: Option<f64>,
    pub baseline_p50_ms: Option<f64>,
    pub baseline_p99_ms: Option<f64>,
    pub baseline_errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub clients: usize,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub key: &'static str,
    pub name: &'static str,
    /// "pgbench" (same SQL, same concurrency) or "argon2id" (raw hashes/s on all cores).
    pub baseline: &'static str,
    pub target_ratio: f64,
    pub points: Vec<Point>,
    /// VmHWM of the server process that served this scenario's whole sweep.
    pub peak_rss_mib: f64,
    /// The machine's 1-minute load average after the scenario: on a shared machine, how much
    /// else was competing for the cores.
    pub load_average: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub started_at_unix: u64,
    pub cores: usize,
    /// 1-minute load average before the first scenario.
    pub load_average_start: f64,
    pub duration_secs: f64,
    pub runs: usize,
    pub argon2: Argon2Params,
    pub server_env: Vec<String>,
    pub scenarios: Vec<ScenarioResult>,
    pub idle: Option<IdleResult>,
    pub timing: Option<TimingResult>,
    /// Seeded users (with 2 sessions and 10 refresh tokens each).
    pub users: u32,
    pub limiter: Option<Vec<crate::limiter::LimiterPoint>>,
    pub cleanup: Option<crate::cleanup_rate::CleanupRate>,
}

/// The 1-minute load average from `/proc/loadavg` (NaN where there is none).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Point {
    /// The median over the runs of one figure.
    fn median_of(&self, figure: impl Fn(&Run) -> f64) -> f64 {
        median(self.runs.iter().map(figure).collect())
    }
    pub fn rps(&self) -> f64 {
        self.median_of(|r| r.rps)
    }
    pub fn p50(&self) -> f64 {
        self.median_of(|r| r.p50_ms)
    }
    pub fn p99(&self) -> f64 {
        self.median_of(|r| r.p99_ms)
    }
    pub fn server_us(&self) -> f64 {
        self.median_of(|r| r.server_us_per_request)
    }
    pub fn load_us(&self) -> f64 {
        self.median_of(|r| r.load_us_per_request)
    }
    pub fn errors(&self) -> u64 {
        self.runs.iter().map(|r| r.errors).sum()
    }
    pub fn baseline(&self) -> Option<f64> {
        let values: Vec<f64> = self.runs.iter().filter_map(|r| r.baseline_rate).collect();
        (!values.is_empty()).then(|| median(values))
    }
    pub fn baseline_p50(&self) -> Option<f64> {
        let values: Vec<f64> = self.runs.iter().filter_map(|r| r.baseline_p50_ms).collect();
        (!values.is_empty()).then(|| median(values))
    }
    /// Median of the per-run ratios (each run is paired with the baseline taken right after it).
    pub fn ratio(&self) -> Option<f64> {
        let values: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.baseline_rate.map(|b| r.rps / b))
            .collect();
        (!values.is_empty()).then(|| median(values))
    }
    pub fn baseline_errors(&self) -> u64 {
        self.runs.iter().map(|r| r.baseline_errors).sum()
    }
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Label `{}`; {} seeded users (2 sessions and 10 refresh tokens each); {} cores shared by server, load generator and Postgres (1-minute load average {:.1} at the \
         start; the last column is the load after each scenario); medians of {} runs of {} s each; \
         argon2id m={} KiB, t={}, p={}.\n",
        report.label,
        report.users,
        report.cores,
        report.load_average_start,
        report.runs,
        report.duration_secs,
        report.argon2.m_kib,
        report.argon2.t,
        report.argon2.p
    );
    out.push_str(
        "| scenario | clients | req/s | p50 ms | p99 ms | errors | CPU µs/req server | CPU µs/req load gen. | baseline | baseline/s | baseline p50 ms | ratio | target | server peak RSS | load |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for scenario in &report.scenarios {
        for point in &scenario.points {
            let opt = |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
            let ratio = point.ratio();
            // A target of 0 is none (the admin list: measured, not judged).
            let verdict = match ratio {
                _ if scenario.target_ratio == 0.0 => "",
                Some(r) if r >= scenario.target_ratio => "✓",
                Some(_) => "✗",
                None => "",
            };
            let target = if scenario.target_ratio == 0.0 {
                "–".to_owned()
            } else {
                format!("≥ {:.1}", scenario.target_ratio)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.0} | {:.0} | {} | {} | {} | {} {} | {} | {:.1} MiB | {:.1} |",
                scenario.name,
                point.clients,
                point.rps(),
                point.p50(),
                point.p99(),
                point.errors() + point.baseline_errors(),
                point.server_us(),
                point.load_us(),
                scenario.baseline,
                opt(point.baseline(), 0),
                opt(point.baseline_p50(), 2),
                opt(ratio, 2),
                verdict,
                target,
                scenario.peak_rss_mib,
                scenario.load_average,
            );
        }
    }
    if let Some(idle) = &report.idle {
        let _ = writeln!(
            out,
            "\nIdle keep-alive connections: {} held, {} errors; server RSS {:.1} MiB before, {:.1} MiB while held \
             (VmHWM {:.1} MiB; target ≤ 50 MB).",
            idle.connections, idle.errors, idle.rss_before_mib, idle.rss_held_mib, idle.hwm_mib
        );
    }
    if let Some(timing) = &report.timing {
        out.push_str(&crate::timing::markdown(timing));
    }
    if let Some(limiter) = &report.limiter {
        out.push_str(&crate::limiter::markdown(limiter));
    }
    if let Some(cleanup) = &report.cleanup {
        out.push_str(&crate::cleanup_rate::markdown(cleanup));
    }
    out
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// Throughput (log scale) against the number of clients: solid lines are the server, dashed
/// lines its baselines.
pub fn svg(report: &Report) -> String {
    let (width, height) = (760.0, 460.0);
    let (left, right, top, bottom) = (70.0, 210.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let clients: Vec<usize> = report
        .scenarios
        .first()
        .map(|s| s.points.iter().map(|p| p.clients).collect())
        .unwrap_or_default();
    let mut values = Vec::new();
    for s in &report.scenarios {
        for p in &s.points {
            values.push(p.rps());
            values.extend(p.baseline());
        }
    }
    values.retain(|v| v.is_finite() && *v > 0.0);
    let lo = values
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log10()
        .floor();
    let hi = values.iter().cloned().fold(1.0, f64::max).log10().ceil().max(lo + 1.0);
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / clients.len().max(1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - (v.max(1.0).log10() - lo) / (hi - lo));

    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="{}" y="22" font-size="15" text-anchor="middle">Latchkey throughput vs concurrency ({} cores, medians of {} runs)</text>"##,
        width / 2.0,
        report.cores,
        report.runs
    );
    // Decade grid lines and labels.
    let mut decade = lo;
    while decade <= hi {
        let v = 10f64.powf(decade);
        let yy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            v as u64
        );
        decade += 1.0;
    }
    for (i, c) in clients.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{c}</text>"##,
            x(i),
            top + plot_h + 18.0
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent clients</text>"##,
        left + plot_w / 2.0,
        height - 12.0
    );
    let _ = writeln!(
        out,
        r##"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">requests (transactions, hashes) per second, log scale</text>"##,
        top + plot_h / 2.0
    );
    let mut legend_y = top + 10.0;
    let legend_x = left + plot_w + 16.0;
    let mut legend = |out: &mut String, color: &str, dashed: bool, label: &str| {
        let dash = if dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            out,
            r##"<line x1="{legend_x}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{label}</text>"##,
            legend_x + 26.0,
            legend_x + 32.0,
            legend_y + 4.0
        );
        legend_y += 20.0;
    };
    for (i, s) in report.scenarios.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line = |rates: Vec<Option<f64>>, dashed: bool| -> String {
            let points: Vec<String> = rates
                .iter()
                .enumerate()
                .filter_map(|(j, r)| r.map(|r| format!("{:.1},{:.1}", x(j), y(r))))
                .collect();
            let dash = if dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let mut svg = format!(
                r##"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"##,
                points.join(" ")
            );
            for p in &points {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(svg, r##"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"##);
            }
            svg
        };
        let _ = writeln!(out, "{}", line(s.points.iter().map(|p| Some(p.rps())).collect(), false));
        legend(&mut out, color, false, &format!("server: {}", s.name));
        if s.points.iter().any(|p| p.baseline().is_some()) {
            let _ = writeln!(out, "{}", line(s.points.iter().map(|p| p.baseline()).collect(), true));
            legend(&mut out, color, true, &format!("{} for {}", s.baseline, s.key));
        }
    }
    out.push_str("</svg>\n");
    out
}
