//! `ecs-reconciler`: keeps an ECS service, its security groups, its ALB and
//! its target group true to a desired-state YAML file.
//!
//! This file only wires the CLI to the commands; exit codes are in
//! [`exit`].

mod cli;
mod commands;
mod duration;
mod exit;
mod render;
mod signals;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap would exit 2, which here means "drift": use EX_USAGE.
            let code = if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = err.print();
            return std::process::ExitCode::from(code);
        }
    };
    cli::init_logging(&cli.global);
    let code = commands::run(cli);
    std::process::ExitCode::from(code)
}
