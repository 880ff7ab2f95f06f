//! Node tree -> `file` structs, by hand rather than through serde: serde
//! stops at the first error, and people fixing a file want every error at
//! once. A field that fails to decode gets a placeholder and its path is
//! marked failed, so `validate` can skip checks that would only repeat the
//! problem. Every value's position is recorded under its path (e.g.
//! `securityGroups[1].ingress[0].cidr`) for the semantic errors.
//!
//! This module holds the machinery: the recorded spans, the `Decoder` with
//! its field accessors (required, optional, list, unknown keys) and the
//! `Decode` trait. `values` decodes the leaves (text, numbers, booleans,
//! lists, protocols, ports, keywords) and `sections` each mapping of the
//! format, one `impl` per `file` struct.

use std::collections::{HashMap, HashSet};

use crate::diag::{Diagnostic, Pos, list_names, nearest};
use crate::file::DesiredStateFile;
use crate::yaml::{Entry, Node, Value};

mod sections;
mod values;

/// Positions by path, and the paths whose value failed to decode.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    at: HashMap<String, Pos>,
    failed: HashSet<String>,
}

impl Spans {
    /// The position of `path`, or of its nearest recorded ancestor (a
    /// missing field is reported where its mapping starts).
    pub fn pos(&self, path: &str) -> Pos {
        let mut path = path;
        loop {
            if let Some(pos) = self.at.get(path) {
                return *pos;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return Pos::START,
            }
        }
    }

    /// Whether the value at `path`, or a value containing it, failed to
    /// decode (or is missing though required): it was already reported.
    pub fn failed(&self, path: &str) -> bool {
        let mut path = path;
        loop {
            if self.failed.contains(path) {
                return true;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return false,
            }
        }
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |i| &path[..i]))
}

/// The last step of a path, for messages: `ingress[0].cidr` -> `cidr`.
fn leaf(path: &str) -> &str {
    path.rfind('.').map_or(path, |i| &path[i + 1..])
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) struct Decoded {
    pub file: DesiredStateFile,
    pub spans: Spans,
    pub errors: Vec<Diagnostic>,
    /// The file is empty or not a mapping: nothing else is worth checking.
    pub fatal: bool,
}

pub(crate) fn decode(root: &Node) -> Decoded {
    let mut d = Decoder::default();
    d.spans.at.insert(String::new(), root.pos);
    let fatal = match &root.value {
        Value::Null => {
            d.errors.push(Diagnostic::new(
                Pos::START,
                None,
                "the file declares nothing: it is empty, or holds only comments or `null`",
                "declare at least one resource under securityGroups, clusters, services, targetGroups or loadBalancers; an empty file is refused rather than read as \"manage nothing\"",
            ));
            true
        }
        Value::Map(_) => false,
        _ => {
            d.errors.push(Diagnostic::new(
                root.pos,
                None,
                format!(
                    "the top level of the file must be a mapping, not {}",
                    root.describe()
                ),
                "start the file with keys such as `version: 1` and `securityGroups:`",
            ));
            true
        }
    };
    let file = if fatal {
        DesiredStateFile::default()
    } else {
        DesiredStateFile::decode(&mut d, root, "").unwrap_or_default()
    };
    Decoded {
        file,
        spans: d.spans,
        errors: d.errors,
        fatal,
    }
}

#[derive(Default)]
pub(crate) struct Decoder {
    spans: Spans,
    errors: Vec<Diagnostic>,
}

/// A mapping whose keys have been checked against the known fields.
struct Fields<'n> {
    path: String,
    pos: Pos,
    what: &'static str,
    entries: &'n [Entry],
}

/// Values the decoder can build from a node.
trait Decode: Sized + Default {
    /// For "must be X" messages.
    const EXPECTED: &'static str;
    /// `None` if the node does not fit (already reported, path marked failed).
    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self>;
}

impl Decoder {
    /// Reports that the value at `path` cannot be used.
    fn fail(&mut self, pos: Pos, path: &str, message: String, hint: impl Into<String>) {
        self.failed(path);
        self.errors
            .push(Diagnostic::new(pos, Some(path), message, hint));
    }

    fn failed(&mut self, path: &str) {
        self.spans.failed.insert(path.to_owned());
    }

    fn mismatch(&mut self, node: &Node, path: &str, expected: &str, hint: impl Into<String>) {
        let message = format!(
            "`{}` must be {expected}, not {}",
            leaf(path),
            node.describe()
        );
        self.fail(node.pos, path, message, hint);
    }

    /// The node as a mapping of `what`, with every key outside `known`
    /// reported (with a "did you mean" when one is close).
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &'static str,
        known: &[&'static str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.mismatch(
                node,
                path,
                &format!("a mapping ({what})"),
                format!("write {what} as `key: value` lines indented under it"),
            );
            return None;
        };
        for entry in entries {
            if known.contains(&entry.key.as_str()) {
                continue;
            }
            let hint = match nearest(&entry.key, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!(
                    "remove it: {what} takes {}",
                    list_names(known.iter().copied())
                ),
            };
            self.errors.push(Diagnostic::new(
                entry.key_pos,
                Some(&child(path, &entry.key)),
                format!("unknown field `{}` in {what}", entry.key),
                hint,
            ));
        }
        Some(Fields {
            path: path.to_owned(),
            pos: node.pos,
            what,
            entries,
        })
    }

    /// The present, non-null value of `key`, its span recorded.
    fn value<'n>(&mut self, m: &Fields<'n>, key: &str) -> Option<(&'n Node, String)> {
        let node = m.entries.iter().find(|e| e.key == key).map(|e| &e.value)?;
        let path = child(&m.path, key);
        self.spans.at.insert(path.clone(), node.pos);
        Some((node, path))
    }

    fn null<T: Decode>(&mut self, node: &Node, path: &str) {
        let key = leaf(path);
        let hint = if T::EXPECTED == "a list" {
            format!("write `{key}: []` for an empty list, or indent its entries under `{key}:`")
        } else {
            format!("write {} after `{key}:`, or remove the line", T::EXPECTED)
        };
        self.fail(node.pos, path, format!("`{key}` has no value"), hint);
    }

    /// A required field: missing or null is an error (placeholder value).
    fn req<T: Decode>(&mut self, m: &Fields, key: &str) -> T {
        let Some((node, path)) = self.value(m, key) else {
            let path = child(&m.path, key);
            self.fail(
                m.pos,
                &path,
                format!("{} is missing the required field `{key}`", this(m.what)),
                format!("add `{}`", example(key)),
            );
            return T::default();
        };
        if node.value == Value::Null {
            self.null::<T>(node, &path);
            return T::default();
        }
        T::decode(self, node, &path).unwrap_or_default()
    }

    /// An optional field: missing or null means `None` (as with serde).
    fn opt<T: Decode>(&mut self, m: &Fields, key: &str) -> Option<T> {
        let (node, path) = self.value(m, key)?;
        if node.value == Value::Null {
            return None;
        }
        T::decode(self, node, &path)
    }

    /// An optional list: missing means empty, but null is refused (as with
    /// serde), so a forgotten indentation is not read as "no entries".
    fn list<T: Decode>(&mut self, m: &Fields, key: &str) -> Vec<T> {
        let Some((node, path)) = self.value(m, key) else {
            return Vec::new();
        };
        if node.value == Value::Null {
            self.null::<Vec<T>>(node, &path);
            return Vec::new();
        }
        Vec::decode(self, node, &path).unwrap_or_default()
    }
}

/// "a security group" -> "this security group".
fn this(what: &str) -> String {
    match what.strip_prefix("a ").or_else(|| what.strip_prefix("an ")) {
        Some(rest) => format!("this {rest}"),
        None => what.to_owned(),
    }
}

/// What to write for a missing required field.
fn example(key: &str) -> String {
    let value = match key {
        "name" => "my-name",
        "ingress" => {
            "[]` (no rules) or a list of rules, e.g. `- {protocol: tcp, ports: 443, cidr: 0.0.0.0/0}"
        }
        "protocol" => "tcp",
        "cluster" => "my-cluster",
        "service" => "my-service",
        "replicas" => "2",
        "family" => "my-task-family",
        "containerName" => "api",
        "containerPort" => "3000",
        "port" => "80",
        "from" => "8",
        "to" => "-1",
        _ => "...",
    };
    format!("{key}: {value}")
}
