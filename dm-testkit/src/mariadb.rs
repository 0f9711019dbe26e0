//! An isolated `mariadbd` on loopback, owned by one test.
//!
//! Start-up: a pristine data directory is built once per machine and MariaDB version by
//! `mariadb-install-db` (about a second) into `<tmp>/dm-testkit-template-<version>`, then copied
//! for each instance (tens of milliseconds); the server starts with its own port, socket,
//! `server-id`, binlog (`mysql-bin`, ROW, FULL image) and test-friendly durability
//! (`innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`: a `mariadbd` crash loses nothing, an OS
//! crash might). `root@127.0.0.1` has no password; the server listens only on 127.0.0.1.
//!
//! With the `containers` feature and `DM_TEST_SERVER` set, the same handle is a MySQL 8 or TiDB
//! container instead ([`crate::containers`]); without them, nothing here changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::{Conn, Opts, OptsBuilder};

use crate::containers::{Choice, ServerRole};
use crate::error::TestkitError;
use crate::process::{
    ServerProcess, find_binary, free_port, log_tail, make_server_directory, require_file,
    running_as_root,
};
use crate::sql;

/// The redo log size of test instances (the template is built with the same size).
const REDO_LOG_SIZE: &str = "48M";
/// How long a server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a start is retried when another process took the chosen port.
const PORT_ATTEMPTS: usize = 5;

/// How to start a [`MariaDb`].
#[derive(Clone, Debug, Default)]
pub struct MariaDbOptions {
    /// `server_id`; defaults to the port number, which is unique among running instances.
    pub server_id: Option<u32>,
    /// `gtid_domain_id` (MariaDB GTIDs are `domain-server-sequence`).
    pub gtid_domain_id: Option<u32>,
    /// More server options, such as `--binlog-row-metadata=FULL` or `--log-bin-compress=ON`.
    /// They come after the defaults, so they override them (`--binlog-format=STATEMENT`).
    pub extra_args: Vec<String>,
    /// The `mariadbd` binary; default: `$DM_TEST_MARIADBD`, `PATH`, `/usr/sbin`.
    pub mariadbd: Option<PathBuf>,
    /// A name for messages and the temp directory (`upstream`, `downstream`...).
    pub name: Option<String>,
    /// The CA of the server's certificate, when it was started with TLS
    /// ([`MariaDbOptions::with_tls`]): the test's own connections ([`MariaDb::opts`]) verify
    /// the server with it.
    pub tls_ca: Option<PathBuf>,
    /// What the test uses the server for, when it says so ([`MariaDbOptions::downstream`]):
    /// with `DM_TEST_SERVER=tidb`, only downstreams are TiDB. `None`: guessed from the name
    /// ([`crate::containers::ServerRole::of`]). A local `mariadbd` ignores it.
    pub role: Option<ServerRole>,
    /// The network namespace the server runs in ([`MariaDbOptions::in_namespace`]): started
    /// with `ip netns exec`, listening on the namespace's address ([`MariaDb::host`]); always a
    /// local process, whatever `DM_TEST_SERVER` says.
    pub namespace: Option<crate::netns::NamespaceAddress>,
}

impl MariaDbOptions {
    /// Options for an instance called `name` in messages.
    pub fn named(name: &str) -> Self {
        MariaDbOptions {
            name: Some(name.to_owned()),
            ..MariaDbOptions::default()
        }
    }

    /// Starts the server with TLS: `--ssl-ca`, `--ssl-cert`, `--ssl-key` from the test's
    /// certificates (the server certificate names `127.0.0.1`). The test's own connections use
    /// TLS too, so `--require-secure-transport=ON` can be added.
    pub fn with_tls(mut self, certificates: &crate::tls::TestCertificates) -> Self {
        let (certificate, key) = certificates.server();
        self.extra_args.extend([
            format!("--ssl-ca={}", certificates.ca().display()),
            format!("--ssl-cert={}", certificate.display()),
            format!("--ssl-key={}", key.display()),
        ]);
        self.tls_ca = Some(certificates.ca());
        self
    }

    /// Adds one server option.
    pub fn arg(mut self, argument: impl Into<String>) -> Self {
        self.extra_args.push(argument.into());
        self
    }

    /// Marks the server as a downstream only (never replicated or dumped from), which TiDB can
    /// serve when `DM_TEST_SERVER=tidb` ([`crate::containers`]).
    pub fn downstream(mut self) -> Self {
        self.role = Some(ServerRole::Downstream);
        self
    }

    /// Marks the server as an upstream, whatever its name says.
    pub fn upstream(mut self) -> Self {
        self.role = Some(ServerRole::Upstream);
        self
    }

    /// Runs the server inside `namespace`, on its address: the test reaches it through the
    /// namespace's link, which it can cut ([`crate::NetworkNamespace::partition`]). The
    /// namespace must outlive the server (declare it first).
    pub fn in_namespace(mut self, namespace: &crate::NetworkNamespace) -> Self {
        self.namespace = Some(namespace.binding());
        self
    }
}

/// A running, isolated MariaDB server (or, with the `containers` feature, a MySQL 8 or TiDB
/// container: [`crate::containers`]). Dropping it kills the server and removes its files.
#[derive(Debug)]
pub struct MariaDb {
    name: String,
    /// What runs the server; declared before `process` so that a container is removed before
    /// the directory it mounts.
    backend: Backend,
    port: u16,
    server_id: u32,
    options: MariaDbOptions,
    /// The local server process; for a container it only owns the directory (no PID).
    process: ServerProcess,
}

/// What runs a [`MariaDb`].
#[derive(Debug)]
enum Backend {
    /// A local `mariadbd` process (its PID and watchdog are in `MariaDb::process`).
    Process {
        /// The binary, for restarts.
        mariadbd: PathBuf,
    },
    /// A Docker container (the `containers` feature); boxed, it is large.
    #[cfg(feature = "containers")]
    Container(Box<crate::containers::ServerContainer>),
}

impl MariaDb {
    /// Starts an instance with default options.
    pub async fn start() -> Result<MariaDb, TestkitError> {
        MariaDb::start_with(MariaDbOptions::default()).await
    }

    /// Starts an instance; returns once it accepts connections.
    pub async fn start_with(options: MariaDbOptions) -> Result<MariaDb, TestkitError> {
        let choice = match options.namespace {
            Some(_) => Choice::LocalProcess,
            None => crate::containers::choose(&options)?,
        };
        match choice {
            Choice::LocalProcess => {}
            #[cfg(feature = "containers")]
            Choice::Container(kind) => return MariaDb::start_container(kind, options).await,
        }
        let mariadbd = match &options.mariadbd {
            Some(path) => require_file(path, "mariadbd")?,
            None => find_binary("mariadbd", "DM_TEST_MARIADBD")?,
        };
        let install_db = find_binary("mariadb-install-db", "DM_TEST_MARIADB_INSTALL_DB")?;
        let name = options.name.clone().unwrap_or_else(|| "mariadb".to_owned());
        let template = {
            let mariadbd = mariadbd.clone();
            tokio::task::spawn_blocking(move || template_directory(&mariadbd, &install_db))
                .await
                .map_err(|error| TestkitError::Io {
                    action: "build the MariaDB template".into(),
                    source: std::io::Error::other(error.to_string()),
                })??
        };
        let directory = make_server_directory(&name)?;
        let process = ServerProcess::new(format!("mariadbd {name}"), directory.clone());
        {
            let data = directory.join("data");
            tokio::task::spawn_blocking(move || copy_directory(&template, &data))
                .await
                .map_err(|error| TestkitError::Io {
                    action: "copy the MariaDB template".into(),
                    source: std::io::Error::other(error.to_string()),
                })??;
        }
        let mut server = MariaDb {
            name,
            backend: Backend::Process { mariadbd },
            port: 0,
            server_id: 0,
            options,
            process,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            server.server_id = server.options.server_id.unwrap_or(u32::from(server.port));
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(error) if server.port_was_taken() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(
            last_error.unwrap_or_else(|| TestkitError::ServerDidNotStart {
                server: server.name.clone(),
                reason: "no free port".into(),
                log_tail: String::new(),
            }),
        )
    }

    /// Starts a container of `kind` (the `containers` feature) and waits until it answers.
    #[cfg(feature = "containers")]
    async fn start_container(
        kind: crate::containers::ServerKind,
        options: MariaDbOptions,
    ) -> Result<MariaDb, TestkitError> {
        let name = options.name.clone().unwrap_or_else(|| "mariadb".to_owned());
        let directory = make_server_directory(&name)?;
        let process = ServerProcess::new(format!("{kind} {name}"), directory.clone());
        let data = directory.join("data");
        std::fs::create_dir_all(&data).map_err(|source| TestkitError::Io {
            action: format!("create {}", data.display()),
            source,
        })?;
        let configured_id = options.server_id;
        let server_id = |port| configured_id.unwrap_or(u32::from(port));
        let (container, port) =
            crate::containers::ServerContainer::start(kind, &name, &options, server_id, &data)
                .await?;
        // From here on, dropping `server` removes the container, then the directory.
        let server = MariaDb {
            name,
            backend: Backend::Container(Box::new(container)),
            port,
            server_id: server_id(port),
            options,
            process,
        };
        if let Backend::Container(container) = &server.backend {
            container
                .wait_until_ready(&server.name, server.opts())
                .await?;
            container.reset_binlog(&server.name, server.opts()).await?;
        }
        Ok(server)
    }

    /// The container behind this handle, if it is one.
    #[cfg(feature = "containers")]
    fn container(&self) -> Option<&crate::containers::ServerContainer> {
        match &self.backend {
            Backend::Container(container) => Some(container),
            Backend::Process { .. } => None,
        }
    }

    fn port_was_taken(&self) -> bool {
        let tail = log_tail(&self.error_log_path(), 20);
        tail.contains("Address already in use") || tail.contains("Do you already have another")
    }

    fn error_log_path(&self) -> PathBuf {
        self.process.directory().join("error.log")
    }

    /// The server's Unix socket (for the `mariadb` command-line client).
    pub fn socket_path(&self) -> PathBuf {
        self.process.directory().join("mysqld.sock")
    }

    /// Starts the server process on `self.port` and waits until it answers.
    async fn launch(&mut self) -> Result<(), TestkitError> {
        let mariadbd = match &self.backend {
            Backend::Process { mariadbd } => mariadbd.clone(),
            #[cfg(feature = "containers")]
            Backend::Container(container) => {
                container.start_again().await?;
                return container.wait_until_ready(&self.name, self.opts()).await;
            }
        };
        let directory = self.process.directory().to_owned();
        let mut command = match &self.options.namespace {
            Some(namespace) => {
                // `ip netns exec` execs mariadbd: the PID the watchdog knows is the server's.
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", &namespace.name])
                    .arg(&mariadbd);
                command
            }
            None => Command::new(&mariadbd),
        };
        command.arg("--no-defaults");
        if running_as_root() {
            command.arg("--user=root");
        }
        let path = |file: &str| directory.join(file).display().to_string();
        command.args([
            format!("--datadir={}", path("data")),
            format!("--tmpdir={}", directory.display()),
            format!("--socket={}", path("mysqld.sock")),
            format!("--pid-file={}", path("mysqld.pid")),
            format!("--log-error={}", path("error.log")),
            format!("--port={}", self.port),
            format!("--bind-address={}", self.host()),
            format!("--server-id={}", self.server_id),
            "--log-bin=mysql-bin".into(),
            "--binlog-format=ROW".into(),
            "--binlog-row-image=FULL".into(),
            "--skip-name-resolve".into(),
            "--skip-slave-start".into(),
            "--performance-schema=OFF".into(),
            "--innodb-buffer-pool-size=128M".into(),
            format!("--innodb-log-file-size={REDO_LOG_SIZE}"),
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--sync-binlog=0".into(),
            "--character-set-server=utf8mb4".into(),
            "--collation-server=utf8mb4_general_ci".into(),
            "--max-connections=500".into(),
            "--max-allowed-packet=256M".into(),
            "--local-infile=1".into(),
        ]);
        if Path::new("/usr/share/mysql").is_dir() {
            command.arg("--lc-messages-dir=/usr/share/mysql");
        }
        if let Some(namespace) = &self.options.namespace {
            // Clients come from the host side of the namespace's link, not 127.0.0.1: root may
            // log in from there too (the template grants only root@localhost / 127.0.0.1).
            let init = directory.join("namespace-init.sql");
            let grant = format!(
                "CREATE USER IF NOT EXISTS 'root'@'{host}';\n\
                 GRANT ALL ON *.* TO 'root'@'{host}' WITH GRANT OPTION;\n",
                host = crate::netns::client_host_pattern(namespace)
            );
            std::fs::write(&init, grant).map_err(|source| TestkitError::Io {
                action: format!("write {}", init.display()),
                source,
            })?;
            command.arg(format!("--init-file={}", init.display()));
        }
        if let Some(domain) = self.options.gtid_domain_id {
            command.arg(format!("--gtid-domain-id={domain}"));
        }
        command.args(&self.options.extra_args);
        self.process.spawn(command, "stdout.log")?;

        let started = Instant::now();
        loop {
            if self.process.has_exited() {
                return Err(TestkitError::ServerDidNotStart {
                    server: self.name.clone(),
                    reason: format!("mariadbd exited during start-up (port {})", self.port),
                    log_tail: log_tail(&self.error_log_path(), 15),
                });
            }
            if let Ok(connection) = Conn::new(self.opts()).await {
                let _ = connection.disconnect().await;
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = self.process.kill();
                return Err(TestkitError::ServerDidNotStart {
                    server: self.name.clone(),
                    reason: format!("no answer on port {} within {START_TIMEOUT:?}", self.port),
                    log_tail: log_tail(&self.error_log_path(), 15),
                });
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// The name given in the options (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The TCP port (on [`MariaDb::host`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's `server_id`.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// The `mariadbd` PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The PID of the watchdog that kills the server if the test process dies.
    pub fn watchdog_pid(&self) -> Option<u32> {
        self.process.watchdog_pid()
    }

    /// The instance's directory (data, socket, logs); removed on drop.
    pub fn directory(&self) -> &Path {
        self.process.directory()
    }

    /// The address the server listens on: 127.0.0.1, or the namespace's address
    /// ([`MariaDbOptions::in_namespace`]).
    pub fn host(&self) -> String {
        match &self.options.namespace {
            Some(namespace) => namespace.address.to_string(),
            None => "127.0.0.1".to_owned(),
        }
    }

    /// `mysql://root@<host>:<port>`.
    pub fn url(&self) -> String {
        format!("mysql://root@{}:{}", self.host(), self.port)
    }

    /// Connection options for `mysql_async` (as root, over TLS verified with the test's CA
    /// when the server was started [`MariaDbOptions::with_tls`]).
    pub fn opts(&self) -> Opts {
        let builder = OptsBuilder::default()
            .ip_or_hostname(self.host())
            .tcp_port(self.port)
            .user(Some("root"))
            .prefer_socket(false);
        match &self.options.tls_ca {
            None => builder.into(),
            Some(ca) => builder
                .ssl_opts(
                    mysql_async::SslOpts::default()
                        .with_root_certs(vec![ca.clone().into()])
                        .with_disable_built_in_roots(true),
                )
                .into(),
        }
    }

    /// Opens a connection.
    pub async fn connect(&self) -> Result<Conn, TestkitError> {
        Conn::new(self.opts())
            .await
            .map_err(sql::sql_error(&self.name, "<connect>"))
    }

    /// Loads MariaDB's ed25519 authentication plugin (`INSTALL SONAME 'auth_ed25519'`), so
    /// that users `IDENTIFIED VIA ed25519` can be made. A server that is not MariaDB, or whose
    /// plugin directory lacks the plugin, is [`TestkitError::MissingBinary`] (skipped outside CI
    /// with [`crate::or_skip!`], failed in CI).
    pub async fn install_ed25519(&self) -> Result<(), TestkitError> {
        let first = |rows: Vec<Vec<Option<String>>>| {
            rows.into_iter()
                .next()
                .and_then(|row| row.into_iter().next().flatten())
                .unwrap_or_default()
        };
        let missing = |hint: String| TestkitError::MissingBinary {
            binary: "auth_ed25519 (MariaDB's ed25519 authentication plugin)".into(),
            hint,
        };
        let version = first(self.query("SELECT VERSION()").await?);
        if !version.contains("MariaDB") {
            return Err(missing(format!("the server is {version}, not MariaDB")));
        }
        // The server's own view: ALL_PLUGINS lists the plugin files of its plugin directory.
        let available = first(
            self.query(
                "SELECT COUNT(*) FROM information_schema.ALL_PLUGINS WHERE PLUGIN_NAME = 'ed25519'",
            )
            .await?,
        );
        if available != "1" {
            let directory = first(self.query("SELECT @@plugin_dir").await?);
            return Err(missing(format!(
                "auth_ed25519.so is not in the server's plugin directory {directory} (Debian and \
                 Ubuntu ship it in mariadb-server)"
            )));
        }
        self.execute("INSTALL SONAME 'auth_ed25519'").await
    }

    /// Runs SQL text, which may hold several statements separated by `;`.
    pub async fn execute(&self, sql_text: &str) -> Result<(), TestkitError> {
        let mut connection = self.connect().await?;
        sql::execute(&mut connection, &self.name, sql_text).await?;
        let _ = connection.disconnect().await;
        Ok(())
    }

    /// Runs a query and returns every row as text (`None` for NULL).
    pub async fn query(&self, sql_text: &str) -> Result<Vec<Vec<Option<String>>>, TestkitError> {
        let mut connection = self.connect().await?;
        let rows = sql::query_text(&mut connection, &self.name, sql_text).await?;
        let _ = connection.disconnect().await;
        Ok(rows)
    }

    /// Stops the server cleanly (SIGTERM, then SIGKILL after 30 s); the data stays for
    /// [`MariaDb::restart`].
    pub async fn stop(&mut self) -> Result<(), TestkitError> {
        #[cfg(feature = "containers")]
        if let Some(container) = self.container() {
            return container.stop().await;
        }
        self.process.terminate();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.process.has_exited() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.process.kill()
    }

    /// Kills the server (SIGKILL), as a crash would; the data stays for [`MariaDb::restart`].
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        #[cfg(feature = "containers")]
        if let Some(container) = self.container() {
            return container.kill();
        }
        self.process.kill()
    }

    /// Starts the stopped or killed server again on the same port and data.
    pub async fn restart(&mut self) -> Result<(), TestkitError> {
        #[cfg(feature = "containers")]
        if self.container().is_some() {
            self.stop().await?;
            return self.launch().await;
        }
        if self.process.pid().is_some() {
            self.stop().await?;
        }
        self.launch().await
    }

    /// The server's current binlog file and position (`SHOW MASTER STATUS`).
    pub async fn binlog_position(&self) -> Result<(String, u64), TestkitError> {
        let rows = self.query("SHOW MASTER STATUS").await?;
        let row = rows
            .first()
            .ok_or_else(|| TestkitError::ServerDidNotStart {
                server: self.name.clone(),
                reason: "SHOW MASTER STATUS returned nothing: is log-bin off?".into(),
                log_tail: String::new(),
            })?;
        let file = row.first().cloned().flatten().unwrap_or_default();
        let position = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|text| text.parse().ok())
            .unwrap_or_default();
        Ok((file, position))
    }
}

/// Returns the pristine data directory for this `mariadbd` version, building it once.
fn template_directory(mariadbd: &Path, install_db: &Path) -> Result<PathBuf, TestkitError> {
    // Servers started in parallel by one test wait for one build instead of each running
    // mariadb-install-db (other test processes are handled by the rename below).
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_build_at_a_time = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    static VERSION: OnceLock<String> = OnceLock::new();
    let version = match VERSION.get() {
        Some(version) => version.clone(),
        None => {
            let output = Command::new(mariadbd)
                .arg("--version")
                .output()
                .map_err(|source| TestkitError::Io {
                    action: format!("run {} --version", mariadbd.display()),
                    source,
                })?;
            let text = String::from_utf8_lossy(&output.stdout);
            let version: String = text
                .split_whitespace()
                .nth(2)
                .unwrap_or("unknown")
                .chars()
                .filter(|character| character.is_ascii_alphanumeric() || *character == '.')
                .collect();
            VERSION.get_or_init(|| version).clone()
        }
    };
    let user = if running_as_root() { "root" } else { "user" };
    let template = std::env::temp_dir().join(format!(
        "dm-testkit-template-{version}-{REDO_LOG_SIZE}-{user}"
    ));
    if template.join(".complete").is_file() {
        return Ok(template);
    }
    // Build in a private directory and rename it into place, so that concurrent test processes
    // never see a half-built template: the first rename wins, the others discard their copy.
    let building = tempfile::Builder::new()
        .prefix("dm-testkit-template-building-")
        .tempdir()
        .map_err(|source| TestkitError::Io {
            action: "create a directory to build the MariaDB template".into(),
            source,
        })?;
    let data = building.path().join("data");
    let mut command = Command::new(install_db);
    command.args([
        "--no-defaults".to_owned(),
        format!("--datadir={}", data.display()),
        "--auth-root-authentication-method=normal".to_owned(),
        "--skip-test-db".to_owned(),
        format!("--innodb-log-file-size={REDO_LOG_SIZE}"),
        "--character-set-server=utf8mb4".to_owned(),
        "--collation-server=utf8mb4_general_ci".to_owned(),
    ]);
    if running_as_root() {
        command.arg("--user=root");
    }
    let output = command.output().map_err(|source| TestkitError::Io {
        action: format!("run {}", install_db.display()),
        source,
    })?;
    if !output.status.success() {
        return Err(TestkitError::ServerDidNotStart {
            server: "mariadb-install-db".into(),
            reason: format!("exited with {}", output.status),
            log_tail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    std::fs::write(data.join(".complete"), b"").map_err(|source| TestkitError::Io {
        action: "mark the MariaDB template complete".into(),
        source,
    })?;
    if std::fs::rename(&data, &template).is_err() && !template.join(".complete").is_file() {
        return Err(TestkitError::Io {
            action: format!("move the MariaDB template to {}", template.display()),
            source: std::io::Error::other("rename failed and no complete template exists"),
        });
    }
    Ok(template)
}

/// Copies a directory tree (regular files and directories only).
fn copy_directory(from: &Path, to: &Path) -> Result<(), TestkitError> {
    let io_error = |action: String| move |source| TestkitError::Io { action, source };
    std::fs::create_dir_all(to).map_err(io_error(format!("create {}", to.display())))?;
    let entries = std::fs::read_dir(from).map_err(io_error(format!("read {}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(io_error(format!("read {}", from.display())))?;
        let target = to.join(entry.file_name());
        let file_type = entry
            .file_type()
            .map_err(io_error(format!("stat {}", entry.path().display())))?;
        if file_type.is_dir() {
            copy_directory(&entry.path(), &target)?;
        } else if file_type.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(io_error(format!("copy {}", entry.path().display())))?;
        }
    }
    Ok(())
}
