//! `target-database` of a task file and `from` of a source file: where to connect, as whom,
//! with which session variables; DM's encrypted passwords are decrypted when the file is read.
//!
//! ```text
//! target-database: {host, port, user, password, session, security, max-allowed-packet}
//!   password: DM ciphertext --password::password_of--> plain (when the file is read)
//!   session:  sent to every downstream connection, except time_zone (TIMESTAMPs travel in UTC)
//!   security: TLS --SecurityConfig::tls--> dm_core::TlsConfig (every connection to this database)
//! ```
//!
//! `security` is honoured or refused, never dropped: a CA (`ssl-ca`, or its contents in
//! `ssl-ca-bytes` / `ssl-ca-base64`), optionally a client certificate and key, and `ssl-mode`
//! (`verify-identity`, the default and DM's behaviour: the certificate must name the host;
//! `verify-ca`: the CA is enough) give a [`dm_core::TlsConfig`]. Refused, each with its reason:
//! a section without a CA (DM then connects without TLS, a silent downgrade), a certificate
//! without its key or a key without its certificate, two forms of one file, `cert-allowed-cn`
//! (the database clients cannot check a common name), and `ssl-mode` values that do not verify
//! the server (`disabled`, `preferred`, `required`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use dm_core::{PemSource, TlsConfig, TlsVerification};
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
    /// TLS settings ([`SecurityConfig::tls`]); refused when they cannot be honoured.
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
    /// Not a DM key: how much of the server's certificate is checked, with MySQL's
    /// `--ssl-mode` names: `verify-identity` (default, as DM: the CA and the host name) or
    /// `verify-ca` (the CA only, for certificates that do not name the host).
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssl_mode: String,
}

/// One of the forms of a PEM file: a path, YAML text or bytes (`*-bytes`), or base64.
fn pem_source(
    section: &str,
    name: &str,
    path: &str,
    bytes: Option<&serde_norway::Value>,
    base64_text: &str,
) -> Result<Option<PemSource>, ConfigRefusal> {
    use base64::Engine;
    let refusal =
        |key: &str, reason: String| ConfigRefusal::new(format!("{section}.{key}"), reason);
    let mut forms = Vec::new();
    if !path.trim().is_empty() {
        forms.push((name.to_owned(), PemSource::File(PathBuf::from(path.trim()))));
    }
    if !value_is_empty(bytes) {
        let key = format!("{name}-bytes");
        let pem = match bytes {
            Some(serde_norway::Value::String(text)) => text.as_bytes().to_vec(),
            Some(serde_norway::Value::Sequence(items)) => items
                .iter()
                .map(|item| item.as_u64().and_then(|byte| u8::try_from(byte).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| {
                    refusal(
                        &key,
                        "a list of bytes holds a value that is not a byte".into(),
                    )
                })?,
            _ => {
                return Err(refusal(
                    &key,
                    "must be the PEM text (a string) or a list of bytes".into(),
                ));
            }
        };
        forms.push((key.clone(), PemSource::Inline { key, pem }));
    }
    if !base64_text.trim().is_empty() {
        let key = format!("{name}-base64");
        let pem = base64::engine::general_purpose::STANDARD
            .decode(base64_text.trim())
            .map_err(|_| refusal(&key, "is not base64 (the value is not shown)".into()))?;
        forms.push((key.clone(), PemSource::Inline { key, pem }));
    }
    match forms.len() {
        0 => Ok(None),
        1 => Ok(forms.pop().map(|(_, source)| source)),
        _ => {
            let keys: Vec<String> = forms.into_iter().map(|(key, _)| key).collect();
            Err(refusal(
                name,
                format!(
                    "is given in {} forms ({}): keep one",
                    keys.len(),
                    keys.join(", ")
                ),
            ))
        }
    }
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
        if !self.ssl_mode.trim().is_empty() {
            keys.push("ssl-mode");
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

    /// The TLS settings these keys give; `section` names the section in refusals
    /// (`from.security`). `None` when no key is set; a refusal when they cannot be honoured.
    pub fn tls(&self, section: &str) -> Result<Option<TlsConfig>, ConfigRefusal> {
        if self.keys_set().is_empty() {
            return Ok(None);
        }
        let refusal =
            |key: &str, reason: &str| ConfigRefusal::new(format!("{section}.{key}"), reason);
        if !self.cert_allowed_cn.is_empty() {
            return Err(refusal(
                "cert-allowed-cn",
                "is not supported on a database connection: it checks the common name of the \
                 server's certificate, which the MySQL clients here cannot do (DM uses it on its \
                 own servers, to accept clients). Remove it: ssl-mode verify-identity (the \
                 default) checks that the certificate names the host connected to",
            ));
        }
        let verification = match self
            .ssl_mode
            .trim()
            .to_ascii_lowercase()
            .replace('_', "-")
            .as_str()
        {
            "" | "verify-identity" => TlsVerification::Identity,
            "verify-ca" => TlsVerification::CertificateAuthority,
            "disabled" | "preferred" | "required" => {
                return Err(refusal(
                    "ssl-mode",
                    "only verify-identity and verify-ca are supported: disabled, preferred and \
                     required do not verify the server (preferred even falls back to plaintext). \
                     Set ssl-ca and use verify-ca if the certificate does not name the host, or \
                     remove the security section to connect without TLS",
                ));
            }
            _ => {
                return Err(refusal(
                    "ssl-mode",
                    "must be verify-identity (the default) or verify-ca",
                ));
            }
        };
        let ca = pem_source(
            section,
            "ssl-ca",
            &self.ssl_ca,
            self.ssl_ca_bytes.as_ref(),
            &self.ssl_ca_base64,
        )?;
        let certificate = pem_source(
            section,
            "ssl-cert",
            &self.ssl_cert,
            self.ssl_cert_bytes.as_ref(),
            &self.ssl_cert_base64,
        )?;
        let key = pem_source(
            section,
            "ssl-key",
            &self.ssl_key,
            self.ssl_key_bytes.as_ref(),
            &self.ssl_key_base64,
        )?;
        let Some(ca) = ca else {
            return Err(ConfigRefusal::new(
                section,
                format!(
                    "sets {} but no CA, and TLS needs a CA to verify the server with: set ssl-ca \
                     (DM connects without TLS when no CA is given; that silent downgrade is not \
                     done here), or remove the section to connect without TLS",
                    self.keys_set().join(", ")
                ),
            ));
        };
        let mut tls = TlsConfig::new(ca).with_verification(verification);
        match (certificate, key) {
            (None, None) => {}
            (Some(certificate), Some(key)) => {
                tls = tls.with_client_identity(certificate, key);
            }
            (Some(_), None) => {
                return Err(refusal(
                    "ssl-cert",
                    "is set without ssl-key: set both or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(refusal(
                    "ssl-key",
                    "is set without ssl-cert: set both or neither",
                ));
            }
        }
        Ok(Some(tls))
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

    /// The TLS settings of every connection to this database (`security`), `None` for none.
    /// A section that cannot be honoured gives its refusal, as [`TaskConfig::from_yaml`] and
    /// [`SourceConfig::from_yaml`] do for the whole file; `section` names it (`from`,
    /// `target-database`).
    ///
    /// [`TaskConfig::from_yaml`]: super::TaskConfig::from_yaml
    /// [`SourceConfig::from_yaml`]: super::SourceConfig::from_yaml
    pub fn tls(&self, section: &str) -> Result<Option<TlsConfig>, ConfigRefusal> {
        match &self.security {
            None => Ok(None),
            Some(security) => security.tls(&format!("{section}.security")),
        }
    }

    /// [`DatabaseConfig::tls`] for the connectors' infallible option builders, failing
    /// closed: a section its file's refusals name (`from_yaml` refuses the file, so it never
    /// gets here) gives settings whose CA is the refusal itself, so that connecting fails with
    /// the reason (the CA holds no certificate) instead of going plain.
    pub fn tls_settings(&self, section: &str) -> Option<TlsConfig> {
        self.tls(section).unwrap_or_else(|refusal| {
            Some(TlsConfig::new(PemSource::Inline {
                key: refusal.to_string(),
                pem: Vec::new(),
            }))
        })
    }

    /// Decrypts a DM ciphertext password (the file is being read).
    pub(crate) fn decrypt_password(&mut self) {
        self.password = password_of(&self.password);
    }

    /// What this section asks for that is not built here; `key` names the section.
    pub(crate) fn refusals(&self, key: &str, is_target: bool, out: &mut Vec<ConfigRefusal>) {
        if let Err(refusal) = self.tls(key) {
            out.push(refusal);
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
    fn security_keys_give_tls_settings_or_a_refusal() {
        let parse = |text: &str| -> DatabaseConfig {
            serde_norway::from_str(&format!("host: h\nport: 1\nuser: u\nsecurity:\n{text}"))
                .expect("database")
        };
        let mut refusals = Vec::new();
        let empty = parse("  ssl-ca: ''\n  cert-allowed-cn: []\n  ssl-ca-bytes: null\n");
        empty.refusals("from", false, &mut refusals);
        assert!(refusals.is_empty(), "{refusals:?}");
        assert_eq!(empty.tls("from"), Ok(None));

        let ca_only = parse("  ssl-ca: /ca.pem\n");
        assert_eq!(
            ca_only.tls("from"),
            Ok(Some(TlsConfig::new(PemSource::File("/ca.pem".into()))))
        );
        let full = parse(
            "  ssl-ca-base64: LS0tLS1CRUdJTg==\n  ssl-cert: c.pem\n  ssl-key-bytes: \"-----BEGIN\"\n  ssl-mode: VERIFY_CA\n",
        )
        .tls("target-database")
        .expect("honoured")
        .expect("tls");
        assert_eq!(full.verification, TlsVerification::CertificateAuthority);
        assert_eq!(
            full.ca,
            PemSource::Inline {
                key: "ssl-ca-base64".into(),
                pem: b"-----BEGIN".to_vec()
            }
        );
        let identity = full.client_identity.expect("client certificate");
        assert_eq!(identity.certificate, PemSource::File("c.pem".into()));

        for (text, key, says) in [
            (
                "  ssl-cert: c.pem\n  ssl-key: k.pem\n",
                "from.security",
                "needs a CA",
            ),
            (
                "  ssl-ca: a.pem\n  ssl-cert: c.pem\n",
                "from.security.ssl-cert",
                "without ssl-key",
            ),
            (
                "  ssl-ca: a.pem\n  ssl-key: k.pem\n",
                "from.security.ssl-key",
                "without ssl-cert",
            ),
            (
                "  ssl-ca: a.pem\n  ssl-ca-base64: LS0t\n",
                "from.security.ssl-ca",
                "2 forms",
            ),
            (
                "  ssl-ca: a.pem\n  cert-allowed-cn: [dm]\n",
                "from.security.cert-allowed-cn",
                "common name",
            ),
            (
                "  ssl-ca: a.pem\n  ssl-mode: preferred\n",
                "from.security.ssl-mode",
                "plaintext",
            ),
            (
                "  ssl-ca: a.pem\n  ssl-mode: sometimes\n",
                "from.security.ssl-mode",
                "verify-ca",
            ),
            (
                "  ssl-ca-base64: '!!s3cr3t!!'\n",
                "from.security.ssl-ca-base64",
                "not base64",
            ),
            ("  ssl-mode: verify-ca\n", "from.security", "needs a CA"),
        ] {
            let mut refusals = Vec::new();
            parse(text).refusals("from", false, &mut refusals);
            assert_eq!(refusals.len(), 1, "{text}: {refusals:?}");
            assert_eq!(refusals[0].key, key, "{text}");
            assert!(refusals[0].reason.contains(says), "{text}: {}", refusals[0]);
            assert!(!refusals[0].reason.contains("s3cr3t"), "{}", refusals[0]);
        }
        // For a section built without the file's refusals, the settings fail closed: the CA
        // is the refusal (no certificate), never plaintext.
        let settings = parse("  ssl-cert: c.pem\n  ssl-key: k.pem\n")
            .tls_settings("from")
            .expect("TLS stays on");
        assert!(settings.ca.to_string().contains("no CA"), "{}", settings.ca);
        assert_eq!(parse("  ssl-ca: ''\n").tls_settings("from"), None);
    }
}
