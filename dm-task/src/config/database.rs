//! `target-database` of a task file and `from` of a source file: where to connect, as whom,
//! with which session variables; DM's encrypted passwords are decrypted when the file is read.
//!
//! ```text
//! target-database: {host, port, user, password, session, security, max-allowed-packet}
//!   password: DM ciphertext --password::password_of--> plain (when the file is read)
//!   session:  sent to every downstream connection, except time_zone (TIMESTAMPs travel in UTC)
//!   security: TLS, refused until issue #18 builds it (an empty section is fine)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::password::{PasswordText, decrypt_dm_password, password_of};
use super::{ConfigRefusal, ConfigWarning, null_as_default};

/// `target-database` (and `from` in a source file). Its `Debug` shows the password as `"***"`
/// ([`dm_core::Redacted`]).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseConfig {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password: plain, or a DM ciphertext (`dmctl encrypt`) decrypted when the file is read
    /// ([`super::password`]). A value that is not a string (`password: 123456`) is refused
    /// without being echoed: quote it.
    #[serde(default, deserialize_with = "password_text")]
    pub password: String,
    /// Session variables for every connection (values as the server reads `SET SESSION`).
    #[serde(default, deserialize_with = "session_values")]
    pub session: BTreeMap<String, String>,
    /// TLS settings: refused when any is set, until TLS is built (issue #18).
    #[serde(default)]
    pub security: Option<SecurityConfig>,
    /// Deprecated in DM (the driver reads the server's value); accepted with a warning.
    #[serde(default)]
    pub max_allowed_packet: Option<u64>,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DatabaseConfig {
            host,
            port,
            user,
            password,
            session,
            security,
            max_allowed_packet,
        } = self;
        formatter
            .debug_struct("DatabaseConfig")
            .field("host", host)
            .field("port", port)
            .field("user", user)
            .field("password", &dm_core::Redacted(password))
            .field("session", session)
            .field("security", security)
            .field("max_allowed_packet", max_allowed_packet)
            .finish()
    }
}

/// A password: a YAML string (or nothing). Anything else is refused without the value, which
/// serde's own message would quote: error messages end up in logs and statuses.
fn password_text<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<serde_norway::Value>::deserialize(deserializer)? {
        None | Some(serde_norway::Value::Null) => Ok(String::new()),
        Some(serde_norway::Value::String(text)) => Ok(text),
        Some(_) => Err(serde::de::Error::custom(
            "a password is a string: write it in quotes (the value is not shown)",
        )),
    }
}

/// DM's `security` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecurityConfig {
    /// CA certificate file.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_ca: String,
    /// Client certificate file.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_cert: String,
    /// Client key file.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_key: String,
    /// Accepted certificate common names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cert_allowed_cn: Vec<String>,
    /// CA certificate contents (OpenAPI form).
    #[serde(default)]
    pub ssl_ca_bytes: Option<serde_norway::Value>,
    /// Client key contents.
    #[serde(default)]
    pub ssl_key_bytes: Option<serde_norway::Value>,
    /// Client certificate contents.
    #[serde(default)]
    pub ssl_cert_bytes: Option<serde_norway::Value>,
    /// CA certificate, base64.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_ca_base64: String,
    /// Client key, base64.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_key_base64: String,
    /// Client certificate, base64.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_cert_base64: String,
}

fn value_is_empty(value: Option<&serde_norway::Value>) -> bool {
    match value {
        None | Some(serde_norway::Value::Null) => true,
        Some(serde_norway::Value::String(text)) => text.is_empty(),
        Some(serde_norway::Value::Sequence(items)) => items.is_empty(),
        Some(serde_norway::Value::Mapping(entries)) => entries.is_empty(),
        Some(_) => false,
    }
}

impl SecurityConfig {
    /// The keys that are set, as DM names them.
    pub fn keys_set(&self) -> Vec<&'static str> {
        let texts = [
            ("ssl-ca", &self.ssl_ca),
            ("ssl-cert", &self.ssl_cert),
            ("ssl-key", &self.ssl_key),
            ("ssl-ca-base64", &self.ssl_ca_base64),
            ("ssl-key-base64", &self.ssl_key_base64),
            ("ssl-cert-base64", &self.ssl_cert_base64),
        ];
        let mut keys: Vec<&'static str> = texts
            .into_iter()
            .filter(|(_, text)| !text.trim().is_empty())
            .map(|(key, _)| key)
            .collect();
        if !self.cert_allowed_cn.is_empty() {
            keys.push("cert-allowed-cn");
        }
        for (key, value) in [
            ("ssl-ca-bytes", &self.ssl_ca_bytes),
            ("ssl-key-bytes", &self.ssl_key_bytes),
            ("ssl-cert-bytes", &self.ssl_cert_bytes),
        ] {
            if !value_is_empty(value.as_ref()) {
                keys.push(key);
            }
        }
        keys
    }
}

/// Session variable values: YAML scalars of any kind (`1`, `off`, `"10"`, `true`) as text.
fn session_values<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let entries: Option<BTreeMap<String, serde_norway::Value>> = Option::deserialize(deserializer)?;
    entries
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_norway::Value::String(text) => text,
                serde_norway::Value::Number(number) => number.to_string(),
                serde_norway::Value::Bool(flag) => flag.to_string(),
                serde_norway::Value::Null => String::new(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "session variable `{name}` must be a single value, not {other:?}"
                    )));
                }
            };
            Ok((name, text))
        })
        .collect()
}

/// Whether a session value turns a boolean variable on, as MySQL reads it.
fn is_on(value: &str) -> bool {
    let value = value
        .trim()
        .trim_matches(|character| character == '\'' || character == '"');
    matches!(value.to_ascii_lowercase().as_str(), "1" | "on" | "true")
}

impl DatabaseConfig {
    /// The session variables to send on every connection to this database, as the sink sets
    /// them (`name`, value as SQL): each value as a quoted string, which the server converts as
    /// `SET SESSION` does. `time_zone` is left out: the sink writes TIMESTAMP values as UTC
    /// instants under `time_zone = '+00:00'`, so a session zone would shift them (DM formats
    /// them in the session's zone instead: the stored instants are the same).
    pub fn session_variables(&self) -> Vec<(String, String)> {
        self.session
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("time_zone"))
            .map(|(name, value)| (name.clone(), format!("'{}'", value.replace('\'', "''"))))
            .collect()
    }

    /// Decrypts a DM ciphertext password (the file is being read).
    pub(crate) fn decrypt_password(&mut self) {
        self.password = password_of(&self.password);
    }

    /// What this section asks for that is not built here; `key` names the section.
    pub(crate) fn refusals(&self, key: &str, is_target: bool, out: &mut Vec<ConfigRefusal>) {
        if let Some(security) = &self.security {
            let set = security.keys_set();
            if !set.is_empty() {
                out.push(ConfigRefusal::new(
                    format!("{key}.security"),
                    format!(
                        "TLS is not supported yet (it comes with issue #18); the section sets {}. \
                         Remove the section to connect without TLS (only on a trusted network), \
                         or wait for #18",
                        set.join(", ")
                    ),
                ));
            }
        }
        if is_target
            && let Some((name, value)) = self
                .session
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("foreign_key_checks"))
            && is_on(value)
        {
            out.push(ConfigRefusal::new(
                format!("{key}.session.{name}"),
                "DM's foreign-key mode (foreign_key_checks on downstream) is not supported: \
                 changes to parent and child tables are applied by parallel workers in any \
                 order, and checks would fail. Remove it (foreign keys are not checked while \
                 replicating, as in DM before v8.5.6)",
            ));
        }
    }

    /// What this section sets that has no effect here; `key` names the section.
    pub(crate) fn warnings(&self, key: &str, is_target: bool, out: &mut Vec<ConfigWarning>) {
        if self.max_allowed_packet.is_some() {
            out.push(ConfigWarning::new(
                format!("{key}.max-allowed-packet"),
                "deprecated in DM and ignored here too: the client takes the server's value",
            ));
        }
        if decrypt_dm_password(&self.password) == PasswordText::NotDecryptable {
            out.push(ConfigWarning::new(
                format!("{key}.password"),
                "has the shape of a DM ciphertext but does not decrypt with DM's built-in key \
                 (DM before v8.0), so it is used as the plain password, as DM does. A password \
                 encrypted with a custom key (DM's secret-key-path) cannot be read here: write \
                 the plain password, or one encrypted by `dmctl encrypt` of DM v7.x",
            ));
        }
        if is_target {
            for name in self.session.keys() {
                if name.to_ascii_lowercase().starts_with("tidb_") {
                    out.push(ConfigWarning::new(
                        format!("{key}.session.{name}"),
                        "a TiDB variable: sent as given, so a MySQL or MariaDB downstream \
                         refuses it (unknown system variable); remove it for those",
                    ));
                } else if name.eq_ignore_ascii_case("time_zone") {
                    out.push(ConfigWarning::new(
                        format!("{key}.session.{name}"),
                        "not sent: TIMESTAMP values are written as UTC instants under \
                         time_zone '+00:00', so the stored values are those of the upstream \
                         whatever this zone is",
                    ));
                }
            }
        } else if !self.session.is_empty() {
            out.push(ConfigWarning::new(
                format!("{key}.session"),
                "not applied: the binlog stream has no session variables, and the dump sets \
                 its own session (time_zone '+00:00')",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_shows_in_no_debug_output_or_error() {
        let database: DatabaseConfig =
            serde_norway::from_str("host: h\nport: 1\nuser: u\npassword: s3cr3t-Pa55\n")
                .expect("database");
        assert_eq!(database.password, "s3cr3t-Pa55");
        let shown = format!("{database:?} {database:#?}");
        assert!(!shown.contains("s3cr3t-Pa55"), "{shown}");
        assert!(shown.contains("password: \"***\""), "{shown}");
        let absent: DatabaseConfig =
            serde_norway::from_str("host: h\nport: 1\nuser: u\npassword:\n").expect("database");
        assert_eq!(absent.password, "");
        for text in ["password: 98765432123", "password: [s3cr3t-Pa55]"] {
            let error = serde_norway::from_str::<DatabaseConfig>(&format!("host: h\n{text}\n"))
                .expect_err("not a string");
            let message = format!("{error} {error:?}");
            assert!(message.contains("write it in quotes"), "{message}");
            assert!(
                !message.contains("98765432123") && !message.contains("s3cr3t"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_sink_leaves_out_the_session_time_zone() {
        let database: DatabaseConfig = serde_norway::from_str(
            "host: h\nport: 4000\nuser: u\nsession:\n  time_zone: '+08:00'\n  sql_mode: ''\n  tidb_retry_limit: 10\n  flag: off\n",
        )
        .expect("database");
        assert_eq!(database.session["tidb_retry_limit"], "10");
        let variables = database.session_variables();
        let names: Vec<&str> = variables.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["flag", "sql_mode", "tidb_retry_limit"]);
        assert_eq!(variables[0].1, "'off'", "values are sent as quoted strings");
        assert_eq!(variables[1].1, "''");
        let mut warnings = Vec::new();
        database.warnings("target-database", true, &mut warnings);
        let keys: Vec<&str> = warnings
            .iter()
            .map(|warning| warning.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "target-database.session.tidb_retry_limit",
                "target-database.session.time_zone"
            ]
        );
    }

    #[test]
    fn security_with_a_value_is_refused_and_an_empty_one_is_not() {
        let mut refusals = Vec::new();
        let empty: DatabaseConfig = serde_norway::from_str(
            "host: h\nport: 1\nuser: u\nsecurity:\n  ssl-ca: ''\n  cert-allowed-cn: []\n  ssl-ca-bytes: null\n",
        )
        .expect("empty security");
        empty.refusals("from", false, &mut refusals);
        assert!(refusals.is_empty(), "{refusals:?}");
        let set: DatabaseConfig =
            serde_norway::from_str("host: h\nport: 1\nuser: u\nsecurity:\n  ssl-ca: /ca.pem\n")
                .expect("security");
        set.refusals("from", false, &mut refusals);
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].key, "from.security");
        assert!(refusals[0].reason.contains("#18"), "{}", refusals[0]);
        assert!(refusals[0].reason.contains("ssl-ca"), "{}", refusals[0]);
    }
}
