//! The `logsim` command line. The default build simulates; a build without `--cfg madsim` is real
//! mode and only serves (see `real`).

#[cfg(madsim)]
mod cli;

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    logsim::real::main()
}
