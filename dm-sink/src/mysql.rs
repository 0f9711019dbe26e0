//! `MySqlSink`: applies batches of row changes and DDL to a MySQL-compatible downstream (TiDB,
//! MySQL, MariaDB) over one connection, one transaction per batch.
//!
//! ```text
//! apply_changes([c1 .. cn], mode)
//!   resolve each target table (information_schema, cached): its identity key
//!   plan: runs of the same table, layout and statement kind -> one multi-row statement each
//!   START TRANSACTION; statement; statement; ...; COMMIT     (any error: ROLLBACK, nothing applied)
//!   sent as one multi-statement packet (more when over `max_statement_bytes`): one round trip
//!   per batch; a refused statement rolls back and the batch is replayed one statement at a
//!   time, so that the error names the statement
//! ```
//!
//! Each change may carry its own mode (`ChangeBatch::push`, `apply_marked_changes_with`): a
//! compactor marks the changes it cannot write exactly.
//!
//! The identity key of a target table comes from the batch: the syncer reads each table's
//! definition once (`Sink::describe_table`) and hands it to every worker inside its batches.
//! Only a batch without it (`apply_changes`) makes the sink read the table itself (cached until
//! `forget_tables` or a DDL).
//!
//! With a [`MetaScope`] (as [`crate::MySqlSinks`] opens them), the sink also keeps the task's
//! checkpoints (`dm_core::CheckpointStore`: DM's checkpoint tables, `checkpoint.rs`), writes a
//! batch's worker checkpoint row inside the batch's transaction and runs DDL exactly once
//! (`ddl.rs`); with a [`LoadScope`] (as [`crate::MySqlLoadSinks`] opens them) it serves a full
//! load (`dm_core::LoadSink`, `dm_core::LoadCheckpointStore`: the loader's meta tables, the
//! objects it creates, chunks with their "loaded" mark, `load.rs`).
//!
//! Statements per change kind:
//!
//! | change | exact mode | idempotent mode (safe mode) |
//! |---|---|---|
//! | insert | multi-row `INSERT` | multi-row `REPLACE` |
//! | update, identity kept | multi-row `INSERT ... ON DUPLICATE KEY UPDATE` | multi-row `REPLACE` |
//! | update, identity changed | `UPDATE ... WHERE <old identity> LIMIT 1` | `DELETE <old identity>` + `REPLACE` |
//! | delete | `DELETE ... WHERE <identity> IN (...)` | the same |
//! | any change to a table without PK / not-null UK | one statement per row, `LIMIT 1` | the same (safe mode cannot make these idempotent) |
//!
//! TLS: [`MySqlSinkOptions::tls`] (the task's `target-database.security`) becomes mysql_async's
//! rustls options ([`ssl_options`]): only the configured CA is trusted, the server's name is
//! checked, the client certificate is sent when set; a TLS failure is [`SinkError::Tls`]
//! (definite), never a fallback to plain TCP.
//!
//! Broken connections: a batch waits at most [`MySqlSinkOptions::read_timeout`] for its answer
//! (a half-open connection after a partition would otherwise wait for TCP to give up, about 15
//! minutes); the connection is then dropped and the error is transient. The next connection
//! kills the lost session if it still holds the worker's lock, and a batch that is applied again
//! after its commit was in doubt is first checked against the stored worker checkpoint, so it
//! is never applied twice.
//!
//! Session: `time_zone = '+00:00'` (TIMESTAMP values are written as UTC), a permissive
//! `sql_mode` without `NO_BACKSLASH_ESCAPES` (literals escape with backslashes; zero dates and
//! explicit zero ids are kept as the upstream had them), `foreign_key_checks = 0`, then the
//! user's session variables.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dm_core::{
    ApplyMode, ChangeBatch, CheckpointStore, GlobalCheckpoint, RowChange, RowChangeKind, Sink,
    SinkTable, SourceCheckpoints, TableRef, TableSchema, WorkerCheckpoint,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::error::SinkError;
use crate::factory::MetaScope;
use crate::introspect::{introspection_error, load_table_schema};
use crate::load::LoadScope;
use crate::statement::{InsertVerb, write_delete, write_insert, write_update};

/// The session's `sql_mode` unless the user sets one.
pub const DEFAULT_SQL_MODE: &str =
    "NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION,IGNORE_SPACE";

/// How to reach and use the downstream. Its `Debug` shows the password as `"***"`
/// ([`dm_core::Redacted`]).
#[derive(Clone)]
pub struct MySqlSinkOptions {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User (needs INSERT, UPDATE, DELETE, and the DDL privileges the task replays).
    pub user: String,
    /// Password.
    pub password: String,
    /// TLS to the downstream (`target-database.security`); `None`: plain TCP.
    pub tls: Option<dm_core::TlsConfig>,
    /// Session variables set after the defaults (`name`, `value` as SQL), e.g.
    /// `("tidb_txn_mode", "'optimistic'")`.
    pub session_variables: Vec<(String, String)>,
    /// At most this many rows in one multi-row statement.
    pub max_rows_per_statement: usize,
    /// Start a new statement once one reaches this many bytes (keep it under the downstream's
    /// `max_allowed_packet`).
    pub max_statement_bytes: usize,
    /// How long to wait for the connection.
    pub connect_timeout: Duration,
    /// A named lock (`GET_LOCK`) every connection takes right after it connects, waiting up to
    /// `lock_wait`; a connection that cannot get it fails with [`SinkError::Locked`]. The
    /// syncer gives each worker one: a crashed run's transaction still executing downstream
    /// holds it until it ends, so a new run never reads a checkpoint that is about to change.
    pub lock: Option<String>,
    /// How long to wait for `lock`.
    pub lock_wait: Duration,
    /// How long a batch or checkpoint write waits for the downstream's answer. Past it the
    /// connection is taken as dead (half-open: a partition that dropped packets without a
    /// reset), dropped, and the error is a transient [`SinkError::Connection`], so the caller's
    /// retry reconnects. TCP alone would wait for its retransmissions to give up (about 15
    /// minutes). DDL and [`MySqlSink::execute`] are not bounded: an `ALTER TABLE` may run for
    /// hours. `None`: wait for ever.
    pub read_timeout: Option<Duration>,
    /// TCP keepalive on the connection (idle time before the first probe): an idle
    /// connection to a vanished downstream is closed by the kernel.
    pub tcp_keepalive: Option<Duration>,
}

impl std::fmt::Debug for MySqlSinkOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let MySqlSinkOptions {
            host,
            port,
            user,
            password,
            tls,
            session_variables,
            max_rows_per_statement,
            max_statement_bytes,
            connect_timeout,
            lock,
            lock_wait,
            read_timeout,
            tcp_keepalive,
        } = self;
        formatter
            .debug_struct("MySqlSinkOptions")
            .field("host", host)
            .field("port", port)
            .field("user", user)
            .field("password", &dm_core::Redacted(password))
            .field("tls", tls)
            .field("session_variables", session_variables)
            .field("max_rows_per_statement", max_rows_per_statement)
            .field("max_statement_bytes", max_statement_bytes)
            .field("connect_timeout", connect_timeout)
            .field("lock", lock)
            .field("lock_wait", lock_wait)
            .field("read_timeout", read_timeout)
            .field("tcp_keepalive", tcp_keepalive)
            .finish()
    }
}

impl MySqlSinkOptions {
    /// Options with defaults: 256 rows or 1 MiB per statement, 10 s connect timeout, 5 min
    /// read timeout for a batch (longer than MariaDB's and MySQL's 50 s lock wait and than a
    /// large batch on a busy TiDB), 60 s TCP keepalive.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        MySqlSinkOptions {
            host: host.into(),
            port,
            user: user.into(),
            password: password.into(),
            tls: None,
            session_variables: Vec::new(),
            max_rows_per_statement: 256,
            max_statement_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(10),
            lock: None,
            lock_wait: Duration::from_secs(60),
            read_timeout: Some(Duration::from_secs(300)),
            tcp_keepalive: Some(Duration::from_secs(60)),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// mysql_async's TLS options for `tls`: the CA as the only root, the client identity when set,
/// the server's name checked. What mysql_async cannot check is refused (the reason says what):
/// `cert-allowed-cn`, and verify-ca: mysql_async's switch for it
/// (`with_danger_skip_domain_validation`) looks for `NotValidForName` in the error's text, and
/// the rustls of this build reports `NotValidForNameContext`, so the name would be checked
/// anyway (seen against a server whose certificate names another host).
pub fn ssl_options(tls: &dm_core::TlsConfig) -> Result<mysql_async::SslOpts, String> {
    use dm_core::{PemSource, TlsVerification};
    if !tls.allowed_common_names.is_empty() {
        return Err(
            "cert-allowed-cn is not supported on a database connection (the client \
                    cannot check a certificate's common name); remove it"
                .into(),
        );
    }
    if tls.verification != TlsVerification::Identity {
        return Err(
            "ssl-mode verify-ca is supported by the binlog client only; the dump, \
                    load and downstream connections verify the host name too: give the \
                    server a certificate that names the host (verify-identity)"
                .into(),
        );
    }
    // mysql_async does not export its `PathOrBuf`: each use converts in place.
    macro_rules! source {
        ($pem:expr) => {
            match $pem {
                PemSource::File(path) => path.clone().into(),
                PemSource::Inline { pem, .. } => pem.clone().into(),
            }
        };
    }
    let mut options = mysql_async::SslOpts::default()
        .with_root_certs(vec![source!(&tls.ca)])
        .with_disable_built_in_roots(true);
    if let Some(identity) = &tls.client_identity {
        options = options.with_client_identity(Some(mysql_async::ClientIdentity::new(
            source!(&identity.certificate),
            source!(&identity.key),
        )));
    }
    Ok(options)
}

/// The error of a connection that failed with TLS configured: a TLS error names the CA.
pub fn tls_connect_error(tls: &dm_core::TlsConfig, error: &mysql_async::Error) -> Option<String> {
    let text = error.to_string();
    let is_tls = matches!(error, mysql_async::Error::Io(mysql_async::IoError::Tls(_)))
        || text.contains("certificate")
        || text.contains("TLS")
        || text.contains("tls");
    is_tls.then(|| {
        if text.contains("UnsupportedCertVersion") {
            format!(
                "{text}: a certificate is not X.509 v3, which TLS here needs (the CA in {}, the \
                 server's, or the client's): make it with extensions (`openssl x509 -req ... \
                 -extfile` with at least `basicConstraints`)",
                tls.ca
            )
        } else {
            format!(
                "{text} (the server's certificate is verified against the CA in {})",
                tls.ca
            )
        }
    })
}

/// Positions in `layout` of the identity key's columns of `target` (the downstream table);
/// empty when it has no PK / not-null UK, or the layout lacks one of its columns.
fn identity(target: &TableSchema, layout: &TableSchema) -> Vec<usize> {
    let Some(key) = target.row_identity_key() else {
        return Vec::new();
    };
    let positions: Option<Vec<usize>> = key
        .columns
        .iter()
        .map(|part| {
            target
                .columns()
                .get(part.column)
                .and_then(|column| layout.column_index(&column.name))
        })
        .collect();
    positions.unwrap_or_default()
}

/// A MySQL-compatible downstream.
#[derive(Debug)]
pub struct MySqlSink {
    options: MySqlSinkOptions,
    connection: Option<Conn>,
    /// The task and source whose checkpoints this sink writes, if any.
    scope: Option<MetaScope>,
    /// The task and source whose load progress and chunk marks this sink writes, if any.
    load_scope: Option<LoadScope>,
    /// Downstream tables read by the sink itself, for batches that do not carry them.
    targets: HashMap<TableRef, Arc<TableSchema>>,
    statements: Vec<String>,
    /// The multi-statement text being sent (kept to reuse its allocation).
    packet: String,
    /// The worker checkpoint of a batch whose connection was lost after its statements were
    /// sent: it may have committed. When the same batch comes again, the stored worker row
    /// says whether it did (see `apply_batch`).
    in_doubt: Option<WorkerCheckpoint>,
    /// The server's id of the last connection given up as broken. Its session may live on
    /// downstream (a half-open connection: the server never saw it close) and hold the
    /// options' lock; the next connection ends it if it does (see `connection`).
    abandoned: Option<u32>,
}

/// Turns a client error into the sink's error: server errors keep their number (and class),
/// anything else is a broken connection.
pub(crate) fn client_error(what: &str, sql: &str, error: mysql_async::Error) -> SinkError {
    match error {
        mysql_async::Error::Server(server) => SinkError::Statement {
            what: what.to_owned(),
            code: server.code,
            message: server.message,
            sql: shorten(sql),
        },
        other => SinkError::Connection {
            address: String::new(),
            reason: format!("{what}: {other}"),
        },
    }
}

/// Runs `statements` as one transaction, one round trip each: the slow path that names the
/// statement the server refuses.
async fn execute_one_by_one(
    connection: &mut Conn,
    what: &str,
    statements: &[String],
    read_timeout: Option<Duration>,
) -> Result<(), SinkError> {
    query_within(connection, "START TRANSACTION", read_timeout)
        .await
        .map_err(|error| client_error(what, "START TRANSACTION", error))?;
    for sql in statements.iter().map(String::as_str).chain(["COMMIT"]) {
        if let Err(error) = query_within(connection, sql, read_timeout).await {
            if matches!(error, mysql_async::Error::Server(_)) {
                let _ = query_within(connection, "ROLLBACK", read_timeout).await;
            }
            return Err(client_error(what, sql, error));
        }
    }
    Ok(())
}

fn shorten(sql: &str) -> String {
    const LIMIT: usize = 400;
    if sql.len() <= LIMIT {
        return sql.to_owned();
    }
    let mut end = LIMIT;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &sql[..end], sql.len())
}

/// Runs `sql`, waiting at most `read_timeout` for the answer. Past it the connection is dead
/// (half-open after a partition): a client I/O error, which [`client_error`] turns into a
/// transient [`SinkError::Connection`] and `settle` drops the connection for. The cancelled
/// query leaves the connection unusable, which is why it is dropped.
async fn query_within(
    connection: &mut Conn,
    sql: &str,
    read_timeout: Option<Duration>,
) -> Result<(), mysql_async::Error> {
    let Some(limit) = read_timeout else {
        return connection.query_drop(sql).await;
    };
    match tokio::time::timeout(limit, connection.query_drop(sql)).await {
        Ok(result) => result,
        Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from the downstream within {limit:?} (read timeout)"),
            ),
        ))),
    }
}

pub(crate) fn is_connection_error(error: &SinkError) -> bool {
    match error {
        SinkError::Connection { .. } => true,
        SinkError::Statement { code, .. } => matches!(code, 1053 | 2006 | 2013 | 1927),
        _ => false,
    }
}

fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_')
}

impl MySqlSink {
    /// A sink that connects on first use (and reconnects after a broken connection).
    pub fn new(options: MySqlSinkOptions) -> Result<Self, SinkError> {
        if let Some((name, _)) = options
            .session_variables
            .iter()
            .find(|(name, _)| !valid_variable_name(name))
        {
            return Err(SinkError::Schema {
                table: "-".into(),
                reason: format!(
                    "session variable name `{name}` is not a plain identifier (letters, digits, _)"
                ),
            });
        }
        Ok(MySqlSink {
            options,
            connection: None,
            scope: None,
            load_scope: None,
            targets: HashMap::new(),
            statements: Vec::new(),
            packet: String::new(),
            in_doubt: None,
            abandoned: None,
        })
    }

    /// The sink keeps the checkpoints (and load marks) of `scope`'s task and source.
    pub fn with_scope(mut self, scope: MetaScope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The sink keeps the load progress and chunk marks of `scope`'s task and source
    /// (`load.rs`; [`crate::MySqlLoadSinks`] opens them so).
    pub fn with_load_scope(mut self, scope: LoadScope) -> Self {
        self.load_scope = Some(scope);
        self
    }

    /// The load scope, or the one of the checkpoint scope's task and source.
    pub(crate) fn load_scope(&self) -> Result<LoadScope, SinkError> {
        if let Some(scope) = &self.load_scope {
            return Ok(scope.clone());
        }
        let scope = self.scope.clone().ok_or_else(|| SinkError::Schema {
            table: "load".into(),
            reason:
                "this sink was opened without a task's meta tables (MySqlSink::with_load_scope)"
                    .into(),
        })?;
        Ok(LoadScope {
            tables: scope.tables,
            source: scope.source,
        })
    }

    fn scope(&self) -> Result<MetaScope, SinkError> {
        self.scope.clone().ok_or_else(|| SinkError::Schema {
            table: "checkpoint".into(),
            reason: "this sink was opened without a task's meta tables (MySqlSink::with_scope)"
                .into(),
        })
    }

    /// Connects now (and takes the options' lock) instead of on first use.
    pub async fn connect(&mut self) -> Result<(), SinkError> {
        let connected = self.connection().await.map(|_| ());
        self.settle(connected)
    }

    /// Forgets what the sink knows of the downstream tables (after a DDL changed them).
    pub fn forget_tables(&mut self) {
        self.targets.clear();
    }

    async fn connection(&mut self) -> Result<&mut Conn, SinkError> {
        if self.connection.is_none() {
            let address = self.options.address();
            let mut options = OptsBuilder::default()
                .ip_or_hostname(self.options.host.clone())
                .tcp_port(self.options.port)
                .user(Some(self.options.user.clone()))
                .pass(Some(self.options.password.clone()))
                .tcp_keepalive(self.options.tcp_keepalive)
                .prefer_socket(false);
            if let Some(tls) = &self.options.tls {
                let ssl = ssl_options(tls).map_err(|reason| SinkError::Tls {
                    address: address.clone(),
                    reason,
                })?;
                options = options.ssl_opts(ssl);
            }
            let connect = Conn::new(options);
            let mut connection =
                match tokio::time::timeout(self.options.connect_timeout, connect).await {
                    Err(_) => {
                        return Err(SinkError::Connection {
                            address,
                            reason: format!("no answer within {:?}", self.options.connect_timeout),
                        });
                    }
                    Ok(Err(mysql_async::Error::Server(server))) => {
                        return Err(SinkError::Statement {
                            what: format!("logging in to {address}"),
                            code: server.code,
                            message: server.message,
                            sql: String::new(),
                        });
                    }
                    Ok(Err(error)) => {
                        if let Some(reason) = self
                            .options
                            .tls
                            .as_ref()
                            .and_then(|tls| tls_connect_error(tls, &error))
                        {
                            return Err(SinkError::Tls { address, reason });
                        }
                        return Err(SinkError::Connection {
                            address,
                            reason: error.to_string(),
                        });
                    }
                    Ok(Ok(connection)) => connection,
                };
            let mut session = format!(
                "SET SESSION time_zone = '+00:00', SESSION sql_mode = '{DEFAULT_SQL_MODE}', \
                 SESSION foreign_key_checks = 0"
            );
            for (name, value) in &self.options.session_variables {
                session.push_str(&format!(", SESSION {name} = {value}"));
            }
            connection
                .query_drop(&session)
                .await
                .map_err(|error| client_error("setting the session", &session, error))?;
            if let (Some(name), Some(abandoned)) = (&self.options.lock, self.abandoned.take()) {
                // The session of a connection this sink gave up on may still hold the lock: a
                // half-open connection's session waits for a client that is gone (for the
                // server's `wait_timeout`, 8 hours by default). Only that session, found as the
                // lock's holder, is killed; then GET_LOCK waits until it has ended, so its
                // transaction is committed or rolled back before anything is read.
                let mut sql = String::from("SELECT IS_USED_LOCK(");
                crate::literal::write_text(&mut sql, name);
                sql.push(')');
                let holder: Option<Option<u32>> =
                    connection.query_first(&sql).await.map_err(|error| {
                        client_error("finding the holder of the worker's lock", &sql, error)
                    })?;
                if holder.flatten() == Some(abandoned) {
                    // 1094: it ended meanwhile.
                    let _ = connection
                        .query_drop(format!("KILL CONNECTION {abandoned}"))
                        .await;
                }
            }
            if let Some(name) = &self.options.lock {
                let mut sql = String::from("SELECT GET_LOCK(");
                crate::literal::write_text(&mut sql, name);
                sql.push_str(&format!(", {})", self.options.lock_wait.as_secs()));
                let taken: Option<Option<i64>> = connection
                    .query_first(&sql)
                    .await
                    .map_err(|error| client_error("taking the worker's lock", &sql, error))?;
                if taken.flatten() != Some(1) {
                    return Err(SinkError::Locked {
                        name: name.clone(),
                        seconds: self.options.lock_wait.as_secs(),
                    });
                }
            }
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| SinkError::Connection {
                address: self.options.address(),
                reason: "no connection".into(),
            })
    }

    /// `table`'s downstream definition: the one `given` (from the batch), or read once.
    async fn target(
        &mut self,
        table: &TableRef,
        given: &impl Fn(&TableRef) -> Option<Arc<TableSchema>>,
    ) -> Result<Arc<TableSchema>, SinkError> {
        if let Some(target) = given(table) {
            return Ok(target);
        }
        if let Some(target) = self.targets.get(table) {
            return Ok(target.clone());
        }
        let connection = self.connection().await?;
        let schema = load_table_schema(connection, table)
            .await
            .map_err(|error| introspection_error(table, error))?
            .ok_or_else(|| SinkError::Schema {
                table: table.to_string(),
                reason: "the table does not exist downstream".into(),
            })?;
        let target = Arc::new(schema);
        self.targets.insert(table.clone(), target.clone());
        Ok(target)
    }

    /// Builds the statements of a batch into `self.statements`; `idempotent(i)` says whether
    /// change `i` must be written idempotently, `given` the downstream definitions the batch
    /// carries.
    async fn plan(
        &mut self,
        changes: &[RowChange],
        idempotent: impl Fn(usize) -> bool,
        given: &impl Fn(&TableRef) -> Option<Arc<TableSchema>>,
    ) -> Result<(), SinkError> {
        let mut statements = std::mem::take(&mut self.statements);
        statements.clear();
        let mut index = 0;
        while index < changes.len() {
            let change = &changes[index];
            let target = self.target(change.table(), given).await?;
            let layout = change.schema();
            let identity = identity(&target, layout);
            let keyed = !identity.is_empty();
            let identity_kept = |change: &RowChange| match change.kind() {
                RowChangeKind::Update { before, after } => {
                    keyed
                        && identity
                            .iter()
                            .all(|column| before.get(*column) == after.get(*column))
                }
                _ => false,
            };
            // What statement a change becomes, if it can share a multi-row statement.
            #[derive(PartialEq)]
            enum Run {
                Insert(InsertVerb),
                Delete,
            }
            let run_of = |position: usize| -> Option<Run> {
                let change = &changes[position];
                let idempotent = idempotent(position);
                match change.kind() {
                    RowChangeKind::Insert { .. } if idempotent => {
                        Some(Run::Insert(InsertVerb::Replace))
                    }
                    RowChangeKind::Insert { .. } => Some(Run::Insert(InsertVerb::Insert)),
                    RowChangeKind::Update { .. } if identity_kept(change) => {
                        Some(Run::Insert(if idempotent {
                            InsertVerb::Replace
                        } else {
                            InsertVerb::Upsert
                        }))
                    }
                    RowChangeKind::Delete { .. } if keyed => Some(Run::Delete),
                    _ => None,
                }
            };
            let Some(run) = run_of(index) else {
                let idempotent = idempotent(index);
                // One statement (or two in safe mode) for this change alone.
                let mut sql = String::new();
                match change.kind() {
                    RowChangeKind::Update { before, after } => {
                        if idempotent && keyed {
                            write_delete(&mut sql, change.table(), layout, &identity, &[before]);
                            statements.push(std::mem::take(&mut sql));
                            write_insert(
                                &mut sql,
                                InsertVerb::Replace,
                                change.table(),
                                layout,
                                [after],
                            );
                        } else {
                            write_update(
                                &mut sql,
                                change.table(),
                                layout,
                                &identity,
                                before,
                                after,
                            );
                        }
                    }
                    RowChangeKind::Delete { before } => {
                        write_delete(&mut sql, change.table(), layout, &identity, &[before]);
                    }
                    RowChangeKind::Insert { after } => {
                        write_insert(
                            &mut sql,
                            InsertVerb::Insert,
                            change.table(),
                            layout,
                            [after],
                        );
                    }
                }
                statements.push(sql);
                index += 1;
                continue;
            };
            // The run: following changes of the same table, layout and statement.
            let mut end = index + 1;
            let mut bytes = change
                .after()
                .or(change.before())
                .map_or(0, |row| row.approximate_size());
            while end < changes.len()
                && end - index < self.options.max_rows_per_statement
                && bytes < self.options.max_statement_bytes
            {
                let next = &changes[end];
                let same_layout = next.table() == change.table()
                    && (Arc::ptr_eq(next.schema(), layout)
                        || next.schema().columns() == layout.columns());
                if !same_layout || run_of(end).as_ref() != Some(&run) {
                    break;
                }
                bytes += next
                    .after()
                    .or(next.before())
                    .map_or(0, |row| row.approximate_size());
                end += 1;
            }
            let mut sql = String::with_capacity(bytes * 2 + 128);
            let run_changes = &changes[index..end];
            match run {
                Run::Insert(verb) => write_insert(
                    &mut sql,
                    verb,
                    change.table(),
                    layout,
                    run_changes.iter().filter_map(RowChange::after),
                ),
                Run::Delete => {
                    let rows: Vec<_> = run_changes.iter().filter_map(RowChange::before).collect();
                    write_delete(&mut sql, change.table(), layout, &identity, &rows);
                }
            }
            statements.push(sql);
            index = end;
        }
        self.statements = statements;
        Ok(())
    }

    /// Runs `self.statements` as one transaction. The statements travel packed into as few
    /// multi-statement packets as `max_statement_bytes` allows (one round trip for a usual
    /// batch, instead of one per statement). When the server refuses one, the transaction is
    /// rolled back and run again one statement at a time, so that the error names its statement
    /// (and a transient refusal, such as a deadlock, may pass the second time).
    async fn execute_batch(&mut self, what: &str) -> Result<(), SinkError> {
        let statements = std::mem::take(&mut self.statements);
        let mut packet = std::mem::take(&mut self.packet);
        let limit = self.options.max_statement_bytes;
        let read_timeout = self.options.read_timeout;
        let connection = self.connection().await?;
        let mut result = Ok(());
        packet.clear();
        packet.push_str("START TRANSACTION");
        for sql in statements.iter().map(String::as_str).chain(["COMMIT"]) {
            if !packet.is_empty() && packet.len() + sql.len() + 1 > limit {
                if let Err(error) = query_within(connection, &packet, read_timeout).await {
                    result = Err(error);
                    break;
                }
                packet.clear();
            }
            if !packet.is_empty() {
                packet.push(';');
            }
            packet.push_str(sql);
        }
        if result.is_ok() {
            result = query_within(connection, &packet, read_timeout).await;
        }
        let result = match result {
            Ok(()) => Ok(()),
            Err(mysql_async::Error::Server(_)) => {
                let _ = query_within(connection, "ROLLBACK", read_timeout).await;
                execute_one_by_one(connection, what, &statements, read_timeout).await
            }
            Err(error) => {
                // A dead connection (timed out, reset) cannot roll back: it is dropped
                // (`settle`), and the server rolls back when it sees the session end.
                Err(client_error(what, "the transaction", error))
            }
        };
        self.statements = statements;
        self.packet = packet;
        result
    }

    fn settle<T>(&mut self, result: Result<T, SinkError>) -> Result<T, SinkError> {
        let address = self.options.address();
        result.map_err(|error| {
            if is_connection_error(&error)
                && let Some(lost) = self.connection.take()
            {
                self.abandoned = Some(lost.id());
            }
            match error {
                SinkError::Connection { reason, .. } => SinkError::Connection { address, reason },
                other => other,
            }
        })
    }
}

impl MySqlSink {
    /// Applies `changes` and then the `also` statements (a checkpoint row) in one transaction:
    /// all or nothing.
    pub async fn apply_changes_with(
        &mut self,
        changes: &[RowChange],
        mode: ApplyMode,
        also: &[String],
    ) -> Result<(), SinkError> {
        let idempotent = mode == ApplyMode::Idempotent;
        self.apply(changes, |_| idempotent, also, &|_| None).await
    }

    /// Like [`MySqlSink::apply_changes_with`], with each change's mode: `idempotent[i]` says
    /// whether change `i` must be written idempotently (as a compactor marks them).
    pub async fn apply_marked_changes_with(
        &mut self,
        changes: &[RowChange],
        idempotent: &[bool],
        also: &[String],
    ) -> Result<(), SinkError> {
        self.apply(
            changes,
            |index| idempotent.get(index).copied().unwrap_or(true),
            also,
            &|_| None,
        )
        .await
    }

    async fn apply(
        &mut self,
        changes: &[RowChange],
        idempotent: impl Fn(usize) -> bool,
        also: &[String],
        given: &impl Fn(&TableRef) -> Option<Arc<TableSchema>>,
    ) -> Result<(), SinkError> {
        if changes.is_empty() && also.is_empty() {
            return Ok(());
        }
        let planned = self.plan(changes, idempotent, given).await;
        self.settle(planned)?;
        self.statements.extend(also.iter().cloned());
        let what = match changes.first() {
            Some(first) => format!(
                "applying {} change(s) starting with {}",
                changes.len(),
                first.table()
            ),
            None => "writing a checkpoint".to_owned(),
        };
        let executed = self.execute_batch(&what).await;
        self.settle(executed)
    }

    /// The downstream structure of `table` as it is now (not cached); `None` when it does not
    /// exist.
    pub async fn table_schema(
        &mut self,
        table: &TableRef,
    ) -> Result<Option<TableSchema>, SinkError> {
        let result = async {
            let connection = self.connection().await?;
            load_table_schema(connection, table)
                .await
                .map_err(|error| introspection_error(table, error))
        }
        .await;
        self.settle(result)
    }

    /// Runs one statement outside any batch (creating meta tables, DDL).
    pub async fn execute(&mut self, sql: &str) -> Result<(), SinkError> {
        let result = async {
            let connection = self.connection().await?;
            connection
                .query_drop(sql)
                .await
                .map_err(|error| client_error("a statement", sql, error))
        }
        .await;
        self.settle(result)
    }

    /// Runs a query and returns its rows as text (`None` for NULL).
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, SinkError> {
        let result = async {
            let connection = self.connection().await?;
            let rows: Vec<mysql_async::Row> = connection
                .query(sql)
                .await
                .map_err(|error| client_error("a query", sql, error))?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    row.unwrap()
                        .into_iter()
                        .map(|value| match value {
                            mysql_async::Value::NULL => None,
                            mysql_async::Value::Bytes(bytes) => {
                                Some(String::from_utf8_lossy(&bytes).into_owned())
                            }
                            other => Some(other.as_sql(true)),
                        })
                        .collect()
                })
                .collect())
        }
        .await;
        self.settle(result)
    }
}

impl Sink for MySqlSink {
    type Error = SinkError;

    /// One transaction: the batch's statements, then its worker checkpoint row.
    ///
    /// A batch whose connection broke after its statements left (a timeout, a reset) may have
    /// committed. When the same batch is applied again, the sink first reads the worker's
    /// stored row: if it already carries this batch's checkpoint, the batch committed and is
    /// not applied twice. The read runs on a new connection, which first takes the worker's
    /// lock ([`MySqlSinkOptions::lock`], as the syncer sets it): the lost session has ended by
    /// then, so its commit, if any, is visible.
    async fn apply_batch(&mut self, batch: &ChangeBatch) -> Result<(), SinkError> {
        let in_doubt = self.in_doubt.take();
        let also = match batch.checkpoint() {
            Some(checkpoint) => {
                if in_doubt.as_ref() == Some(checkpoint) && self.committed(checkpoint).await? {
                    return Ok(());
                }
                vec![self.scope()?.tables.worker_upsert(checkpoint)]
            }
            None => Vec::new(),
        };
        let applied = self
            .apply(
                batch.changes(),
                |index| batch.is_idempotent(index),
                &also,
                &|table| batch.table(table).cloned(),
            )
            .await;
        if let Err(error) = &applied
            && is_connection_error(error)
        {
            self.in_doubt = batch.checkpoint().cloned();
        }
        applied
    }

    async fn describe_table(&mut self, table: &TableRef) -> Result<SinkTable, SinkError> {
        Ok(match self.table_schema(table).await? {
            Some(schema) => SinkTable::Defined(schema),
            None => SinkTable::Missing,
        })
    }
}

impl MySqlSink {
    /// Whether the stored row of `checkpoint`'s worker is at `checkpoint` (its batch
    /// committed). An error keeps the doubt for the next try.
    async fn committed(&mut self, checkpoint: &WorkerCheckpoint) -> Result<bool, SinkError> {
        let stored = match CheckpointStore::load(self).await {
            Ok(stored) => stored,
            Err(error) => {
                self.in_doubt = Some(checkpoint.clone());
                return Err(error);
            }
        };
        Ok(stored.workers.iter().any(|stored| {
            stored.worker == checkpoint.worker
                && stored.location.position == checkpoint.location.position
                && stored.location.suffix == checkpoint.location.suffix
                && stored.row == checkpoint.row
        }))
    }
}

impl CheckpointStore for MySqlSink {
    type Error = SinkError;

    async fn load(&mut self) -> Result<SourceCheckpoints, SinkError> {
        let scope = self.scope()?;
        scope.tables.load(self, &scope.source, scope.flavor).await
    }

    /// The global row and its table rows in one transaction.
    async fn save(&mut self, checkpoint: &GlobalCheckpoint) -> Result<(), SinkError> {
        let statements = self.scope()?.tables.save_statements(checkpoint)?;
        self.apply(&[], |_| false, &statements, &|_| None).await
    }
}
