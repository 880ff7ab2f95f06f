//! YAML text -> a small spanned node tree, built from saphyr-parser's event
//! stream. This is the only module that knows YAML: it refuses what the file
//! format does not need and what could hurt (anchors and aliases, tags, more
//! than one document, deep nesting, duplicate keys) and resolves plain
//! scalars the YAML 1.2 core-schema way, so `80` is a number and `"80"` text.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use crate::diag::{Diagnostic, Pos};

/// Deeper nesting than this is refused: the format needs six levels, and a
/// bound keeps a hostile file from costing more than its size.
pub(crate) const MAX_DEPTH: usize = 64;
/// Values (scalars, lists, mappings) in one file: a config for a thousand
/// services holds about 30,000, so this bounds the tree's memory (~50 MiB)
/// long before the 4 MiB file-size cap would.
pub(crate) const MAX_NODES: usize = 250_000;
/// Refusals collected before the reader gives up on a file.
pub(crate) const MAX_ERRORS: usize = 100;

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~`, or nothing at all.
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in document order; keys are unique.
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    /// Quoted or block (`|`, `>`) scalars are always text; plain ones are
    /// resolved by [`Scalar::kind`].
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// What a scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// An integer; `None` when it does not fit in an `i64`.
    Int(Option<i64>),
    Float(f64),
    Bool(bool),
    Str,
}

impl Scalar {
    pub fn kind(&self) -> Kind {
        if self.quoted {
            return Kind::Str;
        }
        let t = self.text.as_str();
        match t {
            "true" | "True" | "TRUE" => return Kind::Bool(true),
            "false" | "False" | "FALSE" => return Kind::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Kind::Float(f64::INFINITY);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
            _ => {}
        }
        if let Some(hex) = t.strip_prefix("0x")
            && !hex.is_empty()
            && hex.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Kind::Int(i64::from_str_radix(hex, 16).ok());
        }
        if let Some(oct) = t.strip_prefix("0o")
            && !oct.is_empty()
            && oct.chars().all(|c| ('0'..='7').contains(&c))
        {
            return Kind::Int(i64::from_str_radix(oct, 8).ok());
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return Kind::Int(t.parse().ok());
        }
        if is_core_float(t) {
            return Kind::Float(t.parse().unwrap_or(f64::NAN));
        }
        Kind::Str
    }
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_core_float(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

impl Node {
    /// A short description for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing".to_owned(),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
            Value::Scalar(s) => match s.kind() {
                Kind::Int(_) | Kind::Float(_) => format!("the number {}", s.text),
                Kind::Bool(_) => format!("the boolean {}", s.text),
                Kind::Str => {
                    // A whole paragraph pasted in the wrong place should
                    // not become a paragraph-long error message.
                    const SHOWN: usize = 40;
                    if s.text.chars().count() > SHOWN {
                        let head: String = s.text.chars().take(SHOWN).collect();
                        format!("{head:?}… ({} characters)", s.text.chars().count())
                    } else {
                        format!("{:?}", s.text)
                    }
                }
            },
        }
    }

    /// The node as JSON, the way a YAML 1.2 core-schema loader would see it.
    /// Tests feed this to serde to check that the hand decoder and the
    /// serde/schema types agree.
    #[cfg(test)]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
            Value::Scalar(s) => match s.kind() {
                Kind::Int(Some(i)) => J::from(i),
                Kind::Float(f) => J::from(f),
                Kind::Bool(b) => J::Bool(b),
                Kind::Int(None) | Kind::Str => J::String(s.text.clone()),
            },
        }
    }
}

fn pos(span: &Span) -> Pos {
    // saphyr lines are 1-based, columns 0-based.
    Pos::new(span.start.line(), span.start.col() + 1)
}

fn error(pos: Pos, message: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::new(pos, None, message, hint)
}

fn syntax_error(e: &ScanError) -> Diagnostic {
    let pos = Pos::new(e.marker().line(), e.marker().col() + 1);
    let info = e.info();
    let hint = if info.contains("tab") {
        "indent with spaces: YAML does not allow tabs for indentation"
    } else if info.contains("escape") {
        "inside double quotes a backslash starts an escape; use single quotes for text with backslashes"
    } else {
        "check the indentation, the `:` after each key and the quoting on this line and the one before"
    };
    error(pos, format!("invalid YAML: {info}"), hint)
}

/// A mapping or sequence under construction.
enum Frame {
    Seq {
        pos: Pos,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        entries: Vec<Entry>,
        /// `None`: the next node is a key. `Some(None)`: the key was
        /// refused (reported), so its value is dropped.
        key: Option<Option<(String, Pos)>>,
        first_seen: HashMap<String, Pos>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    errors: Vec<Diagnostic>,
}

impl Builder {
    /// Where a finished node goes: the root, a list, or a mapping (as key or
    /// value).
    fn attach(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(Some((key, key_pos))) => entries.push(Entry {
                    key,
                    key_pos,
                    value: node,
                }),
                Some(None) => {}
                None => {
                    // A complex key (a list or a mapping, written with `?`).
                    self.errors.push(error(
                        node.pos,
                        "a mapping key must be plain text, not a list or a mapping",
                        "write keys as `name: value`",
                    ));
                    *key = Some(None);
                }
            },
        }
    }

    /// A scalar in key position becomes the pending key (whatever it
    /// resolves to: `1: x` is the key "1").
    fn scalar(&mut self, text: String, quoted: bool, pos: Pos) {
        if let Some(Frame::Map {
            key: key @ None,
            first_seen,
            ..
        }) = self.stack.last_mut()
        {
            if let Some(first) = first_seen.get(&text) {
                self.errors.push(error(
                    pos,
                    format!("duplicate key `{text}` in this mapping"),
                    format!(
                        "the first `{text}` is at line {}, column {}: keep one of them (YAML tools disagree on which one wins)",
                        first.line, first.col
                    ),
                ));
                *key = Some(None);
            } else {
                first_seen.insert(text.clone(), pos);
                *key = Some(Some((text, pos)));
            }
            return;
        }
        let value = if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
            Value::Null
        } else {
            Value::Scalar(Scalar { text, quoted })
        };
        self.attach(Node { pos, value });
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(
                pos,
                format!("the file nests more than {MAX_DEPTH} levels deep"),
                "this format never nests deeper than 6 levels: check the indentation and the brackets",
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) {
        let node = match self.stack.pop() {
            Some(Frame::Seq { pos, items }) => Node {
                pos,
                value: Value::Seq(items),
            },
            Some(Frame::Map { pos, entries, .. }) => Node {
                pos,
                value: Value::Map(entries),
            },
            None => return,
        };
        self.attach(node);
    }
}

fn refuse_anchor(errors: &mut Vec<Diagnostic>, anchor: usize, pos: Pos) {
    if anchor != 0 {
        errors.push(error(
            pos,
            "YAML anchors (`&name`) are not supported",
            "write the value out in full: anchors and aliases are refused so that a small file cannot expand into a huge one",
        ));
    }
}

fn refuse_tag(errors: &mut Vec<Diagnostic>, tag: Option<&Tag>, pos: Pos) {
    if let Some(tag) = tag {
        // As written: `!!str`, `!local`, `!e!suffix`.
        let written = if tag.is_yaml_core_schema() {
            format!("!!{}", tag.suffix)
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        };
        errors.push(error(
            pos,
            format!("YAML tags (`{written}`) are not supported"),
            "remove the tag; to make a value text, quote it instead",
        ));
    }
}

/// Parses one YAML document into a node tree. An empty stream (nothing, or
/// only comments) gives a `Null` root at 1:1: deciding that an empty file is
/// an error belongs to the decoder. Errors come back all together; a syntax
/// error ends the parse, the other refusals are collected first.
pub(crate) fn parse(source: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        errors: Vec::new(),
    };
    let mut documents = 0usize;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(source) {
        let (event, span) = match event {
            Ok(ok) => ok,
            Err(e) => {
                b.errors.push(syntax_error(&e));
                return Err(b.errors);
            }
        };
        let at = pos(&span);
        if matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        ) {
            nodes += 1;
            if nodes > MAX_NODES {
                b.errors.push(error(
                    at,
                    format!("the file holds more than {MAX_NODES} values"),
                    "split the topology over several controllers, or check that this is the file you meant",
                ));
                return Err(b.errors);
            }
        }
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    b.errors.push(error(
                        at,
                        "the file holds more than one YAML document",
                        "keep a single document: remove this `---` and everything after it, or merge it into the first",
                    ));
                    return Err(b.errors);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                refuse_anchor(&mut b.errors, anchor, at);
                refuse_tag(&mut b.errors, tag.as_deref(), at);
                b.scalar(text.into_owned(), style != ScalarStyle::Plain, at);
            }
            Event::Alias(_) => {
                b.errors.push(error(
                    at,
                    "YAML aliases (`*name`) are not supported",
                    "write the value out in full: anchors and aliases are refused so that a small file cannot expand into a huge one",
                ));
                // Keep the tree's shape so later keys are still checked.
                b.scalar(String::new(), false, at);
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_anchor(&mut b.errors, anchor, at);
                refuse_tag(&mut b.errors, tag.as_deref(), at);
                let frame = Frame::Seq {
                    pos: at,
                    items: Vec::new(),
                };
                if let Err(e) = b.open(frame, at) {
                    b.errors.push(e);
                    return Err(b.errors);
                }
            }
            Event::MappingStart(anchor, tag) => {
                refuse_anchor(&mut b.errors, anchor, at);
                refuse_tag(&mut b.errors, tag.as_deref(), at);
                let frame = Frame::Map {
                    pos: at,
                    entries: Vec::new(),
                    key: None,
                    first_seen: HashMap::new(),
                };
                if let Err(e) = b.open(frame, at) {
                    b.errors.push(e);
                    return Err(b.errors);
                }
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(),
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
        }
        // A file of a million aliases must not become a million errors.
        if b.errors.len() >= MAX_ERRORS {
            b.errors.push(error(
                at,
                format!("stopped reading after {MAX_ERRORS} errors"),
                "fix the errors above, then load the file again",
            ));
            return Err(b.errors);
        }
    }
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    Ok(b.root.unwrap_or(Node {
        pos: Pos::START,
        value: Value::Null,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        Scalar {
            text: text.to_owned(),
            quoted: false,
        }
        .kind()
    }

    #[test]
    fn plain_scalars_resolve_like_the_core_schema() {
        assert_eq!(kind("80"), Kind::Int(Some(80)));
        assert_eq!(kind("-1"), Kind::Int(Some(-1)));
        assert_eq!(kind("0x1F"), Kind::Int(Some(31)));
        assert_eq!(kind("99999999999999999999"), Kind::Int(None));
        assert_eq!(kind("1.5"), Kind::Float(1.5));
        assert_eq!(kind("1e3"), Kind::Float(1000.0));
        assert_eq!(kind("true"), Kind::Bool(true));
        for text in ["80-90", "0.0.0.0/0", "::/0", "1.2.3", "yes", "e3", "-", "."] {
            assert_eq!(kind(text), Kind::Str, "{text}");
        }
    }

    #[test]
    fn builds_spanned_tree() {
        let node = parse("a:\n  - b: \"1\"\n    c: ~\n").unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("root is not a map")
        };
        assert_eq!(entries[0].key, "a");
        let Value::Seq(items) = &entries[0].value.value else {
            panic!("a is not a list")
        };
        let Value::Map(inner) = &items[0].value else {
            panic!("item is not a map")
        };
        assert_eq!(inner[0].value.pos, Pos { line: 2, col: 8 });
        assert_eq!(
            inner[0].value.value,
            Value::Scalar(Scalar {
                text: "1".into(),
                quoted: true
            })
        );
        assert_eq!(inner[1].value.value, Value::Null);
    }
}
