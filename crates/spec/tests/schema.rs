//! `docs/schema.json` is generated: this fails when it is stale, and
//! rewrites it when run with `UPDATE_SCHEMA=1`.

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.json");

#[test]
fn docs_schema_json_is_up_to_date() {
    // What `ecs-reconciler schema` prints: the string and a newline.
    let generated = format!("{}\n", ecs_reconciler_spec::json_schema_string());
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(SCHEMA_PATH, &generated).expect("write docs/schema.json");
        return;
    }
    let committed = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/schema.json is stale: regenerate it with `cargo run -- schema > docs/schema.json` \
         (or `UPDATE_SCHEMA=1 cargo test -p ecs-reconciler-spec`) and commit it"
    );
}

#[test]
fn schema_describes_the_file() {
    let schema = ecs_reconciler_spec::json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "ecs-reconciler desired state");
    assert_eq!(schema["additionalProperties"], false);
    // Every property has a description, so editors can explain every key.
    fn walk(value: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = value.get("properties").and_then(|p| p.as_object()) {
            for (key, prop) in props {
                if prop.get("description").is_none() {
                    missing.push(format!("{path}.{key}"));
                }
            }
        }
        if let Some(map) = value.as_object() {
            for (key, child) in map {
                walk(child, &format!("{path}/{key}"), missing);
            }
        }
    }
    let mut missing = Vec::new();
    walk(&schema, "", &mut missing);
    assert!(missing.is_empty(), "undescribed: {missing:?}");
}
