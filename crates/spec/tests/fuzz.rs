//! The loader against hostile input: the regression corpus
//! (`tests/corpus/`, grown by the fuzz command's `--save-new`), property
//! tests over raw bytes, mutated files and structured YAML, and the inputs
//! built to exhaust memory or stack (alias bombs, deep nesting). The long
//! run is `cargo run --release -p ecs-reconciler-spec --example fuzz`.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use support::fuzz::{self, Rng, Verdict};

const SEED_FILE: &str = include_str!("../../../examples/seed.yaml");

/// Fails the test with the input when an invariant breaks.
fn assert_clear(input: &str) -> Verdict {
    match fuzz::check(input) {
        Ok((verdict, _)) => verdict,
        Err(why) => panic!("{why}\n--- input ---\n{input}"),
    }
}

#[test]
fn every_corpus_file_is_accepted_or_rejected_clearly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let verdict = assert_clear(&text);
        if name.starts_with("valid-") {
            assert_eq!(verdict, Verdict::Accepted, "{name} should load");
        } else {
            assert!(
                matches!(verdict, Verdict::Rejected(_)),
                "{name} should be rejected"
            );
        }
        files += 1;
    }
    assert!(files >= 15, "the corpus went missing: {files} files");
}

#[test]
fn alias_bombs_are_refused_without_expanding() {
    for levels in [10, 40] {
        let diagnostics = ecs_reconciler_spec::load(&fuzz::alias_bomb(levels)).unwrap_err();
        assert!(
            diagnostics
                .iter()
                .any(|d| d.message.contains("anchors (`&name`) are not supported")),
            "{diagnostics}"
        );
        // Refusals are collected, not one per alias without end.
        assert!(
            diagnostics.len() <= 101,
            "{} diagnostics",
            diagnostics.len()
        );
    }
    // The largest file the daemon reads (4 MiB) made of aliases.
    let aliases = format!("a: &a x\nb: [{}]\n", vec!["*a"; 800_000].join(","));
    let diagnostics = ecs_reconciler_spec::load(&aliases).unwrap_err();
    assert!(
        diagnostics.len() <= 101,
        "{} diagnostics",
        diagnostics.len()
    );
}

#[test]
fn deep_nesting_is_refused_at_the_depth_limit_without_overflowing_the_stack() {
    for input in [fuzz::flow_nesting(100_000), fuzz::block_nesting(2_000)] {
        let diagnostics = ecs_reconciler_spec::load(&input).unwrap_err();
        assert!(
            diagnostics
                .iter()
                .any(|d| d.message.contains("levels deep") || d.message.contains("recursion")),
            "{diagnostics}"
        );
    }
}

#[test]
fn hostile_inputs_finish_quickly() {
    // A guard against exponential blow-ups, not a benchmark: each of these
    // takes milliseconds (figures: docs/reliability.md).
    let inputs = [
        fuzz::alias_bomb(40),
        fuzz::flow_nesting(100_000),
        fuzz::block_nesting(2_000),
        "- a\n".repeat(1 << 20),
    ];
    for input in inputs {
        let started = std::time::Instant::now();
        let _ = ecs_reconciler_spec::load(&input);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?} for {} bytes",
            started.elapsed(),
            input.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        assert_clear(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        assert_clear(&text);
    }

    #[test]
    fn mutated_seed_files_never_panic(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        assert_clear(&fuzz::mutate(&mut rng, SEED_FILE));
    }

    #[test]
    fn structured_yaml_never_panics(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        assert_clear(&fuzz::structured(&mut rng));
    }
}
