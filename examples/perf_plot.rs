//! Draws `docs/perf-cost.svg` from the tables `benches/compare.sh` writes:
//! cost per call against live blocks, log-log, original vs port vs glibc
//! malloc, for an appending `allocate` and for `deallocate_pool` (all match).
//!
//! ```sh
//! cargo run --release --example perf_plot -- docs/perf docs/perf-cost.svg
//! ```
//!
//! With `--scaling` it draws `docs/perf-scaling.svg` from the tables
//! `benches/scaling.sh` writes instead: ns per allocate against live blocks
//! (N = 1 000 ... 100 000), original vs port vs port with `indexed-fit` vs
//! glibc malloc, for allocates that walk the whole list and for allocates
//! that reuse a block at its end.
//!
//! ```sh
//! cargo run --release --example perf_plot -- --scaling docs/perf docs/perf-scaling.svg
//! ```
//!
//! With `--mallocs` it draws `docs/perf-mallocs.svg` from the table
//! `benches/mallocs.sh` writes: instructions against live blocks for the
//! release of a 16-block pool and for a reusing allocate, run.s and the port
//! beside glibc malloc, mimalloc and jemalloc.
//!
//! ```sh
//! cargo run --release --example perf_plot -- --mallocs docs/perf docs/perf-mallocs.svg
//! ```
//!
//! A hand-written SVG (no plotting crate): the figure is two panels of six
//! polylines, which is less code than the dependency tree of `plotters` would
//! cost to compile on a 2-core machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

type Table = BTreeMap<(String, String, u64), f64>;

/// Reads `impl op n value` rows (tab-separated, with a header line).
fn read_table(path: &Path) -> Table {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut table = Table::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if let [imp, op, n, value] = f[..] {
            let (Ok(n), Ok(value)) = (n.parse(), value.parse()) else {
                continue;
            };
            table.insert((imp.to_string(), op.to_string(), n), value);
        }
    }
    table
}

const WIDTH: f64 = 980.0;
const HEIGHT: f64 = 470.0;
const PANEL_W: f64 = 380.0;
const PANEL_H: f64 = 300.0;
const TOP: f64 = 70.0;
const LEFTS: [f64; 2] = [80.0, 570.0];

struct Series {
    imp: &'static str,
    op: &'static str,
    label: &'static str,
    color: &'static str,
    dash: &'static str,
    marker: Marker,
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Cross,
    Square,
    Diamond,
}

const SERIES: [Series; 6] = [
    Series {
        imp: "original",
        op: "append",
        label: "original (run.s), append",
        color: "#1f5fbf",
        dash: "",
        marker: Marker::Circle,
    },
    Series {
        imp: "port",
        op: "append",
        label: "port, append",
        color: "#e07000",
        dash: "",
        marker: Marker::Cross,
    },
    Series {
        imp: "malloc",
        op: "append",
        label: "glibc malloc, allocate",
        color: "#2a9d3a",
        dash: "",
        marker: Marker::Square,
    },
    Series {
        imp: "original",
        op: "pool_all",
        label: "original, deallocate_pool (all N match)",
        color: "#1f5fbf",
        dash: "6 4",
        marker: Marker::Circle,
    },
    Series {
        imp: "port",
        op: "pool_all",
        label: "port, deallocate_pool (all N match)",
        color: "#e07000",
        dash: "6 4",
        marker: Marker::Cross,
    },
    Series {
        imp: "malloc",
        op: "pool_all",
        label: "glibc malloc, free all N",
        color: "#2a9d3a",
        dash: "6 4",
        marker: Marker::Square,
    },
];

const SCALING_SERIES: [Series; 8] = [
    scaling(
        "original",
        "walk",
        "original (run.s)",
        "#1f5fbf",
        "",
        Marker::Circle,
    ),
    scaling(
        "port",
        "walk",
        "port (asm walk)",
        "#e07000",
        "",
        Marker::Cross,
    ),
    scaling(
        "indexed",
        "walk",
        "port, indexed-fit",
        "#8e2bbf",
        "",
        Marker::Diamond,
    ),
    scaling(
        "malloc",
        "walk",
        "glibc malloc",
        "#2a9d3a",
        "",
        Marker::Square,
    ),
    scaling("original", "reuse_end", "", "#1f5fbf", "", Marker::Circle),
    scaling("port", "reuse_end", "", "#e07000", "", Marker::Cross),
    scaling("indexed", "reuse_end", "", "#8e2bbf", "", Marker::Diamond),
    scaling("malloc", "reuse_end", "", "#2a9d3a", "", Marker::Square),
];

const MALLOCS_SERIES: [Series; 14] = [
    scaling(
        "original",
        "release",
        "original (run.s)",
        "#1f5fbf",
        "",
        Marker::Circle,
    ),
    scaling(
        "port",
        "release",
        "port (asm walk)",
        "#e07000",
        "",
        Marker::Cross,
    ),
    scaling(
        "indexed",
        "release",
        "port, indexed-fit",
        "#8e2bbf",
        "",
        Marker::Diamond,
    ),
    scaling(
        "glibc",
        "release",
        "glibc malloc",
        "#2a9d3a",
        "",
        Marker::Square,
    ),
    scaling(
        "mimalloc",
        "release",
        "mimalloc",
        "#b8860b",
        "6 4",
        Marker::Circle,
    ),
    scaling(
        "jemalloc",
        "release",
        "jemalloc",
        "#c0392b",
        "6 4",
        Marker::Square,
    ),
    scaling(
        "bump",
        "release",
        "bump arena (the floor)",
        "#555555",
        "2 3",
        Marker::Cross,
    ),
    scaling("original", "reuse", "", "#1f5fbf", "", Marker::Circle),
    scaling("port", "reuse", "", "#e07000", "", Marker::Cross),
    scaling("indexed", "reuse", "", "#8e2bbf", "", Marker::Diamond),
    scaling("glibc", "reuse", "", "#2a9d3a", "", Marker::Square),
    scaling("mimalloc", "reuse", "", "#b8860b", "6 4", Marker::Circle),
    scaling("jemalloc", "reuse", "", "#c0392b", "6 4", Marker::Square),
    scaling("bump", "reuse", "", "#555555", "2 3", Marker::Cross),
];

const fn scaling(
    imp: &'static str,
    op: &'static str,
    label: &'static str,
    color: &'static str,
    dash: &'static str,
    marker: Marker,
) -> Series {
    Series {
        imp,
        op,
        label,
        color,
        dash,
        marker,
    }
}

fn decades(min: f64, max: f64) -> (i32, i32) {
    let lo = min.max(1e-9).log10().floor() as i32;
    let hi = max.log10().ceil() as i32;
    (lo, hi.max(lo + 1))
}

fn superscript(exp: i32) -> String {
    format!("10<tspan dy=\"-7\" font-size=\"10\">{exp}</tspan>")
}

/// What one panel shows.
struct Panel<'a> {
    left: f64,
    title: &'a str,
    unit: &'a str,
    series: &'a [Series],
    /// Decades of N on the x axis.
    x_decades: (i32, i32),
}

fn panel(svg: &mut String, p: &Panel, table: &Table, ns: &[u64]) {
    let (left, title, unit) = (p.left, p.title, p.unit);
    // The y range covers the plotted series only.
    let values: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| {
            ns.iter()
                .filter_map(move |&n| table.get(&(s.imp.to_string(), s.op.to_string(), n)))
        })
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    let (ylo, yhi) = decades(
        values.iter().copied().fold(f64::INFINITY, f64::min),
        values.iter().copied().fold(0.0, f64::max),
    );
    let (xlo, xhi) = p.x_decades;
    let x = |n: f64| left + (n.log10() - xlo as f64) / (xhi - xlo) as f64 * PANEL_W;
    let y = |v: f64| TOP + PANEL_H - (v.log10() - ylo as f64) / (yhi - ylo) as f64 * PANEL_H;
    let bottom = TOP + PANEL_H;
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold" text-anchor="middle">{title}</text>"##,
        left + PANEL_W / 2.0,
        TOP - 14.0
    );
    // Grid and ticks.
    for e in ylo..=yhi {
        let yy = y(10f64.powi(e));
        let _ = writeln!(
            svg,
            r##"<line x1="{left:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
            left + PANEL_W,
            left - 6.0,
            yy + 4.0,
            superscript(e)
        );
    }
    for e in xlo..=xhi {
        let xx = x(10f64.powi(e));
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{TOP:.1}" x2="{xx:.1}" y2="{bottom:.1}" stroke="#ddd"/><text x="{xx:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
            bottom + 18.0,
            superscript(e)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{left:.1}" y="{TOP:.1}" width="{PANEL_W:.1}" height="{PANEL_H:.1}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">live blocks N</text>"##,
        left + PANEL_W / 2.0,
        bottom + 38.0
    );
    let _ = writeln!(
        svg,
        r##"<text transform="translate({:.1},{:.1}) rotate(-90)" font-size="13" text-anchor="middle">{unit}</text>"##,
        left - 50.0,
        TOP + PANEL_H / 2.0
    );
    for s in p.series {
        let points: Vec<(f64, f64)> = ns
            .iter()
            .filter_map(|&n| {
                let v = *table.get(&(s.imp.to_string(), s.op.to_string(), n))?;
                (v > 0.0).then(|| (x(n as f64), y(v)))
            })
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"##,
            path.join(" "),
            s.color,
            s.dash
        );
        for &(a, b) in &points {
            marker(svg, s.marker, a, b, s.color);
        }
    }
}

fn marker(svg: &mut String, marker: Marker, x: f64, y: f64, color: &str) {
    let _ = match marker {
        Marker::Circle => writeln!(
            svg,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="none" stroke="{color}" stroke-width="2"/>"##
        ),
        Marker::Cross => writeln!(
            svg,
            r##"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="{color}" stroke-width="2"/>"##,
            x - 4.0,
            y - 4.0
        ),
        Marker::Diamond => writeln!(
            svg,
            r##"<path d="M{x:.1},{:.1} l6,6 l-6,6 l-6,-6 z" fill="white" stroke="{color}" stroke-width="2"/>"##,
            y - 6.0
        ),
        Marker::Square => writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{color}"/>"##,
            x - 4.0,
            y - 4.0
        ),
    };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let svg = match &args[1..] {
        [flag, dir, out] if flag == "--scaling" => (scaling_svg(Path::new(dir)), out),
        [flag, dir, out] if flag == "--mallocs" => (mallocs_svg(Path::new(dir)), out),
        [dir, out] => (cost_svg(Path::new(dir)), out),
        _ => {
            eprintln!("usage: perf_plot [--scaling | --mallocs] DOCS_PERF_DIR OUT.svg");
            std::process::exit(2);
        }
    };
    let (svg, out) = svg;
    std::fs::write(out, svg).unwrap_or_else(|e| panic!("write {out}: {e}"));
    eprintln!("wrote {out}");
}

fn header(svg: &mut String, title: &str) {
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{:.1}" y="26" font-size="17" text-anchor="middle">{title}</text>"##,
        WIDTH / 2.0
    );
}

fn legend(svg: &mut String, series: &[Series], per_row: usize, column: f64) {
    let legend_top = TOP + PANEL_H + 62.0;
    for (i, s) in series.iter().filter(|s| !s.label.is_empty()).enumerate() {
        let lx = 80.0 + (i % per_row) as f64 * column;
        let ly = legend_top + (i / per_row) as f64 * 22.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"##,
            lx + 34.0,
            s.color,
            s.dash
        );
        marker(svg, s.marker, lx + 17.0, ly, s.color);
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            lx + 42.0,
            ly + 4.0,
            s.label
        );
    }
}

/// docs/perf-cost.svg, from compare.sh's ir.tsv and time.tsv.
fn cost_svg(dir: &Path) -> String {
    let ir = read_table(&dir.join("ir.tsv"));
    let time = read_table(&dir.join("time.tsv"));
    let ns = [10, 100, 1000, 10000];
    let mut svg = String::new();
    header(
        &mut svg,
        "Cost per call vs live blocks (log-log): same C workload, three allocators",
    );
    let panel_of = |left, title, unit| Panel {
        left,
        title,
        unit,
        series: &SERIES,
        x_decades: (1, 4),
    };
    panel(
        &mut svg,
        &panel_of(
            LEFTS[0],
            "Instructions (callgrind)",
            "instructions per call",
        ),
        &ir,
        &ns,
    );
    panel(
        &mut svg,
        &panel_of(LEFTS[1], "Wall time (median)", "ns per call"),
        &time,
        &ns,
    );
    legend(&mut svg, &SERIES, 3, 300.0);
    svg.push_str("</svg>\n");
    svg
}

/// docs/perf-scaling.svg, from scaling.sh's scaling-time.tsv.
fn scaling_svg(dir: &Path) -> String {
    let time = read_table(&dir.join("scaling-time.tsv"));
    let ns = [1000, 2000, 5000, 10000, 20000, 50000, 100000];
    let mut svg = String::new();
    header(
        &mut svg,
        "ns per allocate vs live blocks (log-log): first fit by walk, by index, and malloc",
    );
    let panel_of = |left, title, series| Panel {
        left,
        title,
        unit: "ns per allocate (median)",
        series,
        x_decades: (3, 5),
    };
    panel(
        &mut svg,
        &panel_of(
            LEFTS[0],
            "Walks the whole list, then appends",
            &SCALING_SERIES[..4],
        ),
        &time,
        &ns,
    );
    panel(
        &mut svg,
        &panel_of(
            LEFTS[1],
            "Reuses the free block at the end",
            &SCALING_SERIES[4..],
        ),
        &time,
        &ns,
    );
    legend(&mut svg, &SCALING_SERIES, 4, 220.0);
    svg.push_str("</svg>\n");
    svg
}

/// docs/perf-mallocs.svg, from mallocs.sh's mallocs.tsv.
fn mallocs_svg(dir: &Path) -> String {
    let ir = read_table(&dir.join("mallocs.tsv"));
    let ns = [1000, 10000, 100000];
    let mut svg = String::new();
    header(
        &mut svg,
        "Instructions vs live blocks (log-log): the port beside general-purpose allocators",
    );
    let panel_of = |left, title, series| Panel {
        left,
        title,
        unit: "instructions per call (callgrind)",
        series,
        x_decades: (3, 5),
    };
    panel(
        &mut svg,
        &panel_of(LEFTS[0], "Release a 16-block pool", &MALLOCS_SERIES[..7]),
        &ir,
        &ns,
    );
    panel(
        &mut svg,
        &panel_of(
            LEFTS[1],
            "Reuse the free block at the end",
            &MALLOCS_SERIES[7..],
        ),
        &ir,
        &ns,
    );
    legend(&mut svg, &MALLOCS_SERIES, 4, 220.0);
    svg.push_str("</svg>\n");
    svg
}
