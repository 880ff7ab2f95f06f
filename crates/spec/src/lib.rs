//! Desired state: the YAML file people edit -> validated `model` types,
//! with every error reported at once as `FILE:LINE:COL: error: ...` plus a
//! hint. No I/O: the caller reads the file and hands over its text.
//!
//! The pipeline is `yaml` (text -> spanned node tree, refusing anchors,
//! tags, duplicate keys, several documents, deep nesting) -> `decode` (tree
//! -> `file` structs, collecting every shape error) -> `validate` (`file`
//! structs -> `model::DesiredState`, collecting every semantic error). The
//! JSON Schema published in `docs/schema.json` is generated from the same
//! `file` structs.

mod decode;
mod diag;
pub mod file;
pub mod model;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

pub use diag::{Diagnostic, Diagnostics, Pos};
pub use model::*;

/// Parses and validates a desired-state file.
///
/// On success every reference resolves, every CIDR is canonical and every
/// per-resource mode is resolved against the global one. On failure the
/// [`Diagnostics`] hold every error found, in document order; render them
/// with [`Diagnostics::render`] and the file's name.
pub fn load(source: &str) -> Result<DesiredState, Diagnostics> {
    let root = yaml::parse(source).map_err(Diagnostics::new)?;
    let decoded = decode::decode(&root);
    if decoded.fatal {
        return Err(Diagnostics::new(decoded.errors));
    }
    let (state, semantic) = validate::validate(&decoded.file, &decoded.spans);
    if decoded.errors.is_empty() && semantic.is_empty() {
        return Ok(state);
    }
    // Shape errors first: at a shared position they are the root cause.
    let mut errors = decoded.errors;
    errors.extend(semantic);
    Err(Diagnostics::new(errors))
}

/// The JSON Schema (draft 2020-12) of the desired-state file, generated from
/// the [`file`] types. Editors use it through a first line such as
/// `# yaml-language-server: $schema=../docs/schema.json`.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(file::DesiredStateFile).to_value();
    unwrap_descriptions(&mut schema);
    schema
}

/// [`json_schema`] pretty-printed, without a final newline: `ecs-reconciler
/// schema` prints it with `println!`, and `docs/schema.json` holds exactly
/// that output. `$schema`, `title` and `description` come first so the
/// file reads top-down.
pub fn json_schema_string() -> String {
    let schema = json_schema();
    match schema.as_object() {
        Some(map) => serde_json::to_string_pretty(&TopDown(map)),
        None => serde_json::to_string_pretty(&schema),
    }
    // Serializing a `Value` cannot fail; keep the output JSON regardless.
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Doc comments are wrapped at 80 columns; editors show descriptions as
/// flowing text, so single line breaks become spaces (paragraphs stay).
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// A JSON object serialized with its header keys first, the rest in order.
struct TopDown<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl serde::Serialize for TopDown<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const FIRST: [&str; 4] = ["$schema", "title", "description", "type"];
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for key in FIRST {
            if let Some(value) = self.0.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in self.0 {
            if !FIRST.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}
