//! `souk __nats-exec --parent-pid P -- nats-server …`: the tiny launcher that makes the bundled
//! server die with Souk.
//!
//! It asks the kernel for a parent-death signal (SIGTERM, so the server still shuts JetStream down
//! cleanly), checks that its parent is still the Souk that started it (closing the race where Souk
//! died before the request took effect), then replaces itself with nats-server. The signal
//! survives `exec`, and the pid stays the same, so Souk supervises nats-server directly.
//! Doing this in a separate process keeps Souk free of `unsafe` (no `pre_exec` hook).

use crate::cli::NatsExecArgs;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

pub fn exec(args: &NatsExecArgs) -> ExitCode {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM) {
        eprintln!("souk __nats-exec: cannot set the parent-death signal: {e}");
        return ExitCode::FAILURE;
    }
    if nix::unistd::getppid().as_raw() != args.parent_pid {
        eprintln!(
            "souk __nats-exec: souk (pid {}) is gone; not starting nats-server",
            args.parent_pid
        );
        return ExitCode::FAILURE;
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut tries = 0;
    loop {
        // `exec` only returns on failure.
        let err = std::process::Command::new(program).args(rest).exec();
        if err.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 20 {
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        }
        let hint = if err.raw_os_error() == Some(nix::libc::EACCES) {
            ". If the data dir is on a file system mounted noexec, move data_dir \
             (SOUK_DATA_DIR) or set nats_server_bin (SOUK_NATS_SERVER_BIN) to a nats-server \
             installed elsewhere"
        } else {
            ""
        };
        eprintln!("souk __nats-exec: cannot run {program}: {err}{hint}");
        return ExitCode::FAILURE;
    }
}
