//! The heap pictures: structure of the SVG, bounded size for long scripts,
//! a legend for every mark, and `docs/seed.svg` up to date.

#[path = "../../tests/support/mod.rs"]
mod support;

use brk_pools::Heap;
use brk_pools_tools::svg;
use support::root;

/// The picture steps of a scenario script, on a fresh arena.
fn steps(script: &str) -> Vec<svg::Step> {
    let mut heap = Heap::on_arena(1 << 40).unwrap();
    svg::script_steps(&mut heap, script)
}

fn scenario(name: &str) -> String {
    std::fs::read_to_string(root().join(format!("tests/scenarios/{name}.ops"))).unwrap()
}

/// Checks that every tag is closed in order (`<a>…</a>`, `<b/>`), which is
/// what a renderer needs of an SVG file beyond the names themselves.
fn balanced(xml: &str) -> Result<usize, String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().ok_or("empty tag")?;
            stack.push(name);
            elements += 1;
        } else {
            elements += 1;
        }
        if rest.contains('<') && tag.contains('<') {
            return Err(format!("`<` inside a tag: {tag}"));
        }
    }
    if stack.is_empty() {
        Ok(elements)
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

/// Each `<g class="step">` group's `data-blocks`, and the blocks it draws:
/// one per `<g class="block …">` plus each `<g class="cell">`'s `data-blocks`.
fn blocks_per_step(svg: &str) -> Vec<(usize, usize)> {
    let number = |text: &str, attribute: &str| -> usize {
        text.split(&format!("{attribute}=\""))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    svg.split("<g class=\"step\"")
        .skip(1)
        .map(|step| {
            let declared = number(step, "data-blocks");
            let step = step.split("<g class=\"legend\"").next().unwrap();
            let alone = step.matches("<g class=\"block ").count();
            let in_cells: usize = step
                .split("<g class=\"cell\"")
                .skip(1)
                .map(|cell| number(cell, "data-blocks"))
                .sum();
            (declared, alone + in_cells)
        })
        .collect()
}

/// The legend's text.
fn legend(svg: &str) -> &str {
    svg.split("<g class=\"legend\">").nth(1).unwrap()
}

#[test]
fn seed_picture_has_one_element_per_block_and_its_labels() {
    let steps = steps(&scenario("seed"));
    let picture = svg::render(&steps);
    balanced(&picture).unwrap();
    let counts = blocks_per_step(&picture);
    assert_eq!(
        counts,
        [(1, 1), (2, 2), (3, 3), (3, 3), (3, 3)],
        "one <g class=\"block\"> per block in every step"
    );
    for label in [
        "+0x0",
        "+0x1b0",
        "+0x1f0",
        "+0x260 end",
        "pool 1",
        "pool 2",
        "free",
    ] {
        assert!(
            picture.contains(&format!(">{label}<")),
            "label {label} missing"
        );
    }
    // The block each allocate returned is the highlighted one, and so are
    // the deallocate's and the two blocks deallocate_pool(2) freed.
    assert_eq!(picture.matches("highlight\"").count(), 6); // 3 a, 2 freed by p, 1 d
    assert!(picture.contains("class=\"block in-use highlight\" data-offset=\"432\""));
    // After deallocate_pool(2) both pool-2 blocks are free, hatched and
    // outlined; pool 1's block is not.
    let last = picture.split("data-step=\"3\"").nth(1).unwrap();
    let last = last.split("data-step=\"4\"").next().unwrap();
    assert_eq!(last.matches("class=\"block free").count(), 2);
    assert_eq!(last.matches("fill=\"url(#free)\"").count(), 2);
    assert_eq!(
        last.matches("class=\"block free highlight\"").count(),
        2,
        "{last}"
    );
    assert_eq!(last.matches("class=\"block in-use highlight\"").count(), 0);
}

#[test]
fn every_scenario_draws_well_formed() {
    let dir = root().join("tests/scenarios");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let script = std::fs::read_to_string(&path).unwrap();
        let steps = steps(&script);
        let picture = svg::render(&steps);
        balanced(&picture).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Left in target/ for looking at (rsvg-convert, a browser).
        let out = root().join("target/scenario-svg");
        std::fs::create_dir_all(&out).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        std::fs::write(out.join(format!("{name}.svg")), &picture).unwrap();
        for (n, (declared, drawn)) in blocks_per_step(&picture).into_iter().enumerate() {
            assert_eq!(declared, steps[n].blocks.len(), "{}", path.display());
            assert_eq!(drawn, declared, "{} step {n}", path.display());
        }
    }
}

/// 108 `a 1 16` lines made blocks narrower than 8 px and `render` panicked
/// (`clamp` with min > max); 3000 lines made a 350 000-pixel-tall picture.
#[test]
fn long_scripts_make_a_bounded_picture() {
    for (lines, drawn) in [(107, 24), (108, 24), (3000, 24)] {
        let script = "a 1 16\n".repeat(lines);
        let steps = steps(&script);
        let picture = svg::render(&steps);
        balanced(&picture).unwrap();
        assert!(picture.len() < 400_000, "{lines}: {} bytes", picture.len());
        let counts = blocks_per_step(&picture);
        assert_eq!(counts.len(), drawn, "{lines}");
        assert!(counts.iter().all(|(declared, drawn)| declared == drawn));
        assert_eq!(counts.last(), Some(&(lines, lines)));
        // Every step is a row or inside a `⋮ N operations not drawn` line.
        let elided: usize = picture
            .split("<text class=\"elision\"")
            .skip(1)
            .map(|e| {
                let n = |a: &str| -> usize {
                    e.split(&format!("{a}=\""))
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                n("data-last") - n("data-first") + 1
            })
            .sum();
        assert_eq!(elided + drawn, lines);
        assert!(picture.contains(&format!("op {}: a 1 16", lines - 1)));
        assert_eq!(
            svg::script_picture(&mut Heap::on_arena(1 << 40).unwrap(), &script),
            picture,
            "script_picture keeps only the drawn steps and draws the same"
        );
    }
}

#[test]
fn the_legend_names_every_mark_used() {
    let mut script = String::new();
    for i in 0..400 {
        script.push_str(&format!("a {} {}\n", i % 11, 16 + i % 90));
        if i % 3 == 0 {
            script.push_str(&format!("d {}\n", i / 2));
        }
    }
    script.push_str("p 4\n");
    for (name, script) in [("mixed", script), ("seed", scenario("seed"))] {
        let picture = svg::render(&steps(&script));
        let legend = legend(&picture);
        let body = picture.split("<g class=\"legend\">").next().unwrap();
        let body = body.split("</defs>").nth(1).unwrap();
        for pool in 0..11u64 {
            let colour = svg::pool_colour(pool);
            if body.contains(&format!("fill=\"{colour}\"")) {
                assert!(
                    legend.contains(&format!("fill=\"{colour}\"")),
                    "{name}: {colour}"
                );
            }
        }
        for (mark, text) in [
            ("url(#free)", "free (in_use=0, pool=0)"),
            ("class=\"header\"", "32-byte header"),
            ("class=\"outline\"", "returned or freed by the step"),
            ("class=\"cell\"", "N consecutive blocks"),
            ("class=\"elision\"", "operations without a row"),
            ("class=\"gap\"", "the break moved by someone else"),
        ] {
            assert_eq!(body.contains(mark), legend.contains(text), "{name}: {mark}");
        }
        if name == "mixed" {
            assert!(body.contains("class=\"cell\"") && body.contains("class=\"elision\""));
        }
    }
}

#[test]
fn captions_are_the_trace_op_lines() {
    for name in ["seed", "stale_handle", "extreme_pools"] {
        let script = scenario(name);
        let mut heap = Heap::on_arena(1 << 40).unwrap();
        let trace = brk_pools_tools::trace::run(
            &mut heap,
            &script,
            brk_pools_tools::trace::Layouts::FinalOnly,
        );
        let ops: Vec<&str> = trace.lines().filter(|l| l.starts_with("op ")).collect();
        let captions: Vec<String> = steps(&script).into_iter().map(|s| s.caption).collect();
        assert_eq!(captions, ops, "{name}");
    }
}

#[test]
fn balance_checker_catches_mistakes() {
    assert_eq!(balanced("<a><b/><c></c></a>"), Ok(3));
    assert!(balanced("<a><b></a>").is_err());
    assert!(balanced("<a>").is_err());
}

/// `docs/seed.svg` is the picture of `tests/scenarios/seed.ops`;
/// `UPDATE_DOCS=1 cargo test --test svg` (or `cargo run --release -- trace
/// tests/scenarios/seed.ops --svg docs/seed.svg`) redraws it.
#[test]
fn docs_seed_svg_is_up_to_date() {
    let picture = svg::render(&steps(&scenario("seed")));
    let path = root().join("docs/seed.svg");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &picture).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == picture,
        "docs/seed.svg is not the current drawing of tests/scenarios/seed.ops; \
         redraw it with `UPDATE_DOCS=1 cargo test --test svg`"
    );
}
