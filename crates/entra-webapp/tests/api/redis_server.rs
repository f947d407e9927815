//! A real `redis-server` on a free loopback port, with its data (append-only file) in a temp dir,
//! stopped when dropped. Stop and start it again to simulate an outage.

#![allow(dead_code, reason = "each test module uses a different subset")]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port. redis-server cannot be handed a bound socket, so the port
    /// is picked, then checked to be ours (its data directory is our temp dir); if another process
    /// took it in between, another port is tried.
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut server = Self { port, dir: tempfile::tempdir().unwrap(), child: None };
            if server.try_start() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Starts the server (again), on the same port with the same data.
    pub fn start_again(&mut self) {
        assert!(self.try_start(), "redis-server did not start again on port {}", self.port);
    }

    /// Starts redis-server and waits until it answers on our port as *this* server.
    fn try_start(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            // Not "always": an fsync per write stalls Redis for seconds when the disk is busy (a
            // parallel build); `stop` shuts down cleanly, which writes everything out.
            .args(["--appendfsync", "everysec", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return false; // exited: the port was taken
            }
            if self.answers_as_ours() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `CONFIG GET dir` over a raw connection names our temp dir: the server on the port is ours.
    fn answers_as_ours(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$3\r\ndir\r\n").is_err() {
            return false;
        }
        let mut reply = vec![0u8; 4096];
        let read = stream.read(&mut reply).unwrap_or(0);
        let dir = self.dir.path().canonicalize().unwrap_or_else(|_| self.dir.path().to_path_buf());
        String::from_utf8_lossy(&reply[..read]).contains(dir.to_string_lossy().as_ref())
    }

    /// Stops the server (its data stays on disk: `SHUTDOWN` writes the append-only file out).
    pub fn stop(&mut self) {
        use std::io::Write;
        if let Some(mut child) = self.child.take() {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n");
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every key's raw value (a set's members, one per line).
    pub async fn raw_values(&self) -> Vec<(String, Vec<u8>)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut connection).await.unwrap();
        let mut values = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut connection).await.unwrap();
            let value: Vec<u8> = match kind.as_str() {
                "set" => {
                    let members: Vec<Vec<u8>> =
                        redis::cmd("SMEMBERS").arg(&key).query_async(&mut connection).await.unwrap();
                    members.join(&b'\n')
                }
                _ => redis::cmd("GET").arg(&key).query_async(&mut connection).await.unwrap(),
            };
            values.push((key, value));
        }
        values
    }

    /// Seconds the key has left (`TTL`).
    pub async fn ttl(&self, key: &str) -> i64 {
        self.time_left("TTL", key).await
    }

    /// Milliseconds the key has left (`PTTL`).
    pub async fn pttl(&self, key: &str) -> i64 {
        self.time_left("PTTL", key).await
    }

    async fn time_left(&self, command: &str, key: &str) -> i64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd(command).arg(key).query_async(&mut connection).await.unwrap()
    }

    pub async fn set_raw(&self, key: &str, value: &[u8]) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET").arg(key).arg(value).query_async(&mut connection).await.unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
