//! `logsim serve`: starts one process per broker, tells where they are, and stops them all cleanly
//! on Ctrl-C (or SIGTERM). A broker killed from outside stays down; the others serve on.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::ServeArgs;

/// How long brokers get for a controlled shutdown before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

fn spawn_broker(args: &ServeArgs, node: i32) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--node", &node.to_string()])
        .args(["--brokers", &args.brokers.to_string()])
        .args(["--port", &args.port.to_string()])
        .arg("--data-dir")
        .arg(&args.data_dir)
        .args(["--replication-factor", &args.replication_factor.to_string()])
        .args([
            "--min-insync-replicas",
            &args.min_insync_replicas.to_string(),
        ]);
    for t in &args.topics {
        command.args(["--topic", t]);
    }
    command
        .spawn()
        .map_err(|e| format!("starting broker {node}: {e}"))
}

/// Asks a process to stop as Ctrl-C would.
fn interrupt(child: &Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub fn run(args: &ServeArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    let mut children = Vec::new();
    for node in 1..=i32::from(args.brokers) {
        let child = spawn_broker(args, node)?;
        let pid_file = args.data_dir.join(format!("broker-{node}.pid"));
        std::fs::write(&pid_file, format!("{}\n", child.id()))
            .map_err(|e| format!("{}: {e}", pid_file.display()))?;
        println!(
            "broker {node}: pid {} on {} (pid in {})",
            child.id(),
            args.address(node),
            pid_file.display()
        );
        children.push((node, child));
    }
    println!("bootstrap: {}", args.bootstrap());
    println!("Ctrl-C stops every broker cleanly; kill one broker's pid to stop it alone.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime: {e}"))?;
    runtime.block_on(async {
        // Waits for a stop request, or for every broker to have exited on its own.
        let all_gone = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if children
                    .iter_mut()
                    .all(|(_, c)| c.try_wait().ok().flatten().is_some())
                {
                    return;
                }
            }
        };
        tokio::select! {
            _ = stop_requested() => {}
            _ = all_gone => {}
        }
    });
    for (_, child) in &children {
        interrupt(child);
    }
    let deadline = Instant::now() + STOP_GRACE;
    let mut failures = Vec::new();
    for (node, child) in &mut children {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // A broker killed from outside ends by a signal; that was the user's choice.
                    if status.code().is_some_and(|c| c != 0) {
                        failures.push(format!("broker {node} exited with {status}"));
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!(
                        "broker {node} did not stop within {STOP_GRACE:?} and was killed"
                    ));
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(args.data_dir.join(format!("broker-{node}.pid")));
    }
    if failures.is_empty() {
        println!("stopped");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
