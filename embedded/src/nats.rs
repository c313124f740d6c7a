//! A NATS server with JetStream, storing under Vigil's data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{free_port, wait_for_port};

/// A running `nats-server` child process.
#[derive(Debug)]
pub struct EmbeddedNats {
    child: Child,
    port: u16,
}

impl EmbeddedNats {
    /// `explicit` (`--nats-server` / `VIGIL_NATS_SERVER`), else `nats-server` on the PATH.
    fn binary(explicit: Option<&Path>) -> Option<PathBuf> {
        let mut candidates: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
        }
        candidates.push(PathBuf::from("/usr/sbin/nats-server"));
        candidates.into_iter().find(|p| p.is_file())
    }

    /// Starts `nats-server -js` on a free loopback port. `Ok(None)` when no
    /// `nats-server` is installed.
    pub fn start(data_dir: &Path) -> std::io::Result<Option<Self>> {
        Self::start_with(data_dir, free_port()?, None)
    }

    /// Starts on a given port (a restart keeps its clients' URL).
    pub fn start_on(data_dir: &Path, port: u16) -> std::io::Result<Option<Self>> {
        Self::start_with(data_dir, port, None)
    }

    /// Starts `binary` (or the one found) on `port`, open to any client.
    pub fn start_with(data_dir: &Path, port: u16, binary: Option<&Path>) -> std::io::Result<Option<Self>> {
        Self::start_configured(data_dir, port, binary, None)
    }

    /// Starts `binary` (or the one found) on `port` with the configuration
    /// file `config` (e.g. an `authorization` block, so only its identities
    /// may connect). A later [`EmbeddedNats::reload`] re-reads that file.
    pub fn start_configured(
        data_dir: &Path,
        port: u16,
        binary: Option<&Path>,
        config: Option<&Path>,
    ) -> std::io::Result<Option<Self>> {
        let Some(bin) = Self::binary(binary) else {
            return Ok(None);
        };
        let dir = data_dir.join("nats");
        std::fs::create_dir_all(&dir)?;
        let mut command = Command::new(bin);
        if let Some(config) = config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .arg("-l")
            .arg(dir.join("server.log"))
            .arg("-P")
            .arg(Self::pid_file(data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut nats = EmbeddedNats { child, port };
        if !wait_for_port(std::net::SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(10)) {
            nats.stop();
            return Err(std::io::Error::other(format!(
                "nats-server did not start listening on port {port}; see {}",
                dir.join("server.log").display()
            )));
        }
        Ok(Some(nats))
    }

    /// Where the server writes its process id.
    pub fn pid_file(data_dir: &Path) -> PathBuf {
        data_dir.join("nats").join("nats-server.pid")
    }

    /// Makes the server re-read its configuration file (SIGHUP).
    pub fn reload(&self) -> std::io::Result<()> {
        signal_reload(self.child.id())
    }

    /// Makes the embedded server of `data_dir`, if one runs, re-read its
    /// configuration (for a command run beside `vigil up`). Returns whether one was signalled.
    pub fn reload_running(data_dir: &Path) -> std::io::Result<bool> {
        let Ok(text) = std::fs::read_to_string(Self::pid_file(data_dir)) else {
            return Ok(false);
        };
        let Ok(pid) = text.trim().parse::<u32>() else {
            return Ok(false);
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Ok(false);
        }
        signal_reload(pid).map(|()| true)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Asks the server to shut down (SIGTERM), and kills it after 5 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal_reload(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill").arg("-HUP").arg(pid.to_string()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -HUP {pid} failed ({status})")))
    }
}

impl Drop for EmbeddedNats {
    fn drop(&mut self) {
        self.stop();
    }
}
