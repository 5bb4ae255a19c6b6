//! `brk-pools step --html` in a real browser: headless Chromium driven over
//! WebDriver ([`webdriver`]). For several scenarios the page must show, at
//! every step the keys reach, what the text listing says for that step (the
//! instruction and its effects on both sides, the registers read and
//! written, the header `%rsi` points at), reload to the same view from its
//! URL fragment, and raise no error. A 300-operation script's page must stay
//! within 5 MB and be ready within 2 s.
//!
//! Without `chromium` and `chromedriver` the test says it skips; with
//! `BRK_POOLS_REQUIRE_BROWSER=1` (as `.ci/run` sets) a missing browser is a
//! failure. Screenshots are written to the temporary directory
//! (`brk-pools-viewer-*.png`).

#[path = "../../tests/support/mod.rs"]
mod support;
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Rng, root, staticlib};
use webdriver::{Browser, DOWN, LEFT, RIGHT};

/// The scenarios loaded in the browser.
const SCENARIOS: [&str; 5] = [
    "exact_fit",
    "first_fit",
    "seed",
    "skip_too_small",
    "double_free",
];

/// Keys pressed in each scenario (chromedriver takes about 0.1 s a key):
/// Right, a Left at the 8th, a Down at the 10th.
const PRESSES: usize = 16;

fn browser(test: &str) -> Option<Browser> {
    let required = std::env::var("BRK_POOLS_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    match Browser::start() {
        Ok(Some(browser)) => Some(browser),
        Ok(None) if required => panic!(
            "{test}: chromium and chromedriver are required (BRK_POOLS_REQUIRE_BROWSER=1): \
             apt-get install chromium chromium-driver fonts-dejavu-core"
        ),
        Ok(None) => {
            eprintln!(
                "{test}: skipped: no chromium or chromedriver on PATH (apt-get install chromium \
                 chromium-driver fonts-dejavu-core; BRK_POOLS_REQUIRE_BROWSER=1 makes this a \
                 failure)"
            );
            None
        }
        Err(e) => panic!("{test}: cannot start the browser: {e}"),
    }
}

/// One side of a listing row: `label text effects`, spaces collapsed.
type Side = Option<String>;

/// The default listing, parsed: per operation, per row, run.s's and the
/// port's line.
fn parse_listing(listing: &str) -> Vec<Vec<(Side, Side)>> {
    let collapse = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut ops: Vec<Vec<(Side, Side)>> = Vec::new();
    let mut side: Option<&str> = None;
    for line in listing.lines() {
        if line.starts_with("op ") {
            ops.push(Vec::new());
            continue;
        }
        if line.starts_with("~ = pairing table") {
            break;
        }
        let Some(rows) = ops.last_mut() else {
            continue;
        };
        let head = line.get(..6).unwrap_or_default().trim();
        let name = line.get(7..12).unwrap_or_default().trim();
        let rest = collapse(line.get(13..).unwrap_or_default());
        if !head.is_empty() {
            rows.push((None, None));
        }
        let Some(row) = rows.last_mut() else {
            continue;
        };
        let target = match name {
            "both" | "run.s" | "port" => {
                side = Some(name);
                match name {
                    "both" => {
                        row.0 = Some(rest.clone());
                        row.1 = Some(rest);
                        continue;
                    }
                    "run.s" => &mut row.0,
                    _ => &mut row.1,
                }
            }
            // A continuation: the effects of the line above.
            _ => match side {
                Some("both") => {
                    for text in [&mut row.0, &mut row.1].into_iter().flatten() {
                        *text = format!("{text} {rest}");
                    }
                    continue;
                }
                Some("run.s") => &mut row.0,
                _ => &mut row.1,
            },
        };
        *target = Some(match target.take() {
            Some(text) => format!("{text} {rest}"),
            None => rest,
        });
    }
    // "(no walk instruction)" rows stand for an operation without rows.
    for rows in &mut ops {
        if rows.len() == 1 && rows[0].0.as_deref() == Some("(no walk instruction)") {
            rows[0] = (None, None);
        }
    }
    ops
}

/// The view as the page shows it.
#[derive(Debug, PartialEq)]
struct View {
    position: String,
    original: Side,
    port: Side,
    /// `[register, value, class]` of run.s's register table.
    registers: Vec<(String, String, String)>,
    /// The offset `%rsi` is drawn at (empty when no heap is drawn).
    rsi: String,
}

fn view(browser: &Browser) -> View {
    let value = browser
        .execute(
            "const text = (id) => { const e = document.getElementById(id); \
               return e ? e.textContent : null; }; \
             const side = (s) => text(s + '-text') === null ? null : \
               (text(s + '-text') + ' ' + text(s + '-effects')).split(/\\s+/).join(' ').trim(); \
             const regs = [...document.querySelectorAll('#orig td[data-reg]')] \
               .map((td) => [td.dataset.reg, td.title, td.className]); \
             const rsi = document.getElementById('rsi-block'); \
             return [text('pos'), side('orig'), side('port'), regs, \
               rsi && rsi.dataset.offset ? rsi.dataset.offset : ''];",
        )
        .expect("the view");
    let string = |v: &Value| v.as_str().map(str::to_string);
    View {
        position: string(&value[0]).unwrap_or_default(),
        original: string(&value[1]),
        port: string(&value[2]),
        registers: value[3]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    string(&r[0]).unwrap_or_default(),
                    string(&r[1]).unwrap_or_default(),
                    string(&r[2]).unwrap_or_default(),
                )
            })
            .collect(),
        rsi: string(&value[4]).unwrap_or_default(),
    }
}

/// Checks the view against the listing's row `(op, row)`.
fn check(name: &str, listing: &[Vec<(Side, Side)>], at: (usize, usize), view: &View) {
    let (op, row) = at;
    let rows = &listing[op];
    let context = format!("{name} at op {op} row {row}: {view:#?}");
    assert!(
        view.position
            .starts_with(&format!("op {op} \u{b7} row {row} ")),
        "{context}"
    );
    let (original, port) = rows.get(row).cloned().unwrap_or((None, None));
    assert_eq!(view.original, original, "run.s's side, {context}");
    assert_eq!(view.port, port, "the port's side, {context}");
    // The registers run.s's instruction reads and writes, in its table.
    let effects = original.as_deref().unwrap_or_default();
    for token in effects.split(' ') {
        let (reg, value, class) = match token.split_once(":=") {
            Some((reg, value)) => (reg, value, "written"),
            None => match token.split_once('=') {
                Some((reg, value)) if reg.starts_with('r') => (reg, value, "read"),
                _ => continue,
            },
        };
        if value.starts_with('(') {
            continue; // "(return address)" is split by the spaces
        }
        let cell = view.registers.iter().find(|r| r.0 == reg);
        assert_eq!(
            cell.map(|c| (c.1.as_str(), c.2.as_str())),
            Some((value, class)),
            "%{reg} in run.s's table, {context}"
        );
    }
    // %rsi in the heap: where run.s's instructions of this operation last
    // left it.
    let last_rsi = rows[..=row.min(rows.len().saturating_sub(1))]
        .iter()
        .filter_map(|r| r.0.as_deref())
        .flat_map(|text| text.split(' '))
        .filter_map(|t| t.strip_prefix("rsi=").or_else(|| t.strip_prefix("rsi:=")))
        .next_back();
    match last_rsi {
        Some(offset) if offset.starts_with('+') || offset.starts_with('-') => {
            assert_eq!(view.rsi, offset, "%rsi in the heap, {context}");
        }
        _ => assert_eq!(view.rsi, "", "no heap is drawn, {context}"),
    }
}

/// Writes the page and the listing for `script` (a file).
fn page(script: &Path, out: &Path) -> String {
    let lib = staticlib();
    let output = support::brk_pools_command()
        .arg("step")
        .arg(script)
        .arg("--html")
        .arg(out)
        .arg("--port-lib")
        .arg(&lib)
        .output()
        .expect("brk-pools runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 listing")
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Opens `url` and waits for the ready flag; the time from the request to
/// the flag.
fn open(browser: &Browser, url: &str) -> Duration {
    let started = Instant::now();
    browser.goto(url).expect("the page loads");
    browser
        .wait_for(
            "document.body && document.body.dataset.ready === '1'",
            Duration::from_secs(20),
        )
        .expect("the page gets ready");
    started.elapsed()
}

fn errors(browser: &Browser) -> Value {
    browser
        .execute("return window.pageErrors;")
        .expect("the error collector")
}

/// A scratch directory for the pages, removed on drop (a failing test
/// too).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("brk-pools-browser-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every step the keys reach shows the listing's step; the fragment
/// reloads to the same view.
fn scenario(browser: &Browser, dir: &Path, name: &str) {
    let script = root().join(format!("tests/scenarios/{name}.ops"));
    let out = dir.join(format!("{name}.html"));
    let listing = parse_listing(&page(&script, &out));
    let steps: Vec<(usize, usize)> = listing
        .iter()
        .enumerate()
        .flat_map(|(op, rows)| (0..rows.len().max(1)).map(move |row| (op, row)))
        .collect();
    open(browser, &url(&out));
    assert_eq!(errors(browser), Value::Array(vec![]), "{name}");
    let mut at = 0;
    check(name, &listing, steps[at], &view(browser));
    // Right and Left on the focused slider move one instruction each.
    let slider = browser.find("#slider").expect("the slider");
    for press in 0..PRESSES {
        let (key, next) = match press % 10 {
            7 => (LEFT, at.saturating_sub(1)),
            9 => {
                let op = (steps[at].0 + 1).min(listing.len() - 1);
                (DOWN, steps.iter().position(|s| *s == (op, 0)).unwrap())
            }
            _ => (RIGHT, (at + 1).min(steps.len() - 1)),
        };
        browser.send_keys(&slider, key).expect("keys");
        at = next;
        check(name, &listing, steps[at], &view(browser));
        if press == 12 {
            browser
                .screenshot(&std::env::temp_dir().join(format!("brk-pools-viewer-{name}.png")))
                .expect("a screenshot");
        }
    }
    // The fragment names the step; a reload shows the same view.
    let hash = browser.execute("return location.hash;").unwrap();
    let (op, row) = steps[at];
    assert_eq!(hash, Value::String(format!("#op{op}.i{row}")), "{name}");
    let before = view(browser);
    browser.refresh().expect("reload");
    browser
        .wait_for(
            "document.body.dataset.ready === '1'",
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(view(browser), before, "{name}: reloaded from {hash}");
    // A link to the last step opens there.
    let last = *steps.last().unwrap();
    open(browser, &format!("{}#op{}.i{}", url(&out), last.0, last.1));
    check(name, &listing, last, &view(browser));
    assert_eq!(errors(browser), Value::Array(vec![]), "{name}");
}

/// A seeded script of `ops` operations: allocates (some reusing freed
/// blocks), frees and pool releases, so that walks grow long.
fn long_script(ops: usize) -> String {
    let mut rng = Rng(300);
    let mut out = String::from("# a long script for the viewer\n");
    let mut handles = 0;
    for _ in 0..ops {
        let roll = rng.below(100);
        if roll < 60 || handles == 0 {
            out.push_str(&format!("a {} {}\n", rng.below(5), rng.below(200)));
            handles += 1;
        } else if roll < 90 {
            out.push_str(&format!("d {}\n", rng.below(handles)));
        } else {
            out.push_str(&format!("p {}\n", rng.below(5)));
        }
    }
    out
}

#[test]
fn the_viewer_shows_the_listings_steps_in_chromium() {
    if brk_pools::build_info::INDEXED_FIT {
        eprintln!("skipped: an indexed-fit build has no walk to step");
        return;
    }
    let Some(browser) = browser("the_viewer_shows_the_listings_steps_in_chromium") else {
        return;
    };
    let scratch = Scratch::new();
    let dir = scratch.0.as_path();
    for name in SCENARIOS {
        scenario(&browser, dir, name);
    }

    // A 300-operation script: small, fast, and still the listing's steps.
    let script = dir.join("long.ops");
    std::fs::write(&script, long_script(300)).unwrap();
    let out = dir.join("long.html");
    let listing = parse_listing(&page(&script, &out));
    assert_eq!(listing.len(), 300);
    let size = std::fs::metadata(&out).unwrap().len();
    let ready = open(&browser, &url(&out));
    eprintln!(
        "300 operations: page {size} bytes, ready in {} ms",
        ready.as_millis()
    );
    assert!(size <= 5_000_000, "{size} bytes");
    assert!(ready <= Duration::from_secs(2), "ready after {ready:?}");
    let short = dir.join("exact_fit.html");
    let short_ready = open(&browser, &url(&short));
    eprintln!(
        "exact_fit: page {} bytes, ready in {} ms",
        std::fs::metadata(&short).unwrap().len(),
        short_ready.as_millis()
    );
    // The longest operation's last row, linked.
    let (op, rows) = listing
        .iter()
        .enumerate()
        .max_by_key(|(_, rows)| rows.len())
        .unwrap();
    let at = (op, rows.len() - 1);
    open(&browser, &format!("{}#op{}.i{}", url(&out), at.0, at.1));
    check("long", &listing, at, &view(&browser));
    browser
        .screenshot(&std::env::temp_dir().join("brk-pools-viewer-long.png"))
        .expect("a screenshot");
    assert_eq!(errors(&browser), Value::Array(vec![]), "long");
}
