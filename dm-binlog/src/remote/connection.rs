//! One client connection: packet framing over TCP (or TLS, [`super::tls`]), login, text
//! queries. The replication-specific sequence lives in the parent module; the byte formats in
//! [`super::wire`].
//!
//! Login: the server's plugin, or the one an auth switch names:
//! - `mysql_native_password`: the SHA-1 scramble;
//! - `caching_sha2_password`: the SHA-256 scramble (fast authentication, `01 03` then OK); when
//!   the server's cache misses (`01 04`, full authentication) the password itself: in clear
//!   inside TLS, else encrypted with the server's RSA public key, asked for with `02`;
//! - `sha256_password`: the password in clear inside TLS, else `01` asks for the public key
//!   and the password goes encrypted;
//! - `client_ed25519` (MariaDB's `ed25519`, always after an auth switch from MariaDB): the
//!   64-byte Ed25519 signature of the server's 32-byte nonce with a key derived from the
//!   password ([`wire::sign_ed25519`]); the password itself never leaves. An empty password
//!   signs too, as MariaDB's client does. A handshake that proposes it with a nonce of another
//!   length is answered with `mysql_native_password`, as MariaDB's client always starts, and the
//!   server switches with a fresh nonce.
//!
//! A password is never sent in clear over a plain socket. A refused login is
//! [`BinlogError::Server`] during `login as <user> (<plugin>)`, with the server's message.

use std::time::Duration;

use dm_core::TlsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::tls::{Stream, TlsClient};
use super::wire::{self, PacketKind, TextRow};
use crate::error::BinlogError;

/// How to reach and log in to a server.
pub(crate) struct Login<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) user: &'a str,
    pub(crate) password: &'a str,
    pub(crate) tls: Option<&'a TlsConfig>,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
}

/// A logged-in connection.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: BufReader<Stream>,
    sequence: u8,
    address: String,
    read_timeout: Duration,
    handshake: wire::Handshake,
    write_buffer: Vec<u8>,
}

/// Size of the read buffer (events arrive in bursts).
const READ_BUFFER: usize = 256 * 1024;

impl Connection {
    /// Connects and logs in, over TLS when `login.tls` is set.
    pub(crate) async fn open(login: Login<'_>) -> Result<Connection, BinlogError> {
        let Login {
            host,
            port,
            user,
            password,
            tls,
            connect_timeout,
            read_timeout,
        } = login;
        let address = format!("{host}:{port}");
        let network = |reason: String| BinlogError::Network {
            address: address.clone(),
            reason,
        };
        // The TLS settings are checked (files read) before any byte goes to the server.
        let tls_client = tls.map(|tls| TlsClient::new(tls, &address)).transpose()?;
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| network(format!("no answer within {connect_timeout:?}")))?
            .map_err(|error| network(error.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|error| network(error.to_string()))?;
        let mut connection = Connection {
            stream: BufReader::with_capacity(READ_BUFFER, Stream::Plain(stream)),
            sequence: 0,
            address: address.clone(),
            read_timeout: connect_timeout,
            handshake: wire::Handshake {
                server_version: String::new(),
                connection_id: 0,
                nonce: Vec::new(),
                capabilities: 0,
                auth_plugin: String::new(),
            },
            write_buffer: Vec::new(),
        };
        let mut payload = Vec::new();
        connection.read_packet(&mut payload).await?;
        connection.handshake =
            wire::parse_handshake(&payload).map_err(|reason| connection.unsupported(reason))?;
        let mut capabilities = wire::client_capabilities(connection.handshake.capabilities);
        if let Some(client) = &tls_client {
            if connection.handshake.capabilities & wire::capability::SSL == 0 {
                return Err(BinlogError::Tls {
                    address,
                    reason: format!(
                        "the server ({}) does not offer TLS, and the source's security section \
                         asks for it (on the server: ssl-ca, ssl-cert, ssl-key in its config)",
                        connection.handshake.server_version
                    ),
                });
            }
            capabilities |= wire::capability::SSL;
            let within = connect_timeout;
            connection =
                tokio::time::timeout(within, connection.upgrade(client, host, capabilities))
                    .await
                    .map_err(|_| {
                        network(format!("the TLS handshake did not end within {within:?}"))
                    })??;
        }
        tokio::time::timeout(
            connect_timeout,
            connection.login(capabilities, user, password),
        )
        .await
        .map_err(|_| network(format!("the login did not end within {connect_timeout:?}")))??;
        connection.read_timeout = read_timeout;
        Ok(connection)
    }

    /// Sends the SSL request and runs the TLS handshake on the socket.
    async fn upgrade(
        mut self,
        client: &TlsClient,
        host: &str,
        capabilities: u32,
    ) -> Result<Connection, BinlogError> {
        self.write_packet(&wire::ssl_request(capabilities)).await?;
        if !self.stream.buffer().is_empty() {
            return Err(self.unsupported(
                "the server sent data after its handshake, before the TLS handshake".into(),
            ));
        }
        let Stream::Plain(tcp) = self.stream.into_inner() else {
            return Err(BinlogError::Tls {
                address: self.address,
                reason: "the connection is already encrypted".into(),
            });
        };
        let stream = client.connect(tcp, host, &self.address).await?;
        Ok(Connection {
            stream: BufReader::with_capacity(READ_BUFFER, stream),
            ..self
        })
    }

    pub(crate) fn handshake(&self) -> &wire::Handshake {
        &self.handshake
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    fn unsupported(&self, reason: String) -> BinlogError {
        BinlogError::Unsupported {
            address: self.address.clone(),
            reason,
        }
    }

    fn network(&self, reason: String) -> BinlogError {
        BinlogError::Network {
            address: self.address.clone(),
            reason,
        }
    }

    fn server_error(&self, during: &str, payload: &[u8]) -> BinlogError {
        match wire::parse_error(payload) {
            Ok(error) => BinlogError::Server {
                address: self.address.clone(),
                during: during.to_owned(),
                error,
            },
            Err(reason) => {
                self.unsupported(format!("unreadable ERR packet during {during}: {reason}"))
            }
        }
    }

    async fn login(
        &mut self,
        capabilities: u32,
        user: &str,
        password: &str,
    ) -> Result<(), BinlogError> {
        let handshake = self.handshake.clone();
        if capabilities & wire::capability::PROTOCOL_41 == 0 {
            return Err(self.unsupported(format!(
                "the server ({}) does not speak the 4.1 protocol",
                handshake.server_version
            )));
        }
        let mut plugin = handshake.auth_plugin.clone();
        let mut nonce = handshake.nonce.clone();
        if plugin == "client_ed25519" && nonce.len() != wire::ED25519_NONCE_LENGTH {
            // A handshake nonce is 20 bytes: start as MariaDB's client does, the server
            // switches to ed25519 with a nonce of its own.
            plugin = "mysql_native_password".into();
        }
        let response = self.first_response(&plugin, password, &nonce)?;
        let packet = wire::handshake_response(capabilities, user, &response, &plugin);
        self.write_packet(&packet).await?;
        let mut payload = Vec::new();
        // Whether the next AuthMoreData is the server's public key.
        let mut awaiting_public_key = plugin == "sha256_password" && response == [1];
        loop {
            self.read_packet(&mut payload).await?;
            match payload.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => {
                    return Err(self.server_error(&format!("login as {user} ({plugin})"), &payload));
                }
                Some(0xfe) => {
                    // Authentication switch: answer with what the new plugin wants.
                    let (new_plugin, new_nonce) = wire::parse_auth_switch(&payload)
                        .map_err(|reason| self.unsupported(reason))?;
                    plugin = new_plugin;
                    nonce = new_nonce;
                    let response = self.first_response(&plugin, password, &nonce)?;
                    awaiting_public_key = plugin == "sha256_password" && response == [1];
                    self.write_packet(&response).await?;
                }
                Some(0x01) if awaiting_public_key => {
                    awaiting_public_key = false;
                    let encrypted =
                        wire::encrypt_password(password.as_bytes(), &nonce, &payload[1..])
                            .map_err(|reason| self.unsupported(reason))?;
                    self.write_packet(&encrypted).await?;
                }
                Some(0x01) if plugin == "caching_sha2_password" => match payload.get(1) {
                    // Fast authentication succeeded; the OK follows.
                    Some(3) => {}
                    // Full authentication: the server's cache has no entry for this user.
                    Some(4) if self.stream.get_ref().is_tls() => {
                        let mut clear = password.as_bytes().to_vec();
                        clear.push(0);
                        self.write_packet(&clear).await?;
                    }
                    Some(4) => {
                        awaiting_public_key = true;
                        self.write_packet(&[2]).await?;
                    }
                    other => {
                        return Err(self.unsupported(format!(
                            "unexpected caching_sha2_password state {other:?}"
                        )));
                    }
                },
                other => {
                    return Err(self.unsupported(format!(
                        "unexpected packet {other:?} during login with {plugin}"
                    )));
                }
            }
        }
    }

    /// The first answer to a plugin's challenge (in the handshake response or after a switch).
    fn first_response(
        &self,
        plugin: &str,
        password: &str,
        nonce: &[u8],
    ) -> Result<Vec<u8>, BinlogError> {
        match plugin {
            "mysql_native_password" => Ok(wire::scramble_native(password.as_bytes(), nonce)),
            "caching_sha2_password" => Ok(wire::scramble_caching_sha2(password.as_bytes(), nonce)),
            // Inside TLS (or with no password) the password itself; else ask for the key.
            "sha256_password" if self.stream.get_ref().is_tls() || password.is_empty() => {
                let mut clear = password.as_bytes().to_vec();
                clear.push(0);
                Ok(clear)
            }
            "sha256_password" => Ok(vec![1]),
            "client_ed25519" => wire::sign_ed25519(password.as_bytes(), nonce)
                .map(Vec::from)
                .map_err(|reason| self.unsupported(reason)),
            other => Err(self.unsupported(format!(
                "the replication user authenticates with {other}; this client supports mysql_native_password, caching_sha2_password, sha256_password and client_ed25519 (MariaDB's ed25519)"
            ))),
        }
    }

    /// Reads one logical packet (reassembling payloads of 16 MiB and more) into `payload`.
    pub(crate) async fn read_packet(&mut self, payload: &mut Vec<u8>) -> Result<(), BinlogError> {
        payload.clear();
        let timeout = self.read_timeout;
        let read = async {
            loop {
                let mut header = [0u8; 4];
                self.stream.read_exact(&mut header).await?;
                // Bounded by the event limit, and read as it arrives (not allocated up front).
                let length = match wire::packet_length(header, payload.len()) {
                    Ok(length) => length,
                    Err(claimed) => return Ok(Err(claimed)),
                };
                self.sequence = header[3].wrapping_add(1);
                let read = (&mut self.stream)
                    .take(length as u64)
                    .read_to_end(payload)
                    .await?;
                if read < length {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                if length < wire::MAX_PACKET_PAYLOAD {
                    return Ok::<_, std::io::Error>(Ok(()));
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(Err(size))) => Err(BinlogError::EventTooLarge {
                position: self.address().to_owned(),
                what: "a packet from the upstream".into(),
                size,
                limit: wire::MAXIMUM_LOGICAL_PACKET,
            }),
            Err(_) => Err(self.network(format!(
                "nothing received for {timeout:?} (heartbeats should arrive more often)"
            ))),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.network("the server closed the connection".into()))
            }
            Ok(Err(error)) => Err(self.network(error.to_string())),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }

    /// Writes one logical packet, continuing the current sequence.
    pub(crate) async fn write_packet(&mut self, payload: &[u8]) -> Result<(), BinlogError> {
        self.write_buffer.clear();
        self.sequence = wire::frame_packets(payload, self.sequence, &mut self.write_buffer);
        let stream = self.stream.get_mut();
        let result = async {
            stream.write_all(&self.write_buffer).await?;
            stream.flush().await
        }
        .await;
        result.map_err(|error| self.network(error.to_string()))
    }

    /// Sends a command (a new sequence) and returns its first answer packet.
    pub(crate) async fn command(
        &mut self,
        during: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, BinlogError> {
        self.sequence = 0;
        self.write_packet(payload).await?;
        let mut answer = Vec::new();
        self.read_packet(&mut answer).await?;
        if wire::packet_kind(&answer) == PacketKind::Error {
            return Err(self.server_error(during, &answer));
        }
        Ok(answer)
    }

    /// Sends a command (a new sequence) without waiting for an answer.
    pub(crate) async fn start_command(&mut self, payload: &[u8]) -> Result<(), BinlogError> {
        self.sequence = 0;
        self.write_packet(payload).await
    }

    /// Runs a statement that returns no rows.
    pub(crate) async fn execute(&mut self, sql: &str) -> Result<(), BinlogError> {
        let answer = self.command(sql, &wire::query_command(sql)).await?;
        if wire::packet_kind(&answer) != PacketKind::Ok {
            // A result set: drain it.
            self.drain_result_set(sql).await?;
        }
        Ok(())
    }

    /// Runs a query and returns its rows as text.
    pub(crate) async fn query(&mut self, sql: &str) -> Result<Vec<TextRow>, BinlogError> {
        let answer = self.command(sql, &wire::query_command(sql)).await?;
        if wire::packet_kind(&answer) == PacketKind::Ok {
            return Ok(Vec::new());
        }
        self.drain_result_set(sql).await
    }

    /// Reads column definitions up to their EOF, then rows up to the final EOF.
    async fn drain_result_set(&mut self, sql: &str) -> Result<Vec<TextRow>, BinlogError> {
        let mut payload = Vec::new();
        loop {
            self.read_packet(&mut payload).await?;
            match wire::packet_kind(&payload) {
                PacketKind::Eof => break,
                PacketKind::Error => return Err(self.server_error(sql, &payload)),
                _ => {}
            }
        }
        let mut rows = Vec::new();
        loop {
            self.read_packet(&mut payload).await?;
            match wire::packet_kind(&payload) {
                PacketKind::Eof => return Ok(rows),
                PacketKind::Error => return Err(self.server_error(sql, &payload)),
                _ => rows
                    .push(wire::parse_text_row(&payload).map_err(|reason| {
                        self.unsupported(format!("result of {sql}: {reason}"))
                    })?),
            }
        }
    }

    /// Sends `COM_QUIT` and closes, ignoring errors (the connection is being dropped).
    pub(crate) async fn quit(mut self) {
        self.sequence = 0;
        let _ = self.write_packet(&[wire::COM_QUIT]).await;
        let _ = self.stream.get_mut().shutdown().await;
    }
}
