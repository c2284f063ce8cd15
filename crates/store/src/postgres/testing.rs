//! PostgreSQL for the tests of this workspace: a fresh database per test (`gl_<random>`),
//! dropped (with its connections) at the end.
//!
//! The cluster is `GREENLIGHT_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When it does not answer, [`TestDb::create`] says the test was skipped and returns `None`,
//! unless PostgreSQL is required — `CI=true`, `GREENLIGHT_TEST_PG=required`, or the integration
//! suite running on PostgreSQL (`GREENLIGHT_TEST_BACKEND=postgres`): then it panics.

use std::time::Duration;

/// The URL of the test cluster's admin database.
pub fn admin_url() -> String {
    std::env::var("GREENLIGHT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Does the integration suite run on PostgreSQL (`GREENLIGHT_TEST_BACKEND=postgres`)?
pub fn backend_is_postgres() -> bool {
    std::env::var("GREENLIGHT_TEST_BACKEND").is_ok_and(|b| b == "postgres" || b == "postgresql")
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("GREENLIGHT_TEST_PG").is_ok_and(|v| v == "required")
        || backend_is_postgres()
}

/// Runs `f` on a plain thread (the `postgres` client must not run inside an async context).
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("database thread"))
}

/// `url` split around its path: (`scheme://user@host:port`, `/database`, `?query`).
fn split(url: &str) -> (String, String, String) {
    let (rest, query) = match url.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (url, String::new()),
    };
    let start = rest.find("://").map(|i| i + 3).unwrap_or(0);
    match rest[start..].find('/') {
        Some(i) => (
            rest[..start + i].to_string(),
            rest[start + i..].to_string(),
            query,
        ),
        None => (rest.to_string(), String::new(), query),
    }
}

fn client(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut c: postgres::Config = url.parse()?;
    c.connect_timeout(Duration::from_secs(3));
    c.connect(postgres::NoTls)
}

/// A fresh database of the test cluster.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A new database, or `None` after saying that `test` was skipped (see the module docs).
    pub fn create(test: &str) -> Option<TestDb> {
        let admin = admin_url();
        let name = format!("gl_{:016x}", rand::random::<u64>());
        match blocking(|| client(&admin)?.batch_execute(&format!("CREATE DATABASE {name}"))) {
            Ok(()) => {
                let (head, _, query) = split(&admin);
                Some(TestDb {
                    url: format!("{head}/{name}{query}"),
                    name,
                })
            }
            Err(e) if !required() => {
                // straight to stderr, past the test harness's capture, so that it shows
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "{test}: skipped: PostgreSQL does not answer at {} ({e}); CI=true or \
                     GREENLIGHT_TEST_PG=required make this a failure",
                    redact(&admin)
                );
                None
            }
            Err(e) => panic!(
                "{test}: PostgreSQL is required but does not answer at {}: {e}",
                redact(&admin)
            ),
        }
    }

    /// The first column of the first row of `sql` on this database, as i64.
    pub fn count(&self, sql: &str) -> i64 {
        blocking(|| {
            client(&self.url)
                .expect("connect to the test database")
                .query_one(sql, &[])
                .expect("query")
                .get::<_, i64>(0)
        })
    }

    /// The address (host:port) of the server.
    pub fn server_addr(&self) -> String {
        let (head, _, _) = split(&self.url);
        let authority = head.split("://").nth(1).unwrap_or_default();
        let hostport = authority.rsplit('@').next().unwrap_or(authority);
        if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:5432")
        }
    }

    /// This database's URL with the server at `addr` (e.g. a proxy) instead.
    pub fn url_via(&self, addr: &str) -> String {
        let (head, path, query) = split(&self.url);
        let (scheme, authority) = head.split_once("://").unwrap_or(("postgres", ""));
        let user = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{addr}{path}{query}")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), &self.name);
        let _ = blocking(|| {
            client(&admin)?.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        });
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let (head, path, query) = split(url);
    match head.split_once("://") {
        Some((scheme, authority)) => match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                let masked = if userinfo.contains(':') { ":***" } else { "" };
                format!("{scheme}://{user}{masked}@{host}{path}{query}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let db = TestDb {
            name: "gl_x".into(),
            url: "postgres://u:pw@db.local:6543/gl_x?sslmode=disable".into(),
        };
        assert_eq!(db.server_addr(), "db.local:6543");
        assert_eq!(
            db.url_via("127.0.0.1:9"),
            "postgres://u:pw@127.0.0.1:9/gl_x?sslmode=disable"
        );
        assert_eq!(
            redact(&db.url),
            "postgres://u:***@db.local:6543/gl_x?sslmode=disable"
        );
        std::mem::forget(db); // nothing to drop
    }
}
