//! The key layout, in one place, as DM lays it out.
//!
//! Every user-given component (worker name, source id, task name, schema, table) is hex-encoded
//! and components are joined with `/`, so no name can contain the separator or collide with
//! another key: `/dm-worker/a/` + hex("worker-1") = `/dm-worker/a/776f726b65722d31`. Tools can
//! list a prefix and decode the parts with [`decode_component`]. The prefixes are DM's, so an
//! operator who knows DM's etcd layout reads this one the same way.

/// Election of the master leader: candidates put `<prefix><lease id in hex>`.
pub const MASTER_LEADER: &str = "/dm-master/leader/";
/// Worker registry: worker name → worker info.
pub const WORKER_REGISTRY: &str = "/dm-worker/r/";
/// Worker keepalive (leased): worker name → keepalive info.
pub const WORKER_KEEPALIVE: &str = "/dm-worker/a/";
/// Source configurations: source id → source config.
pub const SOURCE_CONFIG: &str = "/dm-master/v2/upstream/config/";
/// Current bindings: worker → bound source.
pub const BOUND_WORKER: &str = "/dm-master/bound-worker/";
/// Last bindings, kept for scheduling priority: worker → source.
pub const LAST_BOUND_WORKER: &str = "/dm-master/last-bound-worker/";
/// Relay assignment: worker → source it relays.
pub const RELAY_WORKER: &str = "/dm-master/relay-worker/";
/// Relay stage: source id → stage.
pub const RELAY_STAGE: &str = "/dm-master/v2/stage/relay/";
/// Subtask configurations: (source id, task) → subtask config.
pub const SUBTASK_CONFIG: &str = "/dm-master/upstream/subtask/";
/// Subtask stages: (source id, task) → stage.
pub const SUBTASK_STAGE: &str = "/dm-master/stage/subtask/";
/// Pessimistic shard DDL infos: (task, source) → info.
pub const SHARDDDL_PESSIMISM_INFO: &str = "/dm-master/shardddl-pessimism/info/";
/// Pessimistic shard DDL operations: (task, source) → operation.
pub const SHARDDDL_PESSIMISM_OPERATION: &str = "/dm-master/shardddl-pessimism/operation/";
/// Optimistic shard DDL infos: (task, source, schema, table) → info.
pub const SHARDDDL_OPTIMISM_INFO: &str = "/dm-master/shardddl-optimism/info/";
/// Optimistic shard DDL operations: (task, source, schema, table) → operation.
pub const SHARDDDL_OPTIMISM_OPERATION: &str = "/dm-master/shardddl-optimism/operation/";

/// Hex-encodes one component.
pub fn encode_component(component: &str) -> String {
    use std::fmt::Write;
    component.bytes().fold(
        String::with_capacity(component.len() * 2),
        |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        },
    )
}

/// Decodes one hex component; `None` when it is not valid hex of UTF-8 text.
pub fn decode_component(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(hex.get(index..index + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// `prefix` followed by the hex-encoded components joined with `/`.
pub fn key(prefix: &str, components: &[&str]) -> String {
    let encoded: Vec<String> = components
        .iter()
        .map(|part| encode_component(part))
        .collect();
    format!("{prefix}{}", encoded.join("/"))
}

/// The components of a key under `prefix`, decoded; `None` if it is not such a key.
pub fn components(prefix: &str, key: &str) -> Option<Vec<String>> {
    key.strip_prefix(prefix)?
        .split('/')
        .map(decode_component)
        .collect()
}

/// The keepalive key of a worker.
pub fn worker_keepalive(worker: &str) -> String {
    key(WORKER_KEEPALIVE, &[worker])
}

/// The subtask stage key of a task on a source.
pub fn subtask_stage(source: &str, task: &str) -> String {
    key(SUBTASK_STAGE, &[source, task])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_hex_and_round_trip() {
        assert_eq!(
            worker_keepalive("worker-1"),
            "/dm-worker/a/776f726b65722d31"
        );
        let stage = subtask_stage("mysql/replica", "täsk");
        assert!(!stage.trim_start_matches(SUBTASK_STAGE).contains("replica"));
        assert_eq!(
            components(SUBTASK_STAGE, &stage),
            Some(vec!["mysql/replica".to_owned(), "täsk".to_owned()])
        );
        assert_eq!(decode_component("zz"), None);
        assert_eq!(decode_component("abc"), None);
        assert_eq!(components(WORKER_REGISTRY, &stage), None);
    }
}
