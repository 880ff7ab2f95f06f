//! Shared by the fuzz command (`examples/fuzz.rs`) and the tests: input
//! generators (raw bytes, mutations of real files, structured YAML built
//! from the format's own vocabulary) and the invariants every input must
//! keep — `load` never panics, and every rejection is a clear error: at
//! least one diagnostic, each inside the file, with a message and a hint.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*): the fuzz run is
/// reproducible from its seed and needs no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Tokens that matter to YAML or to this format: mutations splice them in.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!x ",
    "---\n",
    "...\n",
    "\t",
    "  ",
    "\n",
    "\"",
    "'",
    "|\n",
    ">\n",
    "? ",
    "%YAML 1.2\n",
    "~",
    "null",
    "true",
    "no",
    "0x1F",
    "1e400",
    "-1",
    "0",
    "65535",
    "65536",
    "99999999999999999999",
    "0.0.0.0/0",
    "0.0.0.0/33",
    "::/0",
    "10.0.0.1/8",
    "sg-0123",
    "tcp",
    "udp",
    "icmp",
    "-1",
    "all",
    "80-79",
    "1-65535",
    "ports",
    "cidr",
    "sourceGroup",
    "replicas",
    "min",
    "max",
    "mode",
    "observe",
    "paused",
    "enforce",
    "exclusive",
    "owned",
    "shared",
    "version",
    "policy",
    "securityGroups",
    "clusters",
    "services",
    "targetGroups",
    "loadBalancers",
    "ingress",
    "name",
    "é",
    "\u{feff}",
    "\u{0}",
    "\r\n",
    "\u{2028}",
    "😀",
];

/// Keys of the format, for the structured generator.
const KEYS: &[&str] = &[
    "version",
    "mode",
    "policy",
    "maxDestructivePerPass",
    "maxDestructivePercent",
    "securityGroups",
    "name",
    "id",
    "vpcId",
    "management",
    "ingress",
    "protocol",
    "ports",
    "cidr",
    "cidrIpv6",
    "sourceGroup",
    "description",
    "paused",
    "clusters",
    "instanceSecurityGroups",
    "services",
    "cluster",
    "replicas",
    "min",
    "max",
    "launchType",
    "schedulingStrategy",
    "taskDefinition",
    "family",
    "containerName",
    "containerPort",
    "hostPort",
    "targetGroups",
    "targetType",
    "healthCheckPath",
    "service",
    "membership",
    "loadBalancers",
    "securityGroups",
    "listeners",
    "port",
    "unknownKey",
];

const SCALARS: &[&str] = &[
    "1",
    "2",
    "0",
    "-1",
    "80",
    "443",
    "3000",
    "32768-65535",
    "65536",
    "tcp",
    "udp",
    "all",
    "0.0.0.0/0",
    "10.0.0.0/8",
    "::/0",
    "0.0.0.0/33",
    "web",
    "LoadBalancerGroup",
    "nestjs-api",
    "nestjs-cluster",
    "enforce",
    "observe",
    "paused",
    "exclusive",
    "owned",
    "shared",
    "EC2",
    "REPLICA",
    "DAEMON",
    "instance",
    "/",
    "/health",
    "HTTP",
    "true",
    "false",
    "null",
    "\"\"",
    "'quoted'",
    "\"80\"",
    "x",
    "1.5",
    "sg-0123456789abcdef0",
];

/// Random bytes, read as UTF-8 the way a lossy reader would.
pub fn random_bytes(rng: &mut Rng, max_len: usize) -> String {
    let len = rng.below(max_len + 1);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A real file with 1-8 random edits: splice a token, delete or duplicate
/// a span, swap two lines, re-indent a line.
pub fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut text: Vec<char> = base.chars().collect();
    for _ in 0..=rng.below(8) {
        let at = rng.below(text.len() + 1);
        match rng.below(6) {
            0 | 1 => {
                let token: Vec<char> = rng.pick(TOKENS).chars().collect();
                text.splice(at..at, token);
            }
            2 => {
                let end = (at + rng.below(24)).min(text.len());
                text.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(40)).min(text.len());
                let span: Vec<char> = text[at..end].to_vec();
                text.splice(at..at, span);
            }
            4 => {
                let s: String = text.iter().collect();
                let mut lines: Vec<&str> = s.lines().collect();
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                text = lines.join("\n").chars().collect();
            }
            _ => {
                let s: String = text.iter().collect();
                let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    let indent = " ".repeat(rng.below(9));
                    lines[i] = format!("{indent}{}", lines[i].trim_start());
                }
                text = lines.join("\n").chars().collect();
            }
        }
    }
    text.into_iter().collect()
}

/// Structured YAML from the format's own keys and values: mostly well
/// formed, so it reaches the decoder and the validator rather than the
/// scanner.
pub fn structured(rng: &mut Rng) -> String {
    let mut out = String::new();
    let top = [
        "version",
        "mode",
        "policy",
        "securityGroups",
        "clusters",
        "services",
        "targetGroups",
        "loadBalancers",
    ];
    for key in top {
        if rng.chance(30) {
            continue;
        }
        out.push_str(key);
        out.push(':');
        value(rng, &mut out, 1, 0);
    }
    out
}

fn value(rng: &mut Rng, out: &mut String, depth: usize, indent: usize) {
    let pad = " ".repeat(indent + 2);
    match if depth > 4 { 0 } else { rng.below(4) } {
        0 => {
            out.push(' ');
            out.push_str(rng.pick(SCALARS));
            out.push('\n');
        }
        1 => {
            out.push('\n');
            for _ in 0..=rng.below(3) {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(rng.pick(KEYS));
                out.push(':');
                value(rng, out, depth + 1, indent + 4);
                for _ in 0..rng.below(4) {
                    out.push_str(&pad);
                    out.push_str("  ");
                    out.push_str(rng.pick(KEYS));
                    out.push(':');
                    value(rng, out, depth + 1, indent + 4);
                }
            }
        }
        2 => {
            out.push('\n');
            for _ in 0..=rng.below(4) {
                out.push_str(&pad);
                out.push_str(rng.pick(KEYS));
                out.push(':');
                value(rng, out, depth + 1, indent + 2);
            }
        }
        _ => {
            out.push_str(" [");
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(rng.pick(SCALARS));
            }
            out.push_str("]\n");
        }
    }
}

/// What one input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Rejected with this many diagnostics.
    Rejected(usize),
}

/// Loads `input` and checks the invariants; `Err` says which one broke.
/// A panic is not caught here: the caller decides (the fuzz command
/// catches and saves the input, a test simply fails).
pub fn check(input: &str) -> Result<(Verdict, Duration), String> {
    let started = Instant::now();
    let result = ecs_reconciler_spec::load(input);
    let took = started.elapsed();
    match result {
        Ok(_) => Ok((Verdict::Accepted, took)),
        Err(diagnostics) => {
            if diagnostics.is_empty() {
                return Err("rejected without any diagnostic".into());
            }
            // Lines as YAML counts them (\n, \r\n and a lone \r all end
            // one, as in editors); a position may point one line past the
            // last (end of file).
            let lines = input.replace("\r\n", "\n").split(['\n', '\r']).count() + 1;
            for d in &diagnostics {
                if d.line == 0 || d.col == 0 || d.line > lines {
                    return Err(format!(
                        "position {}:{} outside the file ({lines} lines)",
                        d.line, d.col
                    ));
                }
                if d.message.trim().is_empty() || d.hint.trim().is_empty() {
                    return Err(format!(
                        "diagnostic at {}:{} without a message or hint",
                        d.line, d.col
                    ));
                }
            }
            Ok((Verdict::Rejected(diagnostics.len()), took))
        }
    }
}

/// The first diagnostic's message with numbers and quoted text blanked: one
/// "kind" of rejection, used to keep one corpus file per kind.
pub fn rejection_kind(input: &str) -> Option<String> {
    let diagnostics = ecs_reconciler_spec::load(input).err()?;
    let first = diagnostics.iter().next()?;
    let mut kind = String::new();
    let mut quoted: Option<char> = None;
    for c in first.message.chars() {
        match c {
            '`' | '"' if quoted.is_none() || quoted == Some(c) => {
                quoted = if quoted.is_some() { None } else { Some(c) };
                kind.push(c);
            }
            _ if quoted.is_some() => {}
            '0'..='9' => {
                if !kind.ends_with('#') {
                    kind.push('#');
                }
            }
            _ => kind.push(c),
        }
    }
    Some(kind)
}

/// An alias bomb ("billion laughs"): each level names the previous one ten
/// times. Expanded it would be 10^levels strings.
pub fn alias_bomb(levels: usize) -> String {
    let mut out = String::from("a0: &a0 [\"lol\"]\n");
    for i in 1..=levels {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        out.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    out
}

/// `depth` nested flow sequences: `[[[...]]]`.
pub fn flow_nesting(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` nested block mappings, one more space of indent per level (the
/// text grows with depth², so keep depth in the thousands).
pub fn block_nesting(depth: usize) -> String {
    let mut block = String::new();
    for i in 0..depth {
        block.push_str(&" ".repeat(i));
        block.push_str("k:\n");
    }
    block
}
