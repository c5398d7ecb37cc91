use std::io::IsTerminal;

use clap::Parser;

use cargo_lambda_build::build::zig;
use cargo_lambda_build::cli::{Cli, ColorChoice, Command, DockerCommand};
use cargo_lambda_build::config::Env;
use cargo_lambda_build::{docker_cmd, invoke, new, report, run};

/// The only place that exits: everything below returns, so temporary files are cleaned up.
fn main() {
    // Cross builds run this binary as zig's compiler driver (see build::zig).
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|mode| mode == zig::COMPILER_MODE) {
        std::process::exit(zig::run_compiler(&args[2..]));
    }
    let Cli::LambdaBuild(mut args) = Cli::parse();
    let color = ColorChoice::resolve(args.color_choice(), std::io::stderr().is_terminal());
    let result = Env::from_process().and_then(|env| match args.command.take() {
        Some(Command::New(new)) => new::run(&new, &env, color),
        Some(Command::Invoke(invoke_args)) => invoke::run(invoke_args, &env),
        Some(Command::Dockerfile) => docker_cmd::dockerfile(),
        Some(Command::Docker(DockerCommand::Ls(ls))) => docker_cmd::ls(&ls, color),
        Some(Command::Docker(DockerCommand::Clean(clean))) => docker_cmd::clean(&clean, color),
        None => run(args, &env),
    });
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            let _ = report::print_error(&mut std::io::stderr().lock(), &error, color);
            error.exit_code()
        }
    };
    std::process::exit(code);
}
