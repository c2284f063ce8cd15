//! PostgreSQL for tests: a fresh database per test (`gl_<random>`), dropped at the end.
//!
//! The server URL of the cluster is `GREENLIGHT_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it does not answer, tests that need it
//! say they were skipped and pass, unless `CI=true` or `GREENLIGHT_TEST_PG=required`: then an
//! unreachable PostgreSQL is a failure.
#![allow(dead_code)]

use rand::Rng;

pub fn admin_url() -> String {
    std::env::var("GREENLIGHT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Does the api suite run on PostgreSQL (`GREENLIGHT_TEST_BACKEND=postgres`)?
pub fn backend_is_postgres() -> bool {
    std::env::var("GREENLIGHT_TEST_BACKEND").is_ok_and(|b| b == "postgres" || b == "postgresql")
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("GREENLIGHT_TEST_PG").is_ok_and(|v| v == "required")
        || backend_is_postgres()
}

/// Runs `f` on a plain thread (the sync `postgres` client must not run inside tokio).
pub fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("database thread")
}

/// A client of the test cluster's database `db` (`None`: the admin database).
pub fn client(db: Option<&str>) -> Result<postgres::Client, postgres::Error> {
    let mut cfg: postgres::Config = admin_url().parse().expect("GREENLIGHT_TEST_PG_URL");
    if let Some(db) = db {
        cfg.dbname(db);
    }
    cfg.connect_timeout(std::time::Duration::from_secs(3));
    cfg.connect(postgres::NoTls)
}

/// A fresh database, dropped (with its connections) when this is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A new database, or `None` (after saying so) when PostgreSQL is not reachable and not
    /// required. `test` names the test for the message.
    pub fn create(test: &str) -> Option<TestDb> {
        let name = format!("gl_{:016x}", rand::rng().random::<u64>());
        let n = name.clone();
        let made = blocking(move || -> Result<(), postgres::Error> {
            client(None)?.batch_execute(&format!("CREATE DATABASE {n}"))
        });
        match made {
            Ok(()) => {
                let mut cfg: url_parts::Parts = url_parts::Parts::parse(&admin_url());
                cfg.path = format!("/{name}");
                Some(TestDb {
                    url: cfg.to_string(),
                    name,
                })
            }
            Err(e) if !required() => {
                eprintln!("{test}: skipped: PostgreSQL is not reachable at {} ({e}); set CI=true or GREENLIGHT_TEST_PG=required to make this a failure", redact(&admin_url()));
                None
            }
            Err(e) => panic!(
                "{test}: PostgreSQL is required but not reachable at {}: {e}",
                redact(&admin_url())
            ),
        }
    }

    /// The address (host:port) of the PostgreSQL server.
    pub fn server_addr(&self) -> String {
        let p = url_parts::Parts::parse(&self.url);
        let authority = p.head.split("://").nth(1).unwrap_or_default();
        let hostport = authority.rsplit('@').next().unwrap_or(authority);
        if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:5432")
        }
    }

    /// This database's URL with the server at `addr` (e.g. a proxy) instead.
    pub fn url_via(&self, addr: &str) -> String {
        let mut p = url_parts::Parts::parse(&self.url);
        let (scheme, authority) = p.head.split_once("://").unwrap_or(("postgres", ""));
        let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
        p.head = format!("{scheme}://{}{addr}", user.unwrap_or_default());
        p.to_string()
    }

    /// Runs `sql` (one statement) on this database and returns the first column of its first
    /// row as i64.
    pub fn count(&self, sql: &str) -> i64 {
        let db = self.name.clone();
        let sql = sql.to_string();
        blocking(move || {
            let mut c = client(Some(&db)).expect("connect to the test database");
            c.query_one(&sql, &[]).expect("query").get::<_, i64>(0)
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let n = self.name.clone();
        let _ = blocking(move || -> Result<(), postgres::Error> {
            client(None)?.batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
        });
    }
}

fn redact(url: &str) -> String {
    greenlight::config::redact_url(url)
}

/// Just enough URL handling to swap the database name.
mod url_parts {
    pub struct Parts {
        pub head: String,
        pub path: String,
        pub query: String,
    }
    impl Parts {
        pub fn parse(url: &str) -> Parts {
            let (rest, query) = match url.split_once('?') {
                Some((r, q)) => (r, format!("?{q}")),
                None => (url, String::new()),
            };
            let scheme_end = rest.find("://").map(|i| i + 3).unwrap_or(0);
            let (head, path) = match rest[scheme_end..].find('/') {
                Some(i) => (
                    rest[..scheme_end + i].to_string(),
                    rest[scheme_end + i..].to_string(),
                ),
                None => (rest.to_string(), String::new()),
            };
            Parts { head, path, query }
        }
    }
    impl std::fmt::Display for Parts {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}{}{}", self.head, self.path, self.query)
        }
    }
}
