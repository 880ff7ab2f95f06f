//! The desired-state loader's fuzz run: feeds `load` generated inputs and
//! checks that it never panics and that every rejection is a clear error
//! (see `tests/support/fuzz.rs`), then loads the hostile inputs (alias
//! bombs, deep nesting, the largest file the daemon accepts) and prints
//! how long they took and the peak memory.
//!
//! ```sh
//! cargo run --release -p ecs-reconciler-spec --example fuzz -- --inputs 1000000
//! ```
//!
//! Options: `--inputs N` (default 100000), `--seed S` (default 1),
//! `--save-new DIR` (write one input per rejection kind the corpus lacks).
//! Exit status 1 when any input broke an invariant; those inputs are
//! written to `target/fuzz-failures/`.

#[path = "../tests/support/fuzz.rs"]
mod fuzz;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuzz::{Rng, Verdict};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
const SEED_FILE: &str = include_str!("../../../examples/seed.yaml");

struct Args {
    inputs: u64,
    seed: u64,
    save_new: Option<PathBuf>,
}

fn args() -> Args {
    let mut args = Args {
        inputs: 100_000,
        seed: 1,
        save_new: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--inputs" => {
                args.inputs = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--inputs: a number"));
            }
            "--seed" => {
                args.seed = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seed: a number"));
            }
            "--save-new" => args.save_new = Some(PathBuf::from(value())),
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    args
}

fn usage(message: &str) -> ! {
    eprintln!("error: {message}\nusage: fuzz [--inputs N] [--seed S] [--save-new DIR]");
    std::process::exit(64);
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(CORPUS)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let bytes = std::fs::read(e.path()).ok()?;
                    Some((name, String::from_utf8_lossy(&bytes).into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.push(("examples/seed.yaml".into(), SEED_FILE.into()));
    files
}

fn save(dir: &Path, name: &str, input: &str) {
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(dir.join(name), input);
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let args = args();
    let corpus = corpus();
    let known_kinds: std::collections::BTreeSet<String> = corpus
        .iter()
        .filter_map(|(_, text)| fuzz::rejection_kind(text))
        .collect();
    // A panic is a finding, not the end of the run: keep the default
    // message off stderr and count it.
    std::panic::set_hook(Box::new(|_| {}));
    let failures_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");

    let mut rng = Rng::new(args.seed);
    let mut by_source: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut new_kinds = 0usize;
    let (mut panics, mut violations) = (0u64, 0u64);
    let mut times: Vec<u32> = Vec::with_capacity(args.inputs as usize);
    let (mut slowest, mut slowest_len) = (Duration::ZERO, 0usize);
    let (mut bytes_total, mut max_diagnostics) = (0u64, 0usize);
    let started = Instant::now();
    for i in 0..args.inputs {
        let (source, input) = match rng.below(10) {
            0 | 1 => ("random bytes", fuzz::random_bytes(&mut rng, 512)),
            2..=6 => {
                let base = corpus[rng.below(corpus.len())].1.clone();
                ("mutated file", fuzz::mutate(&mut rng, &base))
            }
            _ => ("structured YAML", fuzz::structured(&mut rng)),
        };
        bytes_total += input.len() as u64;
        let outcome = std::panic::catch_unwind(|| fuzz::check(&input));
        let entry = by_source.entry(source).or_default();
        match outcome {
            Err(_) => {
                panics += 1;
                save(&failures_dir, &format!("panic-{i}.yaml"), &input);
            }
            Ok(Err(why)) => {
                violations += 1;
                eprintln!("input {i} ({source}): {why}");
                save(&failures_dir, &format!("violation-{i}.yaml"), &input);
            }
            Ok(Ok((verdict, took))) => {
                times.push(took.as_micros().min(u32::MAX as u128) as u32);
                if took > slowest {
                    (slowest, slowest_len) = (took, input.len());
                }
                match verdict {
                    Verdict::Accepted => entry.0 += 1,
                    Verdict::Rejected(n) => {
                        entry.1 += 1;
                        max_diagnostics = max_diagnostics.max(n);
                        if let Some(kind) = fuzz::rejection_kind(&input) {
                            let count = kinds.entry(kind.clone()).or_default();
                            *count += 1;
                            if *count == 1
                                && !known_kinds.contains(&kind)
                                && let Some(dir) = &args.save_new
                                && new_kinds < 100
                            {
                                new_kinds += 1;
                                save(dir, &format!("fuzz-{:04}.yaml", kinds.len()), &input);
                            }
                        }
                    }
                }
            }
        }
    }
    let wall = started.elapsed();
    times.sort_unstable();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    let total = args.inputs;
    println!(
        "fuzz run: {total} inputs, seed {}, {:.1} s ({:.0} inputs/s), {:.1} MiB of input",
        args.seed,
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        bytes_total as f64 / 1048576.0
    );
    for (source, (accepted, rejected)) in &by_source {
        println!("  {source:<16} accepted {accepted:>8}  rejected {rejected:>8}");
    }
    println!("  panics {panics}, invariant violations {violations}");
    println!(
        "  distinct rejection kinds {} (new to the corpus: {})",
        kinds.len(),
        kinds.keys().filter(|k| !known_kinds.contains(*k)).count()
    );
    println!(
        "  per input: median {} µs, p99 {} µs, max {:.0} µs ({} bytes); most diagnostics in one input {max_diagnostics}",
        pct(0.5),
        pct(0.99),
        micros(slowest),
        slowest_len
    );
    println!(
        "  peak RSS after the run {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );

    println!("hostile inputs:");
    for (name, input) in [
        (
            "alias bomb, 10 levels (10^10 if expanded)",
            fuzz::alias_bomb(10),
        ),
        ("alias bomb, 40 levels", fuzz::alias_bomb(40)),
        ("flow nesting 100000 deep", fuzz::flow_nesting(100_000)),
        ("block nesting 2000 deep", fuzz::block_nesting(2_000)),
        ("4 MiB file of 1-char list items", "- a\n".repeat(1 << 20)),
        (
            "4 MiB file of aliases",
            format!("a: &a x\nb: [{}]\n", vec!["*a"; 800_000].join(",")),
        ),
    ] {
        let before = peak_rss_kib();
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| ecs_reconciler_spec::load(&input));
        let took = started.elapsed();
        let verdict = match &result {
            Err(_) => {
                panics += 1;
                "PANIC".to_string()
            }
            Ok(Ok(_)) => "accepted".to_string(),
            Ok(Err(d)) => format!(
                "rejected, {} diagnostics, first: {}",
                d.len(),
                d.iter().next().map(|d| d.message.as_str()).unwrap_or("")
            ),
        };
        println!(
            "  {name}: {:.1} KiB in, {:.2} ms, peak RSS {:.1} → {:.1} MiB; {verdict}",
            input.len() as f64 / 1024.0,
            took.as_secs_f64() * 1e3,
            before as f64 / 1024.0,
            peak_rss_kib() as f64 / 1024.0
        );
    }
    if panics + violations > 0 {
        eprintln!(
            "FAILED: {panics} panics, {violations} violations (inputs in {})",
            failures_dir.display()
        );
        std::process::exit(1);
    }
}
