//! A fresh PostgreSQL database per test on the machine's server, dropped afterwards (the
//! consumer's history store tests and the integration tests around it).

use sqlx::Connection;

/// The test server: `HOSTPULSE_TEST_POSTGRES`, else the local one (trust auth).
pub fn admin_url() -> String {
    std::env::var("HOSTPULSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database for one test, dropped afterwards (also when the test fails).
pub struct PgDatabase {
    pub name: String,
    /// Its URL, for `HISTORY_URL`.
    pub url: String,
}

impl PgDatabase {
    /// Creates the database on the test server.
    pub async fn create() -> Self {
        let name = format!("hp_test_{:016x}", rand::random::<u64>());
        let admin = admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("the test PostgreSQL at 127.0.0.1:5432 answers (scripts/test.sh starts it)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("admin URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (name, admin) = (self.name.clone(), admin_url());
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
