use cargo_lambda_build::build::docker::exec;
use cargo_lambda_build::build::zig;
use cargo_lambda_build::cli::{self, Cli, Command, DockerCommand};
use cargo_lambda_build::env::{Env, Ui};
use cargo_lambda_build::error::Error;
use cargo_lambda_build::{docker_cmd, doctor, generate, invoke, new, run};

/// The only place that exits: everything below returns, so temporary files are cleaned up.
fn main() {
    // Cross builds run this binary as zig's compiler driver (see build::zig).
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|mode| mode == zig::COMPILER_MODE) {
        std::process::exit(zig::run_compiler(&args[2..]));
    }
    // `invoke --docker` runs each process of the function in its container through this binary
    // (see build::docker::exec): it ends as the process in the container ended.
    if args.get(1).is_some_and(|mode| mode == exec::RELAY_MODE) {
        let end = match Env::from_process() {
            Ok(env) => exec::relay(&args[2..], &env),
            Err(_) => exec::RelayEnd::Code(1),
        };
        std::process::exit(match end {
            exec::RelayEnd::Code(code) => code,
            exec::RelayEnd::Signal(signal) => cargo_lambda_build::host::die_of(signal),
        });
    }
    // A usage error exits with 2, as clap's do.
    let Cli::LambdaBuild(mut args) = cli::parse_from(&args).unwrap_or_else(|e| e.exit());
    let (ui, result) = match Env::from_process() {
        Ok(env) => {
            let ui = args.output.ui(&env);
            let result = match args.command.take() {
                Some(Command::New(new)) => {
                    new::run(&new.into(), &env, ui.color).map_err(Error::from)
                }
                // The samples are listed without a function to run, on any host.
                Some(Command::Invoke(invoke_args))
                    if invoke_args.data_example.as_deref() == Some(invoke::examples::LIST) =>
                {
                    print!("{}", invoke::examples::listing());
                    Ok(())
                }
                Some(Command::Invoke(invoke_args)) if invoke_args.native => {
                    cargo_lambda_build::native::invoke(invoke_args, &env, ui)
                }
                Some(Command::Invoke(invoke_args)) => {
                    invoke::run(invoke_args, &env, ui).map_err(Error::from)
                }
                Some(Command::Serve(serve_args)) if serve_args.watch => {
                    cargo_lambda_build::watch::run(serve_args, &env, ui)
                }
                Some(Command::Serve(serve_args)) if serve_args.native => {
                    cargo_lambda_build::native::serve(serve_args, &env, ui)
                }
                Some(Command::Serve(serve_args)) => {
                    invoke::serve::run(serve_args, &env, ui).map_err(Error::from)
                }
                Some(Command::Package(package)) => {
                    cargo_lambda_build::package_binary(package, &env, ui)
                }
                Some(Command::Dockerfile) => docker_cmd::dockerfile(),
                Some(Command::Completions(c)) => generate::print_completions(c.shell),
                Some(Command::Man(man)) => generate::man(man.dir.as_deref()),
                Some(Command::Docker(DockerCommand::Ls(ls))) => {
                    docker_cmd::ls(ls.message_format, &env, ui)
                }
                Some(Command::Docker(DockerCommand::Clean(clean))) => {
                    docker_cmd::clean(clean.force, &env, ui)
                }
                Some(Command::Doctor(doctor_args)) => doctor::run(&doctor_args, &env, ui),
                None => run(args, &env, ui),
            };
            (ui, result)
        }
        Err(e) => (
            Ui::default(),
            Err(anyhow::anyhow!("cannot read the current directory: {e}").into()),
        ),
    };
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            error.print(ui.color);
            error.exit_code()
        }
    };
    std::process::exit(code);
}
