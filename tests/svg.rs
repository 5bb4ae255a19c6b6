//! The heap pictures: structure of the SVG, and `docs/seed.svg` up to date.

use brk_pools::{Heap, svg};

/// The picture steps of a scenario script, on a fresh arena.
fn steps(script: &str) -> Vec<svg::Step> {
    let mut heap = Heap::on_arena(1 << 40).unwrap();
    svg::script_steps(&mut heap, script)
}

fn scenario(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/scenarios/{name}.ops",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
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

/// The `<g class="step">` groups' `data-blocks` and the block groups they hold.
fn blocks_per_step(svg: &str) -> Vec<(usize, usize)> {
    svg.split("<g class=\"step\"")
        .skip(1)
        .map(|step| {
            let declared = step
                .split("data-blocks=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            let step = step.split("<g class=\"legend\"").next().unwrap();
            (declared, step.matches("<g class=\"block ").count())
        })
        .collect()
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
    // The block each allocate returned is the highlighted one.
    assert_eq!(picture.matches("highlight\"").count(), 4); // 3 allocates, 1 deallocate
    assert!(picture.contains("class=\"block in-use highlight\" data-offset=\"432\""));
    // After deallocate_pool(2) both pool-2 blocks are free and hatched.
    let last = picture.split("data-step=\"3\"").nth(1).unwrap();
    let last = last.split("data-step=\"4\"").next().unwrap();
    assert_eq!(last.matches("class=\"block free").count(), 2);
    assert_eq!(last.matches("fill=\"url(#free)\"").count(), 2);
}

#[test]
fn every_scenario_draws_well_formed() {
    let dir = format!("{}/tests/scenarios", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let script = std::fs::read_to_string(&path).unwrap();
        let steps = steps(&script);
        let picture = svg::render(&steps);
        balanced(&picture).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Left in target/ for looking at (rsvg-convert, a browser).
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scenario-svg");
        std::fs::create_dir_all(&out).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        std::fs::write(out.join(format!("{name}.svg")), &picture).unwrap();
        for (n, (declared, drawn)) in blocks_per_step(&picture).into_iter().enumerate() {
            assert_eq!(declared, steps[n].blocks.len(), "{}", path.display());
            assert_eq!(drawn, declared, "{} step {n}", path.display());
        }
    }
}

#[test]
fn captions_are_the_trace_op_lines() {
    for name in ["seed", "stale_handle", "extreme_pools"] {
        let script = scenario(name);
        let mut heap = Heap::on_arena(1 << 40).unwrap();
        let trace = brk_pools::trace::run(&mut heap, &script, brk_pools::trace::Layouts::FinalOnly);
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
/// `UPDATE_DOCS=1 cargo test --test svg` (or `cargo run -- trace
/// tests/scenarios/seed.ops --svg docs/seed.svg`) redraws it.
#[test]
fn docs_seed_svg_is_up_to_date() {
    let picture = svg::render(&steps(&scenario("seed")));
    let path = format!("{}/docs/seed.svg", env!("CARGO_MANIFEST_DIR"));
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
