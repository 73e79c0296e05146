//! A PostgreSQL server of a test's own (own data folder and port), so a test can stop and
//! restart its store without touching the shared one. Needs root and Debian's PostgreSQL
//! packages (`initdb` and `pg_ctl` run as the `postgres` user); starts in a few seconds.
//! Password authentication over TCP, so a test can check that the password is never shown.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The superuser's password on every private server (tests look for it where it must not be).
pub const PASSWORD: &str = "private-pg-secret-7f3a";

/// A private server; stopped (immediately) and its folder removed on drop, also on panic.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

/// The newest installed PostgreSQL's programs, e.g. `/usr/lib/postgresql/15/bin`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (scripts/test.sh installs it)")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL with pg_ctl").1
}

/// Runs `program` from `bin` as the `postgres` user.
fn as_postgres(bin: &std::path::Path, program: &str) -> Command {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(bin.join(program))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

impl PrivatePostgres {
    /// Creates a cluster in a fresh folder and starts it on a free loopback port.
    pub fn start() -> Self {
        let port = super::private_broker::free_port();
        let dir = std::env::temp_dir().join(format!("hostpulse-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("server dir");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("password file");
        let owned = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown runs");
        assert!(
            owned.success(),
            "the server's folder must belong to the postgres user"
        );
        let server = Self {
            port,
            dir,
            bin: bin_dir(),
        };
        let created = as_postgres(&server.bin, "initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .status()
            .expect("initdb runs");
        assert!(created.success(), "initdb failed");
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let started = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-w", "-t", "60", "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .status()
            .expect("pg_ctl runs");
        assert!(started.success(), "pg_ctl start failed");
        self.wait_for_port(true, Duration::from_secs(30));
    }

    /// Stops the server (fast: open connections are cut) and waits until the port is closed.
    pub fn stop(&self) {
        let stopped = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .status()
            .expect("pg_ctl runs");
        assert!(stopped.success(), "pg_ctl stop failed");
        self.wait_for_port(false, Duration::from_secs(30));
    }

    fn wait_for_port(&self, open: bool, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() != open {
            assert!(
                std::time::Instant::now() < deadline,
                "PostgreSQL port {} never became {}",
                self.port,
                if open { "open" } else { "closed" }
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
