//! Shared workloads: SQL that tests of several crates run on a live upstream, so that one
//! definition of "every type at its edge values" serves the sink, the syncer and the loader;
//! [`write_until`], a writer that goes on while a test does something else; and [`Sysbench`],
//! the one sysbench runner of the tests and benches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Database `d`: `types` (every MariaDB column type, a virtual generated column), `composite`
/// (two-column primary key), `unique_only` (a NOT NULL unique key, no primary key) and `keyless`.
pub const EVERY_TYPE_SCHEMA: &str = "CREATE DATABASE d;
CREATE TABLE d.types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT,
  miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, dbl DOUBLE, dec_wide DECIMAL(65,30), dec_money DECIMAL(10,2),
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(2), tm6 TIME(6), y YEAR,
  c CHAR(10), vc VARCHAR(300), txt TEXT, lat VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(10), bl LONGBLOB, e ENUM('a','b','c'), s SET('x','y','z'),
  b1 BIT(1), b64 BIT(64), j JSON, u UUID, ip INET6, g GEOMETRY,
  gen INT AS (i + 1) VIRTUAL
) DEFAULT CHARSET=utf8mb4;
CREATE TABLE d.composite (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b));
CREATE TABLE d.unique_only (id INT NOT NULL, code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY (code));
CREATE TABLE d.keyless (a INT, b VARCHAR(10));";

/// Writes to [`EVERY_TYPE_SCHEMA`]'s tables: edge values of every type (min, max, zero, NULL,
/// negative and fractional times, zero dates, multi-byte and control characters, binary),
/// updates that change keys, deletes, duplicate rows in the keyless table; ends with a binlog
/// rotation.
pub const EVERY_TYPE_WRITES: &str = "SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00';
INSERT INTO d.types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, f, dbl, dec_wide, dec_money,
  dt, dtm, ts, tm, tm6, y, c, vc, txt, lat, bn, vb, bl, e, s, b1, b64, j, u, ip, g) VALUES
 (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -3.25, -2.5e-300, '-99999999999999999999999999999999999.999999999999999999999999999999', '-12345678.90',
  '0000-00-00', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000', '-838:59:59.99', '-00:00:00.500000', 0,
  '', '', '', 'café', X'00000000', X'', X'', 'a', '', b'0', b'0', '[]', '00000000-0000-0000-0000-000000000000', '::', ST_GeomFromText('POINT(0 0)')),
 (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
  3.4028234e38, 1.7976931348623157e308, '99999999999999999999999999999999999.999999999999999999999999999999', '0.01',
  '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', '838:59:59.99', '838:59:59.000001', 2155,
  'abc', REPEAT('é', 300), 'it''s a \\\\ path\\twith\\ncontrols ✓', 'ÿ€', X'DEADBEEF', X'00FF', REPEAT(X'00FF27', 1000), 'c', 'x,y,z', b'1',
  b'1111111111111111111111111111111111111111111111111111111111111111', '{\"a\": [1, 2.5, \"x\"], \"b\": null}',
  '123e4567-e89b-12d3-a456-426614174000', '2001:db8::1', ST_GeomFromText('LINESTRING(0 0, 1 1, 2 5)')),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE d.types SET i = 7, tm = '-00:00:00.01', vc = 'changed' WHERE id = 3;
UPDATE d.types SET id = 30 WHERE id = 3;
DELETE FROM d.types WHERE id = 1;
INSERT INTO d.composite VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 3);
UPDATE d.composite SET v = v + 10;
UPDATE d.composite SET b = 'z' WHERE a = 1 AND b = 'x';
DELETE FROM d.composite WHERE a = 2;
INSERT INTO d.unique_only VALUES (1, 'one', 1), (2, 'two', 2);
UPDATE d.unique_only SET code = 'uno' WHERE id = 1;
DELETE FROM d.unique_only WHERE code = 'two';
INSERT INTO d.keyless VALUES (1, 'dup'), (1, 'dup'), (2, NULL), (3, 'x');
DELETE FROM d.keyless WHERE a = 1 LIMIT 1;
UPDATE d.keyless SET b = 'y' WHERE a = 3;
UPDATE d.keyless SET a = 20 WHERE a = 2;
FLUSH BINARY LOGS;";

/// Runs `statement(round)` for rounds 1, 2, ... on one connection to `opts` until `stop` is
/// set: a workload that goes on while a test dumps, stops, kills or restarts something. Returns
/// the rounds run; panics (failing the test) when a round fails.
pub fn write_until(
    opts: mysql_async::Opts,
    stop: Arc<AtomicBool>,
    statement: impl Fn(u64) -> String + Send + 'static,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        use mysql_async::prelude::Queryable;
        let mut connection = mysql_async::Conn::new(opts)
            .await
            .unwrap_or_else(|error| panic!("the writer connects: {error}"));
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            let sql = statement(round);
            if let Err(error) = connection.query_drop(&sql).await {
                panic!("writing round {round} ({sql}): {error}");
            }
        }
        let _ = connection.disconnect().await;
        round
    })
}

/// A sysbench workload against a dm-testkit server: 127.0.0.1, user root, database `sbtest`
/// (create it first), a fixed random seed so that runs repeat.
#[derive(Clone, Copy, Debug)]
pub struct Sysbench<'a> {
    /// `oltp_write_only`, `oltp_insert`, `oltp_read_write`...
    pub workload: &'a str,
    /// Tables (`sbtest1`..).
    pub tables: usize,
    /// Rows per table at `prepare`.
    pub table_size: usize,
}

impl Sysbench<'_> {
    /// Runs `phase` (`prepare`, `run`, `cleanup`) with `extra` options (`--threads=2`...);
    /// returns sysbench's report, or its error output.
    pub fn run(&self, port: u16, phase: &str, extra: &[&str]) -> Result<String, String> {
        let output = std::process::Command::new("sysbench")
            .arg(self.workload)
            .args([
                "--db-driver=mysql",
                "--mysql-host=127.0.0.1",
                "--mysql-user=root",
                "--mysql-db=sbtest",
                "--rand-seed=1",
            ])
            .arg(format!("--mysql-port={port}"))
            .arg(format!("--tables={}", self.tables))
            .arg(format!("--table-size={}", self.table_size))
            .args(extra)
            .arg(phase)
            .output()
            .map_err(|error| format!("sysbench (scripts/setup.sh installs it): {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "sysbench {} {phase}: {}",
                self.workload,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}
