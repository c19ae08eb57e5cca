// SPDX-License-Identifier: MPL-2.0
//! A real Triton Inference Server for tests: `tools/triton/serve.py` (PyTriton, which bundles
//! Triton Server) on a free loopback port, in a process group of its own so a kill takes the
//! Python side and `tritonserver` together, as a crash would.
//!
//! The venv is `/opt/venvs/pytriton` (`tools/triton/setup.sh`), or `QUARTZNET_PYTRITON`. When
//! it is missing the tests print why and pass without running, unless
//! `QUARTZNET_REQUIRE_TRITON=1` (CI sets it once the setup succeeded): then it is a failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a start may take before it is tried again: PyTriton starts Triton, then loads each
/// model through its Python backend (10 to 30 s on two busy cores); a start that hangs shows
/// nothing for minutes.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running server; killed when dropped.
pub struct Server {
    pub url: String,
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    /// PyTriton's workspace and temporary files (a killed server leaves them behind): removed
    /// when the server is dropped, or by the server itself when the test binary ends first.
    scratch: tempfile::TempDir,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(
        if Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tools/triton/serve.py")
            .exists()
        {
            "."
        } else {
            ".."
        },
    )
}

/// The Python that runs PyTriton, or why there is none.
fn python() -> Result<PathBuf, String> {
    let python = std::env::var_os("QUARTZNET_PYTRITON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/venvs/pytriton/bin/python"));
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "no PyTriton venv at {} (bash tools/triton/setup.sh makes it)",
            python.display()
        ))
    }
}

/// Whether a missing server is a failure rather than a skip.
fn required() -> bool {
    std::env::var("QUARTZNET_REQUIRE_TRITON").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Server {
    /// Starts a server of `models` with `extra` arguments of serve.py; `None` (after saying
    /// why on stderr) when this machine has no PyTriton and it is not required.
    pub fn start(models: &[&Path], extra: &[&str]) -> Option<Self> {
        let python = match python() {
            Ok(p) => p,
            Err(why) if !required() => {
                eprintln!("SKIPPED (Triton tests): {why}");
                return None;
            }
            Err(why) => panic!("{why}, and QUARTZNET_REQUIRE_TRITON=1"),
        };
        let port = free_port();
        let mut args: Vec<String> =
            vec![repo().join("tools/triton/serve.py").display().to_string()];
        args.extend(models.iter().map(|m| m.display().to_string()));
        args.extend(["--http-port".to_string(), port.to_string()]);
        // A server shared by a test binary's tests lives in a static, never dropped: it ends
        // itself with the binary.
        args.push("--exit-with-parent".to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.insert(0, python.display().to_string());
        let scratch = tempfile::Builder::new()
            .prefix("quartznet-triton-")
            .tempdir()
            .expect("a scratch folder");
        args.extend([
            "--scratch".to_string(),
            scratch.path().display().to_string(),
        ]);
        let log = scratch.path().join("server.log");
        let mut server = Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            args,
            child: None,
            log,
            scratch,
        };
        // One first start of the test binary's servers at a time: several PyTriton starts at
        // once on two busy cores are slow. Restarts (a test's kill and relaunch) do not wait.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        server.launch();
        Some(server)
    }

    /// (Re)starts the process on the same port and waits until its models answer; a start
    /// that does not answer (PyTriton now and then hangs before its first log line) is tried
    /// once more.
    pub fn launch(&mut self) {
        for attempt in 1..=2 {
            match self.try_launch() {
                Ok(()) => return,
                Err(why) if attempt == 1 => eprintln!("{why}; starting it again"),
                Err(why) => panic!("{why}"),
            }
        }
    }

    fn try_launch(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(&self.log).expect("server log");
        let (home, tmp) = (
            self.scratch.path().join("home"),
            self.scratch.path().join("tmp"),
        );
        for dir in [&home, &tmp] {
            std::fs::create_dir_all(dir).expect("scratch folders");
        }
        let mut child = Command::new(&self.args[0])
            .args(&self.args[1..])
            .env("PYTRITON_HOME", &home)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start tools/triton/serve.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, wait) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = ready.send(());
                }
            }
        });
        self.child = Some(child);
        if wait.recv_timeout(START_TIMEOUT).is_err() {
            let tail = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = tail
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            self.kill();
            return Err(format!(
                "Triton did not start within {START_TIMEOUT:?}; its log ends:\n{tail}"
            ));
        }
        Ok(())
    }

    /// Kills the server at once (SIGKILL to its whole process group), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The process group this test started (its leader's id), with kill(1).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }

    /// The server's log (stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx in front of a server as an authenticating TLS proxy: https on a free loopback port
/// with a certificate of a test authority (`ca_file`), `Authorization: Bearer <token>`
/// required (401 otherwise), and the server's own header added upstream (`upstream_header`:
/// Triton's restricted API behind the proxy). `None` (after saying why) without nginx.
pub struct Proxy {
    pub url: String,
    pub ca_file: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub fn start(server: &Server, token: &str, upstream_header: (&str, &str)) -> Option<Self> {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(nginx) = nginx else {
            eprintln!(
                "SKIPPED (TLS proxy test): no nginx (tools/triton/setup.sh installs nginx-light)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a proxy folder");
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(status.success(), "openssl {args:?}");
        };
        // A test authority and a server certificate it signs, for 127.0.0.1.
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=quartznet test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            d.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
        ]);
        let port = free_port();
        let (name, value) = upstream_header;
        let p = d.display();
        let config = format!(
            "daemon off; user root; pid {p}/nginx.pid; error_log {p}/error.log; worker_processes 1;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fcgi;
  uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {p}/cert.pem; ssl_certificate_key {p}/key.pem;
    client_max_body_size 64m;
    location / {{
      if ($http_authorization != \"Bearer {token}\") {{ return 401 '{{\"error\": \"bad token\"}}'; }}
      proxy_set_header {name} {value};
      proxy_set_header Authorization \"\";
      proxy_http_version 1.1;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
",
            upstream = server.port
        );
        std::fs::write(d.join("nginx.conf"), config).unwrap();
        // In a group of its own: the master and its worker go together.
        let child = Command::new(nginx)
            .args(["-p", &p.to_string(), "-c", &format!("{p}/nginx.conf")])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        // Listening within a few seconds.
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen: {}",
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            url: format!("https://127.0.0.1:{port}"),
            ca_file: d.join("ca.pem"),
            child,
            _dir: dir,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
