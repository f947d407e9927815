//! A real nginx (scripts/test.sh installs it) on a free loopback port, running a server block
//! the test writes: in front of the proxy (docs/PROXY.md's forward-auth example) or behind it, as
//! the app's own front end with nginx's default limits.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx running a config, stopped when dropped.
pub struct Nginx {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// nginx with the `server { ... }` block `server(port)` returns, listening on `port` (a free
    /// loopback port; another is tried if it was taken meanwhile).
    pub fn start(server: impl Fn(u16) -> String) -> Self {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let server = server(port);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().display();
            let config = format!(
                // One process, no master: killing it stops nginx whole (a killed master leaves
                // its workers serving).
                "master_process off;\npid {path}/nginx.pid;\nerror_log {path}/error.log;\nevents {{ worker_connections 64; }}\n\
                 http {{\naccess_log off;\nclient_body_temp_path {path}/body;\nproxy_temp_path {path}/proxy;\n\
                 fastcgi_temp_path {path}/fastcgi;\nuwsgi_temp_path {path}/uwsgi;\nscgi_temp_path {path}/scgi;\n{server}}}\n"
            );
            std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
            // A config nginx refuses is reported on stderr, before any log is open.
            let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
            let mut child = Command::new(nginx_binary())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("nginx runs (scripts/test.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: the port was taken (or the config is wrong: the last try says)
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { port, child, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
            let log = read("stderr.log") + &read("error.log");
            eprintln!("nginx did not start on port {port}: {log}");
        }
        panic!("nginx did not start on any of 5 free ports");
    }

    /// A URL of this nginx. `localhost`, as the proxy's own URL in the tests: the browser's
    /// cookie for it goes to both ports.
    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }
}

/// `nginx` from the PATH, else Debian's (in /usr/sbin, which a non-root PATH may lack).
fn nginx_binary() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("nginx")).find(|binary| binary.is_file()));
    on_path.unwrap_or_else(|| "/usr/sbin/nginx".into())
}
