//! The real `larder` binary as a child process: a clean environment, its
//! stderr collected line by line, signals sent to it.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

/// The `LARDER_*` variables the binary reads: none of the developer's
/// reach a test.
pub const ENV_FLAGS: [&str; 7] = [
    "LARDER_UPSTREAM",
    "LARDER_LISTEN",
    "LARDER_REDIS",
    "LARDER_CONFIG",
    "LARDER_ADMIN_LISTEN",
    "LARDER_ADMIN",
    "LARDER_LOG_FORMAT",
];

/// `larder serve ...` with a clean environment, logging at info.
pub fn serve() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"));
    for var in ENV_FLAGS {
        command.env_remove(var);
    }
    command.arg("serve").env("RUST_LOG", "info");
    command
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `larder serve` whose stderr is collected line by line.
pub struct Serving {
    child: tokio::process::Child,
    log: Arc<Mutex<String>>,
}

impl Serving {
    pub fn spawn(command: &mut tokio::process::Command) -> Serving {
        let mut child = command
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Serving { child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log has `count` lines containing `text`.
    pub async fn wait_for(&self, text: &str, count: usize) -> String {
        for _ in 0..1500 {
            let log = self.log();
            if log.lines().filter(|l| l.contains(text)).count() >= count {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {text:?} in the log within the guard:\n{}", self.log());
    }

    /// Whether the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn pid(&self) -> String {
        self.child.id().unwrap().to_string()
    }

    /// Sends SIGHUP: reload the configuration.
    pub fn hangup(&self) {
        assert!(Command::new("kill")
            .args(["-HUP", &self.pid()])
            .status()
            .unwrap()
            .success());
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns its status
    /// (`None` past the guard) and the whole log.
    pub async fn stop(mut self) -> (Option<std::process::ExitStatus>, String) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        // The reader may still hold the last lines: give it the pipe's end.
        tokio::time::sleep(Duration::from_millis(50)).await;
        (status, self.log())
    }
}
