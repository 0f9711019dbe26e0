//! # MySQL 8 and TiDB from Docker images, behind the same [`MariaDb`] handle
//!
//! The live tests start their servers with `MariaDb::start_with(..)`. By default that is a local
//! `mariadbd` (see [`crate::mariadb`]). With the cargo feature `containers` and the environment
//! variable `DM_TEST_SERVER`, the same call starts a Docker container of a real MySQL 8 or TiDB
//! instead and returns the same handle, so the tests run unchanged against servers this machine
//! cannot install:
//!
//! ```text
//! DM_TEST_SERVER       upstream requests               downstream requests
//! (unset) | mariadb    local mariadbd                  local mariadbd
//! mysql:8.0            container mysql:8.0             container mysql:8.0
//! mysql:8.4            container mysql:8.4             container mysql:8.4
//! tidb                 local mariadbd (TiDB has no     container pingcap/tidb
//!                      binlog replica protocol)
//! DM_TEST_DOWNSTREAM   (optional) overrides DM_TEST_SERVER for downstream requests only:
//!                      DM_TEST_SERVER=mysql:8.0 DM_TEST_DOWNSTREAM=tidb is MySQL 8 -> TiDB
//! ```
//!
//! A request is a downstream when its options say so ([`MariaDbOptions::downstream`]), or, when
//! they say nothing, when its name ends in `downstream` or `-down` (how the tests name their
//! targets); every other request is an upstream, which any server can serve.
//!
//! A MySQL container gets what the local helper configures: `server-id` (the port unless given),
//! binlog `mysql-bin`, ROW format, FULL row image, utf8mb4, test-friendly durability, and for
//! MySQL also `gtid_mode=ON` with `enforce_gtid_consistency=ON`; `root` has no password. Its port
//! is published on 127.0.0.1 only, at a port chosen like the local helper's, and stays the same
//! across [`MariaDb::stop`]/[`MariaDb::kill`]/[`MariaDb::restart`] (docker stop, docker kill,
//! docker start). The data directory is a bind mount of the handle's `directory()/data`, so tests
//! that read binlog files from there read the container's. A TiDB container is
//! `pingcap/tidb` (unistore, port 4000, `root` without password).
//!
//! Invariants:
//! - without the feature and without the variable, nothing changes: a local `mariadbd`;
//! - a variable naming a container without the feature is an error, never a silent MariaDB run;
//! - a container is removed (`docker rm -f`) when its handle drops, on panic too; on SIGINT or
//!   SIGTERM testcontainers' watchdog removes it; after a `kill -9` of the test process it is
//!   left running, labelled `dm-testkit` (`docker rm -f $(docker ps -aq -f label=dm-testkit)`).
//!
//! Error model: an option the chosen server cannot honour (a MariaDB-only option, server
//! options or TLS on TiDB) is [`TestkitError::MissingBinary`] naming the server, so
//! [`crate::or_skip!`] skips the test with that message (outside CI). Docker unreachable, an
//! image that cannot be pulled or a server that does not answer is an error that fails the test:
//! someone who asked for containers must not get a run that skipped everything.
//!
//! [`MariaDb`]: crate::MariaDb
//! [`MariaDb::stop`]: crate::MariaDb::stop
//! [`MariaDb::kill`]: crate::MariaDb::kill
//! [`MariaDb::restart`]: crate::MariaDb::restart
//! [`MariaDbOptions::downstream`]: crate::MariaDbOptions::downstream

use std::fmt;

use crate::error::TestkitError;
use crate::mariadb::MariaDbOptions;

/// The variable that selects the server kind of every request it can serve.
pub const SERVER_VARIABLE: &str = "DM_TEST_SERVER";
/// The variable that, when set, selects the server kind of downstream requests only.
pub const DOWNSTREAM_VARIABLE: &str = "DM_TEST_DOWNSTREAM";
/// The values the variables accept.
pub const ACCEPTED_VALUES: &str = "mariadb, mysql:8.0, mysql:8.4, tidb";

/// What a test uses a server for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRole {
    /// A source: replicated from by the binlog client, dumped from. Any server but TiDB.
    Upstream,
    /// A target only: written to by the sink and the loader. TiDB can be one.
    Downstream,
}

impl ServerRole {
    /// The role of a request: the one its options give, or else the one its name suggests
    /// (`...downstream`, `...-down`: a downstream; anything else: an upstream).
    pub fn of(options: &MariaDbOptions) -> ServerRole {
        if let Some(role) = options.role {
            return role;
        }
        match options.name.as_deref() {
            Some(name) if name.ends_with("downstream") || name.ends_with("-down") => {
                ServerRole::Downstream
            }
            _ => ServerRole::Upstream,
        }
    }
}

/// A server kind a variable can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The local `mariadbd` of [`crate::mariadb`] (the default).
    LocalMariaDb,
    /// A container of the image `mysql:8.0`.
    MySql80,
    /// A container of the image `mysql:8.4` (the 8.4 LTS).
    MySql84,
    /// A container of the image `pingcap/tidb` (downstream only).
    TiDb,
}

/// The `pingcap/tidb` tag used for [`ServerKind::TiDb`] (an LTS release).
pub const TIDB_TAG: &str = "v8.5.1";

impl ServerKind {
    /// Parses a variable's value (see [`ACCEPTED_VALUES`]).
    pub fn parse(variable: &str, value: &str) -> Result<ServerKind, TestkitError> {
        match value.trim() {
            "" | "mariadb" => Ok(ServerKind::LocalMariaDb),
            "mysql:8.0" => Ok(ServerKind::MySql80),
            "mysql:8.4" => Ok(ServerKind::MySql84),
            "tidb" => Ok(ServerKind::TiDb),
            other => Err(TestkitError::Io {
                action: format!("use {variable}={other}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("expected one of {ACCEPTED_VALUES}"),
                ),
            }),
        }
    }

    /// The image name and tag of a container kind (`None` for the local `mariadbd`).
    pub fn image(self) -> Option<(&'static str, &'static str)> {
        match self {
            ServerKind::LocalMariaDb => None,
            ServerKind::MySql80 => Some(("mysql", "8.0")),
            ServerKind::MySql84 => Some(("mysql", "8.4")),
            ServerKind::TiDb => Some(("pingcap/tidb", TIDB_TAG)),
        }
    }

    /// Whether the server serves the binlog replica protocol (can be an upstream).
    pub fn serves_binlog(self) -> bool {
        !matches!(self, ServerKind::TiDb)
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.image() {
            None => formatter.write_str("local mariadbd"),
            Some((image, tag)) => write!(formatter, "{image}:{tag} container"),
        }
    }
}

/// The server kind for a request of `role`, given the variables' values (pure; see
/// [`choose`]). TiDB asked for an upstream falls back to the local `mariadbd`.
pub fn kind_for(
    role: ServerRole,
    server: Option<&str>,
    downstream: Option<&str>,
) -> Result<ServerKind, TestkitError> {
    let kind = match (role, downstream) {
        (ServerRole::Downstream, Some(value)) => ServerKind::parse(DOWNSTREAM_VARIABLE, value)?,
        _ => match server {
            Some(value) => ServerKind::parse(SERVER_VARIABLE, value)?,
            None => ServerKind::LocalMariaDb,
        },
    };
    Ok(match (role, kind.serves_binlog()) {
        (ServerRole::Upstream, false) => ServerKind::LocalMariaDb,
        _ => kind,
    })
}

/// What [`crate::MariaDb::start_with`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// A local `mariadbd` process: today's behaviour.
    LocalProcess,
    /// A container of this kind.
    #[cfg(feature = "containers")]
    Container(ServerKind),
}

/// Reads the variables and decides what a request with `options` starts. Errors: a value that
/// is not accepted; a container named while the feature is off; an option the chosen server
/// cannot honour (a skip, see the module's error model).
pub fn choose(options: &MariaDbOptions) -> Result<Choice, TestkitError> {
    let server = std::env::var(SERVER_VARIABLE).ok();
    let downstream = std::env::var(DOWNSTREAM_VARIABLE).ok();
    if server.is_none() && downstream.is_none() {
        return Ok(Choice::LocalProcess);
    }
    let role = ServerRole::of(options);
    let kind = kind_for(role, server.as_deref(), downstream.as_deref())?;
    let name = options.name.as_deref().unwrap_or("mariadb");
    if kind == ServerKind::LocalMariaDb {
        if role == ServerRole::Upstream && server.as_deref().map(str::trim) == Some("tidb") {
            eprintln!(
                "dm-testkit: {SERVER_VARIABLE}=tidb: upstream `{name}` is a local mariadbd \
                 (TiDB serves no binlog)"
            );
        }
        return Ok(Choice::LocalProcess);
    }
    if let Some(reason) = unsupported(kind, options) {
        return Err(TestkitError::MissingBinary {
            binary: format!("a {kind} for `{name}`"),
            hint: format!("{reason}; this test runs without {SERVER_VARIABLE}"),
        });
    }
    #[cfg(feature = "containers")]
    {
        Ok(Choice::Container(kind))
    }
    #[cfg(not(feature = "containers"))]
    {
        Err(TestkitError::Io {
            action: format!("start a {kind} for `{name}`"),
            source: std::io::Error::other(format!(
                "dm-testkit was built without its `containers` feature, so {SERVER_VARIABLE} and \
                 {DOWNSTREAM_VARIABLE} cannot be honoured: add `--features dm-testkit/containers`"
            )),
        })
    }
}

/// Server options of the local helper that MySQL does not know (MariaDB-only features).
const MARIADB_ONLY_OPTIONS: &[&str] = &[
    "--log-bin-compress",
    "--gtid-domain-id",
    "--gtid-strict-mode",
    "--gtid-ignore-duplicates",
    "--binlog-annotate-row-events",
];

/// Why `kind` cannot honour `options`, if it cannot.
fn unsupported(kind: ServerKind, options: &MariaDbOptions) -> Option<String> {
    if options.gtid_domain_id.is_some() {
        return Some("the test sets a MariaDB GTID domain".into());
    }
    if options.mariadbd.is_some() {
        return Some("the test names its own mariadbd binary".into());
    }
    if kind == ServerKind::TiDb {
        if options.tls_ca.is_some() {
            return Some(
                "the test starts the server with TLS, which TiDB here does not take".into(),
            );
        }
        if !options.extra_args.is_empty() {
            return Some(format!(
                "the test gives server options ({}) that TiDB does not take",
                options.extra_args.join(" ")
            ));
        }
        return None;
    }
    options
        .extra_args
        .iter()
        .find(|argument| {
            MARIADB_ONLY_OPTIONS
                .iter()
                .any(|option| argument.starts_with(option))
        })
        .map(|argument| format!("the test gives the MariaDB-only option `{argument}`"))
}

#[cfg(feature = "containers")]
pub use docker::ServerContainer;

#[cfg(feature = "containers")]
mod docker {
    //! The Docker side: start, stop, kill and start again one container with testcontainers.

    use std::path::Path;
    use std::time::{Duration, Instant};

    use mysql_async::{Conn, Opts};
    use testcontainers::bollard::Docker;
    use testcontainers::bollard::models::PortBinding;
    use testcontainers::core::{AccessMode, IntoContainerPort, Mount};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerAsync, GenericImage, ImageExt};

    use super::ServerKind;
    use crate::error::TestkitError;
    use crate::mariadb::MariaDbOptions;
    use crate::process::{free_port, running_as_root};

    /// How many times a start is retried when another process took the chosen host port.
    const PORT_ATTEMPTS: usize = 5;
    /// How long a container may take to answer after it started (MySQL initialises its data
    /// directory first; the image pull is not counted).
    const START_TIMEOUT: Duration = Duration::from_secs(180);
    /// How long `stop` waits before docker sends SIGKILL (as the local helper does).
    const STOP_TIMEOUT_SECONDS: i32 = 30;

    /// One running (or stopped) server container; removed when dropped.
    pub struct ServerContainer {
        /// What it runs (for messages and the port inside).
        kind: ServerKind,
        /// The testcontainers handle: removes the container on drop.
        container: ContainerAsync<GenericImage>,
    }

    impl std::fmt::Debug for ServerContainer {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter
                .debug_struct("ServerContainer")
                .field("kind", &self.kind)
                .field("id", &self.container.id())
                .finish()
        }
    }

    fn docker_error(
        action: String,
    ) -> impl FnOnce(testcontainers::TestcontainersError) -> TestkitError {
        move |error| TestkitError::Io {
            action,
            source: std::io::Error::other(error.to_string()),
        }
    }

    impl ServerContainer {
        /// Starts a container of `kind` for the server `name`, its port published on a free
        /// port of 127.0.0.1 (retried when taken). MySQL's data directory is `data_directory`.
        /// Returns the container and the host port; does not wait for the server to answer.
        pub async fn start(
            kind: ServerKind,
            name: &str,
            options: &MariaDbOptions,
            server_id: impl Fn(u16) -> u32,
            data_directory: &Path,
        ) -> Result<(ServerContainer, u16), TestkitError> {
            let Some((image, tag)) = kind.image() else {
                return Err(TestkitError::Io {
                    action: format!("start a container for `{name}`"),
                    source: std::io::Error::other("the local mariadbd is not a container"),
                });
            };
            let mut last_error = None;
            for _ in 0..PORT_ATTEMPTS {
                let port = free_port()?;
                let request = match kind {
                    ServerKind::TiDb => GenericImage::new(image, tag)
                        .with_mapped_port(port, 4000.tcp())
                        .with_label("dm-testkit", name),
                    _ => {
                        let mut request = GenericImage::new(image, tag)
                            .with_mapped_port(port, 3306.tcp())
                            .with_label("dm-testkit", name)
                            .with_env_var("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")
                            .with_mount(Mount::bind_mount(
                                data_directory.display().to_string(),
                                "/var/lib/mysql",
                            ))
                            .with_cmd(mysql_arguments(server_id(port), options));
                        if let Some(ca) = &options.tls_ca {
                            // The test's certificates, at the same path the options name.
                            if let Some(directory) = ca.parent() {
                                make_traversable(directory)?;
                                let path = directory.display().to_string();
                                request = request.with_mount(
                                    Mount::bind_mount(path.clone(), path)
                                        .with_access_mode(AccessMode::ReadOnly),
                                );
                            }
                        }
                        if !running_as_root() {
                            // Files in the bind mount stay the test user's: readable, removable.
                            request = request.with_user(current_user());
                        }
                        request
                    }
                };
                let container_port = if kind == ServerKind::TiDb { 4000 } else { 3306 };
                let request = request.with_host_config_modifier(move |host_config| {
                    // Loopback only, like the local servers.
                    host_config.port_bindings = Some(
                        [(
                            format!("{container_port}/tcp"),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(port.to_string()),
                            }]),
                        )]
                        .into_iter()
                        .collect(),
                    );
                });
                match request.start().await {
                    Ok(container) => {
                        eprintln!(
                            "dm-testkit: `{name}` is a {kind} ({}) on 127.0.0.1:{port}",
                            container.id()
                        );
                        return Ok((ServerContainer { kind, container }, port));
                    }
                    Err(error) => {
                        let text = error.to_string();
                        let error = docker_error(format!("start a {kind} for `{name}`"))(error);
                        if text.contains("already allocated")
                            || text.contains("address already in use")
                        {
                            last_error = Some(error);
                        } else {
                            return Err(error);
                        }
                    }
                }
            }
            Err(
                last_error.unwrap_or_else(|| TestkitError::ServerDidNotStart {
                    server: name.to_owned(),
                    reason: "no free port".into(),
                    log_tail: String::new(),
                }),
            )
        }

        /// Waits until the server answers on `opts`; fails early when the container exited.
        pub async fn wait_until_ready(&self, name: &str, opts: Opts) -> Result<(), TestkitError> {
            let started = Instant::now();
            let mut last_check = Instant::now();
            loop {
                if let Ok(connection) = Conn::new(opts.clone()).await {
                    let _ = connection.disconnect().await;
                    return Ok(());
                }
                if last_check.elapsed() > Duration::from_secs(1) {
                    last_check = Instant::now();
                    if !self.container.is_running().await.unwrap_or(true) {
                        return Err(TestkitError::ServerDidNotStart {
                            server: name.to_owned(),
                            reason: format!("the {} exited during start-up", self.kind),
                            log_tail: self.log_tail(15).await,
                        });
                    }
                }
                if started.elapsed() > START_TIMEOUT {
                    return Err(TestkitError::ServerDidNotStart {
                        server: name.to_owned(),
                        reason: format!(
                            "the {} did not answer within {START_TIMEOUT:?}",
                            self.kind
                        ),
                        log_tail: self.log_tail(15).await,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        /// Empties the binlog of a new MySQL container, so that a test starts, as with a fresh
        /// local `mariadbd`, at `mysql-bin.000001` with no GTIDs (the image's initialisation
        /// already rotated the binlog once). TiDB has no binlog: nothing to do.
        pub async fn reset_binlog(&self, name: &str, opts: Opts) -> Result<(), TestkitError> {
            let statement = match self.kind {
                ServerKind::MySql80 => "RESET MASTER",
                ServerKind::MySql84 => "RESET BINARY LOGS AND GTIDS",
                ServerKind::TiDb | ServerKind::LocalMariaDb => return Ok(()),
            };
            let mut connection = Conn::new(opts)
                .await
                .map_err(crate::sql::sql_error(name, "<connect>"))?;
            crate::sql::execute(&mut connection, name, statement).await?;
            let _ = connection.disconnect().await;
            Ok(())
        }

        /// The last `lines` lines of the container's output (for error messages).
        pub async fn log_tail(&self, lines: usize) -> String {
            let mut text = self.container.stdout_to_vec().await.unwrap_or_default();
            text.extend(self.container.stderr_to_vec().await.unwrap_or_default());
            let text = String::from_utf8_lossy(&text);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }

        /// Stops the server cleanly (`docker stop`, SIGKILL after 30 s); the data stays.
        pub async fn stop(&self) -> Result<(), TestkitError> {
            if self.container.is_running().await.unwrap_or(true) {
                self.container
                    .stop_with_timeout(Some(STOP_TIMEOUT_SECONDS))
                    .await
                    .map_err(docker_error(format!("stop the {}", self.kind)))?;
            }
            Ok(())
        }

        /// Kills the server (`docker kill`, SIGKILL), as a crash would; the data stays.
        ///
        /// The handle's `kill` is synchronous, so this runs on its own thread with its own
        /// runtime and Docker client (blocking inside the test's runtime would stall a
        /// current-thread runtime).
        pub fn kill(&self) -> Result<(), TestkitError> {
            let id = self.container.id().to_owned();
            let failed = |reason: String| TestkitError::Io {
                action: format!("kill the {} {id}", self.kind),
                source: std::io::Error::other(reason),
            };
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|error| error.to_string())?;
                        runtime.block_on(async {
                            let docker = Docker::connect_with_defaults()
                                .map_err(|error| error.to_string())?;
                            docker
                                .kill_container(&id, None)
                                .await
                                .map_err(|error| error.to_string())
                        })
                    })
                    .join()
                    .unwrap_or_else(|_| Err("the thread that kills it panicked".into()))
            })
            .map_err(failed)
        }

        /// Starts the stopped or killed container again (same port, same data).
        pub async fn start_again(&self) -> Result<(), TestkitError> {
            self.container
                .start()
                .await
                .map_err(docker_error(format!("start the {} again", self.kind)))
        }
    }

    /// The server options of a MySQL container: those of the local helper, with GTIDs on, then
    /// the test's own (which come last, so they override).
    fn mysql_arguments(server_id: u32, options: &MariaDbOptions) -> Vec<String> {
        let mut arguments: Vec<String> = vec![
            format!("--server-id={server_id}"),
            "--log-bin=mysql-bin".into(),
            "--binlog-format=ROW".into(),
            "--binlog-row-image=FULL".into(),
            "--gtid-mode=ON".into(),
            "--enforce-gtid-consistency=ON".into(),
            "--skip-name-resolve".into(),
            "--skip-replica-start".into(),
            "--performance-schema=OFF".into(),
            "--mysqlx=OFF".into(),
            "--innodb-buffer-pool-size=128M".into(),
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--sync-binlog=0".into(),
            "--character-set-server=utf8mb4".into(),
            "--collation-server=utf8mb4_general_ci".into(),
            "--max-connections=500".into(),
            "--max-allowed-packet=256M".into(),
            "--local-infile=1".into(),
        ];
        arguments.extend(options.extra_args.iter().cloned());
        arguments
    }

    /// `uid:gid` of this process (the container runs as it, so bind-mounted files stay ours).
    fn current_user() -> String {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|metadata| format!("{}:{}", metadata.uid(), metadata.gid()))
            .unwrap_or_else(|_| "0:0".into())
    }

    /// Lets the container's `mysql` user enter the (0700) certificate directory; the files in
    /// it are world-readable already and hold nothing secret (test certificates).
    fn make_traversable(directory: &Path) -> Result<(), TestkitError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| TestkitError::Io {
                action: format!("open {} to the server container", directory.display()),
                source,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> MariaDbOptions {
        MariaDbOptions::named(name)
    }

    #[test]
    fn roles_come_from_the_options_then_from_the_name() {
        assert_eq!(
            ServerRole::of(&named("sink-downstream")),
            ServerRole::Downstream
        );
        assert_eq!(ServerRole::of(&named("case-down")), ServerRole::Downstream);
        assert_eq!(
            ServerRole::of(&named("remote-source")),
            ServerRole::Upstream
        );
        assert_eq!(
            ServerRole::of(&MariaDbOptions::default()),
            ServerRole::Upstream
        );
        assert_eq!(
            ServerRole::of(&named("target").downstream()),
            ServerRole::Downstream
        );
        assert_eq!(
            ServerRole::of(&named("x-downstream").upstream()),
            ServerRole::Upstream
        );
    }

    #[test]
    fn variables_select_the_kind_per_role() {
        use ServerKind::*;
        use ServerRole::*;
        assert_eq!(kind_for(Upstream, None, None).unwrap(), LocalMariaDb);
        assert_eq!(
            kind_for(Upstream, Some("mysql:8.0"), None).unwrap(),
            MySql80
        );
        assert_eq!(
            kind_for(Downstream, Some("mysql:8.4"), None).unwrap(),
            MySql84
        );
        // TiDB serves no binlog: upstreams stay local.
        assert_eq!(
            kind_for(Upstream, Some("tidb"), None).unwrap(),
            LocalMariaDb
        );
        assert_eq!(kind_for(Downstream, Some("tidb"), None).unwrap(), TiDb);
        // MySQL 8 -> TiDB.
        assert_eq!(
            kind_for(Upstream, Some("mysql:8.0"), Some("tidb")).unwrap(),
            MySql80
        );
        assert_eq!(
            kind_for(Downstream, Some("mysql:8.0"), Some("tidb")).unwrap(),
            TiDb
        );
        assert_eq!(
            kind_for(Downstream, None, Some("mariadb")).unwrap(),
            LocalMariaDb
        );
        let error = kind_for(Upstream, Some("mysql:5.7"), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "could not use DM_TEST_SERVER=mysql:5.7: expected one of mariadb, mysql:8.0, mysql:8.4, tidb"
        );
    }

    #[test]
    fn options_a_server_cannot_honour_are_named() {
        let domain = MariaDbOptions {
            gtid_domain_id: Some(3),
            ..named("up")
        };
        assert!(unsupported(ServerKind::MySql80, &domain).is_some());
        let compressed = named("up").arg("--log-bin-compress=ON");
        assert_eq!(
            unsupported(ServerKind::MySql84, &compressed).as_deref(),
            Some("the test gives the MariaDB-only option `--log-bin-compress=ON`")
        );
        let statement = named("up").arg("--binlog-format=STATEMENT");
        assert_eq!(unsupported(ServerKind::MySql80, &statement), None);
        assert!(unsupported(ServerKind::TiDb, &statement).is_some());
        assert_eq!(unsupported(ServerKind::TiDb, &named("down")), None);
    }
}
