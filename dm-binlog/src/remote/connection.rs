//! One client connection: packet framing over TCP, login, text queries. The replication-specific
//! sequence lives in the parent module; the byte formats in [`super::wire`].

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::wire::{self, PacketKind, TextRow};
use crate::error::BinlogError;

/// A logged-in connection.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: BufReader<TcpStream>,
    sequence: u8,
    address: String,
    read_timeout: Duration,
    handshake: wire::Handshake,
    write_buffer: Vec<u8>,
}

impl Connection {
    /// Connects and logs in.
    pub(crate) async fn open(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Connection, BinlogError> {
        let address = format!("{host}:{port}");
        let network = |reason: String| BinlogError::Network {
            address: address.clone(),
            reason,
        };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| network(format!("no answer within {connect_timeout:?}")))?
            .map_err(|error| network(error.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|error| network(error.to_string()))?;
        let mut connection = Connection {
            stream: BufReader::with_capacity(256 * 1024, stream),
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
        connection.login(user, password).await?;
        connection.read_timeout = read_timeout;
        Ok(connection)
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

    async fn login(&mut self, user: &str, password: &str) -> Result<(), BinlogError> {
        let handshake = self.handshake.clone();
        let capabilities = wire::client_capabilities(handshake.capabilities);
        if capabilities & wire::capability::PROTOCOL_41 == 0 {
            return Err(self.unsupported(format!(
                "the server ({}) does not speak the 4.1 protocol",
                handshake.server_version
            )));
        }
        let mut plugin = handshake.auth_plugin.clone();
        let mut nonce = handshake.nonce.clone();
        let response = self.scramble(&plugin, password, &nonce)?;
        let packet = wire::handshake_response(capabilities, user, &response, &plugin);
        self.write_packet(&packet).await?;
        let mut payload = Vec::new();
        loop {
            self.read_packet(&mut payload).await?;
            match payload.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => return Err(self.server_error("login", &payload)),
                Some(0xfe) => {
                    // Authentication switch: answer with the scramble the new plugin wants.
                    let (new_plugin, new_nonce) = wire::parse_auth_switch(&payload)
                        .map_err(|reason| self.unsupported(reason))?;
                    plugin = new_plugin;
                    nonce = new_nonce;
                    let response = self.scramble(&plugin, password, &nonce)?;
                    self.write_packet(&response).await?;
                }
                Some(0x01) if plugin == "caching_sha2_password" => match payload.get(1) {
                    // Fast authentication succeeded; the OK follows.
                    Some(3) => {}
                    Some(4) => {
                        return Err(self.unsupported(
                            "the server asks for caching_sha2_password full authentication, which needs TLS or RSA key exchange and this client does not do them yet; connect once with the mysql client so the server caches the password, or give the replication user mysql_native_password".into(),
                        ));
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

    fn scramble(&self, plugin: &str, password: &str, nonce: &[u8]) -> Result<Vec<u8>, BinlogError> {
        match plugin {
            "mysql_native_password" => Ok(wire::scramble_native(password.as_bytes(), nonce)),
            "caching_sha2_password" => Ok(wire::scramble_caching_sha2(password.as_bytes(), nonce)),
            other => Err(self.unsupported(format!(
                "the replication user authenticates with {other}; this client supports mysql_native_password and caching_sha2_password"
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
                let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
                self.sequence = header[3].wrapping_add(1);
                let start = payload.len();
                payload.resize(start + length, 0);
                self.stream.read_exact(&mut payload[start..]).await?;
                if length < wire::MAX_PACKET_PAYLOAD {
                    return Ok::<(), std::io::Error>(());
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Err(_) => Err(self.network(format!(
                "nothing received for {timeout:?} (heartbeats should arrive more often)"
            ))),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.network("the server closed the connection".into()))
            }
            Ok(Err(error)) => Err(self.network(error.to_string())),
            Ok(Ok(())) => Ok(()),
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
