//! dm-mysql's error: a catalog read that failed. The server's error number decides the class
//! of a refused query, as everywhere else (`dm_core::is_transient_server_error`); a table this
//! program cannot represent is definite.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode, is_transient_server_error};

/// Errors of dm-mysql.
#[derive(Debug, thiserror::Error)]
pub enum MySqlError {
    /// The server refused a catalog query, or the connection failed while it ran.
    #[error("{what}: {source}")]
    Client {
        /// What was being read (``reading the structure of `shop`.`items` ``).
        what: String,
        /// The client's error; `mysql_async::Error::Server` carries the server's error number.
        #[source]
        source: mysql_async::Error,
    },
    /// The server describes a table this program cannot represent (a column type it does not
    /// support, keys that contradict the columns).
    #[error("table {table}: {reason}")]
    UnsupportedTable {
        /// `` `schema`.`table` ``.
        table: String,
        /// What cannot be represented (names the column).
        reason: String,
    },
}

impl ClassifiedError for MySqlError {
    fn class(&self) -> ErrorClass {
        match self {
            MySqlError::Client {
                source: mysql_async::Error::Server(server),
                ..
            } if !is_transient_server_error(server.code) => ErrorClass::Definite,
            // The rest of what the client reports on an open connection (I/O, a closed
            // connection, a driver error) is the connection's: retried, as the sink and the
            // dumper retry their own statements.
            MySqlError::Client { .. } => ErrorClass::Transient,
            MySqlError::UnsupportedTable { .. } => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            MySqlError::Client { .. } => 20001,
            MySqlError::UnsupportedTable { .. } => 20002,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            MySqlError::Client { .. } => {
                "check that the server is reachable and that the user may read information_schema for the table (SELECT on it); transient errors are retried"
            }
            MySqlError::UnsupportedTable { .. } => {
                "report the table's SHOW CREATE TABLE and the server version; leave the table out of the task until it is supported"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u16) -> MySqlError {
        MySqlError::Client {
            what: "reading the structure of `d`.`t`".into(),
            source: mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "refused".into(),
                state: "HY000".into(),
            }),
        }
    }

    #[test]
    fn the_server_error_number_decides_the_class() {
        assert_eq!(refused(1213).class(), ErrorClass::Transient);
        assert_eq!(refused(1142).class(), ErrorClass::Definite);
        assert_eq!(refused(1142).code(), ErrorCode(20001));
        let closed = MySqlError::Client {
            what: "reading".into(),
            source: mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
        };
        assert_eq!(closed.class(), ErrorClass::Transient);
    }

    #[test]
    fn an_unsupported_table_is_definite_and_names_the_table() {
        let error = MySqlError::UnsupportedTable {
            table: "`d`.`t`".into(),
            reason: "column `c`: unsupported type".into(),
        };
        assert_eq!(error.class(), ErrorClass::Definite);
        assert_eq!(error.code(), ErrorCode(20002));
        assert_eq!(
            error.to_string(),
            "table `d`.`t`: column `c`: unsupported type"
        );
    }
}
