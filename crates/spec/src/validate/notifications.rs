//! Webhooks: unique names, exactly one URL source (an environment variable
//! name or a file path, never the URL itself), at least one event, each
//! once, and the windows in range.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::Ctx;
use crate::file as f;
use crate::model::{NotificationFormat, NotificationSpec, UrlFrom};

pub(super) fn notifications(ctx: &mut Ctx, items: &[f::Notification]) -> Vec<NotificationSpec> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, String> = HashMap::new();
    for (i, n) in items.iter().enumerate() {
        let p = format!("notifications[{i}]");
        let name_path = format!("{p}.name");
        if !ctx.ok(&p) {
            continue;
        }
        if ctx.ok(&name_path) {
            ctx.non_empty(&name_path, &n.name, "a notification name");
            if let Some(first) = names.get(n.name.as_str()) {
                let line = ctx.line(first);
                ctx.error(
                    &name_path,
                    format!(
                        "notification `{}` is declared twice (first at line {line})",
                        n.name
                    ),
                    "give each webhook its own name: logs and metrics tell them apart by it",
                );
            } else {
                names.insert(&n.name, name_path.clone());
            }
        }
        let url = url_from(ctx, &n.url, &format!("{p}.url"));
        let events_path = format!("{p}.events");
        let mut events = BTreeSet::new();
        if ctx.ok(&events_path) {
            if n.events.is_empty() {
                ctx.error(
                    &events_path,
                    "a notification needs at least one event",
                    "list what it wants, e.g. `events: [drift-corrected, removals-held, fight-detected]`",
                );
            }
            for (j, event) in n.events.iter().enumerate() {
                if !events.insert(*event) {
                    ctx.error(
                        &format!("{events_path}[{j}]"),
                        "this event is listed twice",
                        "list each event once",
                    );
                }
            }
        }
        let mut read_failing_after = Duration::from_secs(300);
        if let Some(s) = n.read_failing_after_seconds
            && ctx.in_range(
                &format!("{p}.readFailingAfterSeconds"),
                s,
                30,
                86_400,
                "readFailingAfterSeconds",
            )
        {
            read_failing_after = Duration::from_secs(u64::try_from(s.0).unwrap_or(300));
        }
        let mut coalesce = Duration::from_secs(10);
        if let Some(s) = n.coalesce_seconds
            && ctx.in_range(
                &format!("{p}.coalesceSeconds"),
                s,
                1,
                3600,
                "coalesceSeconds",
            )
        {
            coalesce = Duration::from_secs(u64::try_from(s.0).unwrap_or(10));
        }
        let Some(url) = url else { continue };
        out.push(NotificationSpec {
            name: n.name.clone(),
            url,
            format: n.format.unwrap_or(NotificationFormat::Json),
            events,
            read_failing_after,
            coalesce,
        });
    }
    out
}

fn url_from(ctx: &mut Ctx, url: &f::UrlSource, p: &str) -> Option<UrlFrom> {
    if !ctx.ok(p) {
        return None;
    }
    match (&url.env, &url.file) {
        (Some(env), None) => {
            let valid = !env.is_empty()
                && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !env.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                ctx.error(
                    &format!("{p}.env"),
                    format!("`{env}` is not an environment variable name"),
                    "write the variable's name (letters, digits, _), e.g. SLACK_WEBHOOK_URL — never the URL itself: it is a secret",
                );
                return None;
            }
            Some(UrlFrom::Env(env.clone()))
        }
        (None, Some(file)) if !file.trim().is_empty() => Some(UrlFrom::File(file.clone())),
        (None, Some(_)) => {
            ctx.error(
                &format!("{p}.file"),
                "the URL file path is empty",
                "write the path of a file holding the URL, e.g. /run/secrets/slack-webhook",
            );
            None
        }
        (Some(_), Some(_)) => {
            ctx.error(
                &format!("{p}.file"),
                "a URL comes from `env` or from `file`, not both",
                "keep one of the two",
            );
            None
        }
        (None, None) => {
            ctx.error(
                p,
                "the URL needs a source",
                "write `url: {env: VARIABLE}` or `url: {file: /path/to/secret}`; the URL itself never goes in this file",
            );
            None
        }
    }
}
