//! `sync` and `confirm`: clients of a running daemon's control API, for
//! operators without a shell in the daemon's task. The token comes from a
//! file (`--token-file`) or the environment, never from a flag.

use std::path::Path;
use std::time::Duration;

use ecs_reconciler_runtime::http;
use serde_json::{Value, json};

use crate::cli::{ControlClientArgs, OutputFormat};
use crate::exit;

/// Shortest token accepted: a guessable one would open the write path.
pub const MIN_TOKEN_LEN: usize = 16;

/// How long `sync --wait` waits (the server gives up at 10 minutes).
const WAIT: Duration = Duration::from_secs(610);
/// How long a request without waiting may take.
const SEND: Duration = Duration::from_secs(10);

/// The token in `path`, trimmed; an error says what is wrong and how to fix
/// it.
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        format!(
            "error: cannot read the control token file {}: {err}\n  hint: write a random token into it, e.g. `openssl rand -hex 32 > {}`",
            path.display(),
            path.display()
        )
    })?;
    check_token(text.trim(), &path.display().to_string())
}

fn check_token(token: &str, from: &str) -> Result<String, String> {
    if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
        return Err(format!(
            "error: the control token in {from} must be at least {MIN_TOKEN_LEN} characters with no spaces\n  hint: `openssl rand -hex 32` makes one"
        ));
    }
    Ok(token.to_string())
}

fn token(args: &ControlClientArgs) -> Result<String, String> {
    match (&args.token_file, &args.token) {
        (Some(path), _) => read_token(path),
        (None, Some(token)) => check_token(token.trim(), "ECS_RECONCILER_CONTROL_TOKEN"),
        (None, None) => Err(
            "error: no control token\n  hint: pass --token-file FILE (the daemon's --control-token-file) or set ECS_RECONCILER_CONTROL_TOKEN"
                .into(),
        ),
    }
}

/// Sends one request; prints the refusal and returns its exit code when the
/// daemon did not accept it.
async fn send(
    args: &ControlClientArgs,
    path: &str,
    body: &Value,
    limit: Duration,
) -> Result<(u16, Value), u8> {
    let token = token(args).map_err(|message| {
        eprintln!("{message}");
        exit::USAGE
    })?;
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let (code, answer) = http::post_json(&url, &token, body.to_string().as_bytes(), limit)
        .await
        .map_err(|err| {
            eprintln!(
                "error: {err}\n  hint: is the daemon running with --control-token-file, and --url its --listen address?"
            );
            exit::ERROR
        })?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if !(200..300).contains(&code) {
        let why = answer["error"].as_str().unwrap_or("no reason given");
        eprintln!("error: {url} answered {code}: {why}");
        return Err(exit::ERROR);
    }
    Ok((code, answer))
}

pub async fn sync(
    args: &ControlClientArgs,
    resources: &[String],
    wait: bool,
    output: OutputFormat,
) -> u8 {
    let path = if wait {
        "/api/v1/reconcile?wait=true"
    } else {
        "/api/v1/reconcile"
    };
    let limit = if wait { WAIT } else { SEND };
    let (_, answer) = match send(args, path, &json!({"resources": resources}), limit).await {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    if output == OutputFormat::Json {
        println!("{answer}");
    }
    if !wait {
        if output == OutputFormat::Text {
            let what = if resources.is_empty() {
                "every resource".to_string()
            } else {
                resources.join(", ")
            };
            println!("accepted: {what} will be reconciled now");
        }
        return exit::OK;
    }
    let converged = answer["converged"].as_bool().unwrap_or(false);
    let errors = answer["errors"].as_u64().unwrap_or(0);
    if output == OutputFormat::Text {
        for unit in answer["units"].as_array().into_iter().flatten() {
            let error = unit["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            println!(
                "{:<40} {:<12} {} left{error}",
                unit["unit"].as_str().unwrap_or("?"),
                unit["state"].as_str().unwrap_or("gone"),
                unit["remaining"].as_u64().unwrap_or(0),
            );
        }
        println!(
            "{}",
            if converged {
                "converged"
            } else {
                "not converged"
            }
        );
    }
    if errors > 0 {
        exit::ERROR
    } else if converged {
        exit::OK
    } else {
        exit::DRIFT
    }
}

pub async fn confirm(args: &ControlClientArgs) -> u8 {
    match send(args, "/api/v1/confirm", &json!({}), SEND).await {
        Ok((_, answer)) => {
            println!(
                "confirmed: every held removal goes in the next pass ({} drastic edits were waiting)",
                answer["drastic_edits_confirmed"].as_u64().unwrap_or(0)
            );
            exit::OK
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        assert!(check_token("short", "x").is_err());
        assert!(check_token("0123456789abcdef 0123", "x").is_err());
        assert_eq!(
            check_token("0123456789abcdef", "x").unwrap(),
            "0123456789abcdef"
        );
    }
}
