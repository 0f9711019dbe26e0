//! TIMESTAMP values keep their instants whatever `skip-tz-utc` and the task's `timezone` say,
//! through dump files and the direct stream, with the upstream (+05:00) and the downstream
//! (-03:00) in different time zones; TIMESTAMP defaults too. The zone itself takes effect: a
//! `where` comparing a TIMESTAMP with a literal selects the rows that zone means. A named zone
//! with a daylight-saving fall-back keeps both instants of the repeated hour.

use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::support::{rows_in_zone, run_task, task_text};

/// Rows written in UTC (and one in the upstream's zone). Rows 5 and 7 are the two instants
/// that both read `2023-10-29 02:30:00` in Europe/Berlin.
const DATA: &str = "SET SESSION sql_mode = '';
CREATE DATABASE tz;
CREATE TABLE tz.t (id INT PRIMARY KEY, ts TIMESTAMP NULL DEFAULT NULL,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL, dt DATETIME NULL,
  born TIMESTAMP NOT NULL DEFAULT '2020-06-01 12:00:00');
SET SESSION time_zone = '+00:00';
INSERT INTO tz.t (id, ts, ts6, dt) VALUES
  (1, '2020-01-01 00:00:00', '2020-01-01 00:00:00.123456', '2020-01-01 00:00:00'),
  (2, '1970-01-01 00:00:01', '2038-01-19 03:14:07.999999', '1999-12-31 23:59:59'),
  (3, '0000-00-00 00:00:00', NULL, NULL),
  (4, NULL, '2023-10-29 00:30:00', NULL),
  (5, '2023-10-29 01:30:00', '2023-03-26 00:59:59.5', NULL),
  (7, '2023-10-29 00:30:00', '2023-10-29 01:30:00.000001', NULL);
SET SESSION time_zone = '+05:00';
INSERT INTO tz.t (id, ts) VALUES (6, '2024-02-29 23:30:00');";

/// Europe/Berlin for 2023 only, as `mariadb-tzinfo-to-sql` would write it: CET, then CEST
/// from 2023-03-26 01:00 UTC to 2023-10-29 01:00 UTC.
const BERLIN: &str =
    "INSERT INTO mysql.time_zone (Time_zone_id, Use_leap_seconds) VALUES (90, 'N');
INSERT INTO mysql.time_zone_name (Name, Time_zone_id) VALUES ('Europe/Berlin', 90);
INSERT INTO mysql.time_zone_transition_type
  (Time_zone_id, Transition_type_id, `Offset`, Is_DST, Abbreviation)
  VALUES (90, 0, 3600, 0, 'CET'), (90, 1, 7200, 1, 'CEST');
INSERT INTO mysql.time_zone_transition (Time_zone_id, Transition_time, Transition_type_id)
  VALUES (90, 1679792400, 1), (90, 1698541200, 0)";

/// The instants of every row (zone-independent) and the `born` default as UTC text.
async fn instants(server: &MariaDb) -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
    let rows = rows_in_zone(
        server,
        "+00:00",
        "SELECT id, UNIX_TIMESTAMP(ts), UNIX_TIMESTAMP(ts6), dt, UNIX_TIMESTAMP(born) \
         FROM tz.t ORDER BY id",
    )
    .await;
    let default = rows_in_zone(
        server,
        "+00:00",
        "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'tz' AND TABLE_NAME = 't' AND COLUMN_NAME = 'born'",
    )
    .await;
    (rows, default)
}

fn start(
    name: &str,
    zone: &str,
) -> impl std::future::Future<Output = Result<MariaDb, dm_testkit::TestkitError>> {
    MariaDb::start_with(MariaDbOptions::named(name).arg(format!("--default-time-zone={zone}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_keep_their_instants_for_every_setting_and_path() {
    let (upstream, downstream) = tokio::join!(
        start("tz-upstream", "+05:00"),
        start("tz-downstream", "-03:00")
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(DATA).await.expect("data");
    upstream.execute(BERLIN).await.expect("time zone tables");
    let expected = instants(&upstream).await;
    assert_eq!(expected.0.len(), 7);
    let directory = tempfile::tempdir().expect("directory");
    for (task, top, skip_tz_utc, direct) in [
        ("tz_files_upstream", "", "true", "false"),
        ("tz_files_utc", "timezone: \"+04:00\"", "false", "false"),
        ("tz_stream_zone", "timezone: \"+04:00\"", "true", "true"),
        ("tz_stream_utc", "", "false", "true"),
        (
            "tz_files_berlin",
            "timezone: \"Europe/Berlin\"",
            "true",
            "false",
        ),
        (
            "tz_stream_berlin",
            "timezone: \"Europe/Berlin\"",
            "true",
            "true",
        ),
    ] {
        downstream
            .execute("DROP DATABASE IF EXISTS tz")
            .await
            .expect("clean");
        let text = task_text(
            task,
            &downstream,
            directory.path(),
            top,
            &[&format!("skip-tz-utc: {skip_tz_utc}")],
            &[&format!("direct: {direct}")],
        );
        let (_, result) = run_task(&text, &upstream, "root").await;
        result.unwrap_or_else(|error| panic!("{task}: {error}"));
        assert_eq!(instants(&downstream).await, expected, "{task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dump_time_zone_gives_where_its_meaning() {
    let (upstream, downstream) = tokio::join!(
        start("tz-upstream", "+05:00"),
        start("tz-downstream", "-03:00")
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(DATA).await.expect("data");
    let directory = tempfile::tempdir().expect("directory");
    let condition = "ts >= '2020-01-01 05:00:00'";
    let mut selected = Vec::new();
    // skip-tz-utc: false reads the literal in UTC; the task's timezone, in +05:00; neither,
    // in the upstream's own zone (+05:00 too).
    for (task, top, skip_tz_utc, zone) in [
        ("where_utc", "timezone: \"+05:00\"", "false", "+00:00"),
        ("where_zone", "timezone: \"+05:00\"", "true", "+05:00"),
        ("where_upstream", "", "true", "+05:00"),
        ("where_minus", "timezone: \"-08:00\"", "true", "-08:00"),
    ] {
        downstream
            .execute("DROP DATABASE IF EXISTS tz")
            .await
            .expect("clean");
        let text = task_text(
            task,
            &downstream,
            directory.path(),
            top,
            &[
                &format!("skip-tz-utc: {skip_tz_utc}"),
                &format!("where: \"{condition}\""),
            ],
            &[],
        );
        let (_, result) = run_task(&text, &upstream, "root").await;
        result.unwrap_or_else(|error| panic!("{task}: {error}"));
        let wanted = rows_in_zone(
            &upstream,
            zone,
            &format!("SELECT id FROM tz.t WHERE {condition} ORDER BY id"),
        )
        .await;
        let loaded = rows_in_zone(&downstream, "+00:00", "SELECT id FROM tz.t ORDER BY id").await;
        assert_eq!(loaded, wanted, "{task}");
        assert!(!loaded.is_empty() && loaded.len() < 7, "{task}: {loaded:?}");
        selected.push(loaded);
    }
    assert_ne!(
        selected[0], selected[1],
        "UTC and +05:00 select different rows"
    );
}
