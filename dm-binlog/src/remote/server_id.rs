//! This replica's server id: set by the user, or chosen here the way DM chooses one.
//!
//! ```text
//! source.yaml server-id: N  -> ServerIdChoice::Fixed(N)      used as is; the upstream or another
//!                                                             replica holding N: ServerIdInUse (definite)
//! no server-id              -> ServerIdChoice::Automatic(id) choose_server_id: a random id in
//!                                                             [u32::MAX / 10, u32::MAX / 10 + 100000)
//!                                                             that no replica and not the upstream uses
//! connect, Automatic(id), id taken (or 0)  -> a new free id from the same listing, kept by the
//!                                             caller (BinlogSource::open stores it in the options)
//! dump ended by "a replica with the same server_uuid/server_id": ServerIdInUse, transient when
//!                                             the id is automatic (the reconnect replaces it)
//! ```
//!
//! The listing is `SHOW SLAVE HOSTS` (`SHOW REPLICAS` where the old name is gone, MySQL 8.4). A
//! user without the privilege to list replicas skips the check, as DM does: the id is then only
//! checked against the upstream's own. A replacement needs the listing to show the replica that
//! took the id; one the upstream does not list is not seen, and the id is kept.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use super::RemoteOptions;
use super::connection::Connection;
use crate::error::BinlogError;

/// The first id of DM's range for automatic server ids (`math.MaxUint32 / 10`).
pub const AUTOMATIC_SERVER_ID_BASE: u32 = u32::MAX / 10;
/// How many ids DM's automatic range holds.
pub const AUTOMATIC_SERVER_ID_COUNT: u32 = 100_000;

/// How this replica's server id was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerIdChoice {
    /// Set by the user (source.yaml `server-id`): kept, and reported
    /// ([`BinlogError::ServerIdInUse`], definite) when the upstream or another replica uses it.
    Fixed(u32),
    /// Chosen here because the user set none (DM's behaviour): the id in use, 0 until a
    /// connection chose one. Whenever the upstream shows it taken, a free one replaces it.
    Automatic(u32),
}

impl ServerIdChoice {
    /// The id itself (0 for an automatic id not chosen yet).
    pub fn id(self) -> u32 {
        match self {
            ServerIdChoice::Fixed(id) | ServerIdChoice::Automatic(id) => id,
        }
    }

    /// Whether it was chosen here (and may be replaced).
    pub fn is_automatic(self) -> bool {
        matches!(self, ServerIdChoice::Automatic(_))
    }
}

/// Picks a random server id in DM's automatic range that neither the upstream nor any of its
/// replicas uses (connects once, reads `@@server_id` and the replica listing).
pub async fn choose_server_id(options: &RemoteOptions) -> Result<u32, BinlogError> {
    let mut connection = options.open_connection().await?;
    let result = async {
        let upstream = upstream_server_id(&mut connection, options).await?;
        let mut taken: HashSet<u32> = registered_replicas(&mut connection)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|replica| replica.server_id)
            .collect();
        taken.insert(upstream);
        pick_free(options, &taken)
    }
    .await;
    connection.quit().await;
    result
}

/// One row of the replica listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RegisteredReplica {
    pub(crate) server_id: u32,
    /// The name it registered with (`report_host`; our `replica_name`).
    pub(crate) host: String,
    pub(crate) port: String,
}

/// The upstream's `@@global.server_id`.
pub(crate) async fn upstream_server_id(
    connection: &mut Connection,
    options: &RemoteOptions,
) -> Result<u32, BinlogError> {
    let text = connection
        .query("SELECT @@global.server_id")
        .await?
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .unwrap_or_default();
    text.parse().map_err(|_| BinlogError::Unsupported {
        address: options.address(),
        reason: format!("the upstream reports server_id {text:?}"),
    })
}

/// The replicas registered with the upstream; `None` when this user may not list them.
pub(crate) async fn registered_replicas(
    connection: &mut Connection,
) -> Result<Option<Vec<RegisteredReplica>>, BinlogError> {
    let rows = match connection.query("SHOW SLAVE HOSTS").await {
        Ok(rows) => rows,
        // MySQL 8.4 removed the old name.
        Err(BinlogError::Server { error, .. }) if error.code == 1064 => {
            match connection.query("SHOW REPLICAS").await {
                Ok(rows) => rows,
                Err(BinlogError::Server { .. }) => return Ok(None),
                Err(other) => return Err(other),
            }
        }
        Err(BinlogError::Server { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    Ok(Some(
        rows.into_iter()
            .filter_map(|row| {
                let server_id = row.first().cloned().flatten()?.parse().ok()?;
                Some(RegisteredReplica {
                    server_id,
                    host: row.get(1).cloned().flatten().unwrap_or_default(),
                    port: row.get(2).cloned().flatten().unwrap_or_default(),
                })
            })
            .collect(),
    ))
}

/// The id to register with: `choice`'s when it is free; for an automatic id that is taken (or
/// not chosen yet), a free one. Our own earlier registrations (same `replica_name`, e.g. a
/// connection being torn down) do not count as taken.
pub(crate) fn resolve(
    options: &RemoteOptions,
    upstream: u32,
    replicas: Option<&[RegisteredReplica]>,
) -> Result<ServerIdChoice, BinlogError> {
    let others = || {
        replicas
            .unwrap_or_default()
            .iter()
            .filter(|replica| replica.host != options.replica_name)
    };
    let holder = |id: u32| {
        if id == upstream {
            return Some("the upstream server itself".to_owned());
        }
        others()
            .find(|replica| replica.server_id == id)
            .map(|replica| {
                format!(
                    "the replica registered as {}:{}",
                    replica.host, replica.port
                )
            })
    };
    match options.server_id {
        ServerIdChoice::Fixed(id) => match holder(id) {
            Some(holder) => Err(BinlogError::ServerIdInUse {
                address: options.address(),
                server_id: id,
                holder,
                automatic: false,
            }),
            None => Ok(ServerIdChoice::Fixed(id)),
        },
        ServerIdChoice::Automatic(id) if id != 0 && holder(id).is_none() => {
            Ok(ServerIdChoice::Automatic(id))
        }
        ServerIdChoice::Automatic(_) => {
            // Every listed id is taken here, our own earlier ones too: a new id must differ.
            let mut taken: HashSet<u32> = replicas
                .unwrap_or_default()
                .iter()
                .map(|replica| replica.server_id)
                .collect();
            taken.insert(upstream);
            taken.insert(options.server_id.id());
            pick_free(options, &taken).map(ServerIdChoice::Automatic)
        }
    }
}

fn pick_free(options: &RemoteOptions, taken: &HashSet<u32>) -> Result<u32, BinlogError> {
    free_in_range(taken, random()).ok_or_else(|| BinlogError::Unsupported {
        address: options.address(),
        reason: format!(
            "every server-id of the automatic range [{AUTOMATIC_SERVER_ID_BASE}, {}) is used by a replica of the upstream: set server-id in the source configuration",
            u64::from(AUTOMATIC_SERVER_ID_BASE) + u64::from(AUTOMATIC_SERVER_ID_COUNT)
        ),
    })
}

/// The first id not in `taken`, scanning DM's range from a random offset (so a free id is
/// found whenever one exists, unlike a bounded number of random draws).
fn free_in_range(taken: &HashSet<u32>, random: u64) -> Option<u32> {
    let offset = (random % u64::from(AUTOMATIC_SERVER_ID_COUNT)) as u32;
    (0..AUTOMATIC_SERVER_ID_COUNT)
        .map(|step| AUTOMATIC_SERVER_ID_BASE + (offset + step) % AUTOMATIC_SERVER_ID_COUNT)
        .find(|id| !taken.contains(id))
}

/// A random number: the standard library's randomly keyed hasher over the time and a counter
/// (no random-number crate for one draw per connection).
fn random() -> u64 {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    std::collections::hash_map::RandomState::new()
        .hash_one((nanos, DRAWS.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(choice: ServerIdChoice) -> RemoteOptions {
        let mut options = RemoteOptions::new("127.0.0.1", 3306, "u", "p", 1);
        options.server_id = choice;
        options.replica_name = "me".into();
        options
    }

    fn replica(server_id: u32, host: &str) -> RegisteredReplica {
        RegisteredReplica {
            server_id,
            host: host.into(),
            port: "3306".into(),
        }
    }

    #[test]
    fn a_free_id_is_found_whenever_one_exists() {
        let free = AUTOMATIC_SERVER_ID_BASE + 31_337;
        let taken: HashSet<u32> = (0..AUTOMATIC_SERVER_ID_COUNT)
            .map(|step| AUTOMATIC_SERVER_ID_BASE + step)
            .filter(|id| *id != free)
            .collect();
        for random in [0, 1, 31_336, 31_338, 99_999, u64::MAX] {
            assert_eq!(free_in_range(&taken, random), Some(free));
        }
        let all: HashSet<u32> = taken.iter().copied().chain([free]).collect();
        assert_eq!(free_in_range(&all, 7), None);
    }

    #[test]
    fn automatic_ids_are_in_dms_range_and_vary() {
        let empty = HashSet::new();
        let ids: HashSet<u32> = (0..50)
            .map(|_| free_in_range(&empty, random()).expect("free"))
            .collect();
        assert!(ids.len() > 40, "{ids:?}");
        assert!(ids.iter().all(|id| {
            (AUTOMATIC_SERVER_ID_BASE..AUTOMATIC_SERVER_ID_BASE + AUTOMATIC_SERVER_ID_COUNT)
                .contains(id)
        }));
    }

    #[test]
    fn a_fixed_id_is_kept_or_refused_and_an_automatic_one_replaced() {
        let replicas = [replica(7, "other"), replica(8, "me")];
        let fixed = |id| resolve(&options(ServerIdChoice::Fixed(id)), 1, Some(&replicas));
        assert_eq!(fixed(9).expect("free"), ServerIdChoice::Fixed(9));
        // Our own earlier registration is not a collision.
        assert_eq!(fixed(8).expect("ours"), ServerIdChoice::Fixed(8));
        let error = fixed(7).expect_err("taken");
        assert!(error.to_string().contains("other:3306"), "{error}");
        assert!(matches!(
            error,
            BinlogError::ServerIdInUse {
                automatic: false,
                ..
            }
        ));
        let error = fixed(1).expect_err("the upstream's");
        assert!(
            error.to_string().contains("the upstream server itself"),
            "{error}"
        );

        let automatic = |id| resolve(&options(ServerIdChoice::Automatic(id)), 1, Some(&replicas));
        assert_eq!(automatic(9).expect("free"), ServerIdChoice::Automatic(9));
        for taken in [0, 1, 7] {
            let ServerIdChoice::Automatic(new) = automatic(taken).expect("replaced") else {
                panic!("an automatic id stays automatic");
            };
            assert!(
                (AUTOMATIC_SERVER_ID_BASE..AUTOMATIC_SERVER_ID_BASE + AUTOMATIC_SERVER_ID_COUNT)
                    .contains(&new),
                "{new}"
            );
        }
        // Without the privilege to list replicas, only the upstream's id is known.
        assert_eq!(
            resolve(&options(ServerIdChoice::Fixed(7)), 1, None).expect("unknown"),
            ServerIdChoice::Fixed(7)
        );
    }
}
