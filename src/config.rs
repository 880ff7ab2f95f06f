//! Reading the desired-state file: the one place the CLI does file I/O for
//! config, turning every failure into a message with file:line:col.

use std::path::Path;

use ecs_reconciler_spec::DesiredState;

/// Loads and validates the file; on failure returns the text to print.
pub fn load(path: &Path) -> Result<DesiredState, String> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|err| {
        format!(
            "{display}: error: cannot read the config file: {err}\n  hint: pass an existing file with --config or ECS_RECONCILER_CONFIG"
        )
    })?;
    ecs_reconciler_spec::load(&source).map_err(|diagnostics| diagnostics.render(&display))
}
