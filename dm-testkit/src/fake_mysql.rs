//! A scripted MySQL 8 replication source on loopback, for testing the MySQL-flavour client paths
//! without a MySQL server (none can be installed here). It speaks the MySQL protocol's
//! handshake with `caching_sha2_password` (the fast path, verifying the client's scramble, or
//! full authentication), or switches to `sha256_password` or to MariaDB's `client_ed25519`;
//! with TLS when the script gives it a certificate. It answers the queries a replica sends,
//! records every command and how each login went, and on `COM_BINLOG_DUMP(_GTID)` streams a
//! fake ROTATE followed by the events of a real MySQL binlog file, byte for byte.
//!
//! ```text
//! client --TCP--> FakeMySqlSource: HandshakeV10 (8.0.36, caching_sha2_password[, CLIENT_SSL])
//!                 [<- SSL request -> TLS handshake (the script's certificate)]
//!                 <- response (scramble checked) -> 01 03 (fast auth ok), OK | ERR 1045
//!                    CachingSha2Full: -> 01 04; <- password NUL (TLS) | 02 -> 01 <public key PEM>
//!                                     <- RSA-OAEP(password NUL xor nonce) -> OK | ERR 1045
//!                    Sha256: -> FE sha256_password <nonce>; <- password NUL (TLS) | 01
//!                                     -> 01 <public key PEM>; <- RSA-OAEP(...) -> OK | ERR 1045
//!                    Ed25519: -> FE client_ed25519 <ED25519_NONCE>; <- 64-byte signature
//!                                     -> OK | ERR 1045
//!                 COM_QUERY -> canned result sets / OK;  COM_REGISTER_SLAVE -> OK
//!                 COM_BINLOG_DUMP_GTID -> 00 <fake rotate> 00 <event> ... [FE if non-blocking]
//! ```
//!
//! The events streamed are the caller's (a file from the shared MySQL fixtures): a test names
//! where its bytes come from. The dump starts where a MySQL source would: from a position, the
//! format description (marked artificial, `log_pos` 0, when the position is past it) and then
//! the events at and after the position; from a GTID set, the whole file without the
//! transactions whose GTID is in the set. The script also says what `SELECT @@global...`
//! answers (`binlog_format`, `binlog_row_image`, the checksum of the file) and which server ids
//! `SHOW SLAVE HOSTS` lists.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The fake's RSA key pair (2048 bits, made for these tests; not a secret), for the password
/// exchange without TLS.
const RSA_PRIVATE_KEY_PEM: &str = include_str!("fake_mysql_rsa_key.pem");

/// How the fake source authenticates a login.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FakeAuthentication {
    /// `caching_sha2_password` with the user in the server's cache: the scramble is checked
    /// (`01 03`, then OK).
    #[default]
    CachingSha2Fast,
    /// `caching_sha2_password` whose cache misses (after a server restart or
    /// `FLUSH PRIVILEGES`): the scramble is checked, then `01 04` asks for the password: in
    /// clear inside TLS, or RSA-encrypted after the client asks for the public key (`02`).
    CachingSha2Full,
    /// The handshake proposes `caching_sha2_password` and the server switches to
    /// `sha256_password`: the password in clear inside TLS, or RSA-encrypted after the client
    /// asks for the public key (`01`).
    Sha256,
    /// The handshake proposes `caching_sha2_password` and the server switches to MariaDB's
    /// `client_ed25519` with [`ED25519_NONCE`] (32 bytes and no terminator, as MariaDB sends
    /// it; its last byte is 0, as one nonce in 256 is): the login is accepted when the answer is
    /// `signature`. Ed25519 signatures are deterministic, and the fake does no curve arithmetic:
    /// the test gives the signature of the nonce with the script's password, computed by an
    /// implementation other than the client's.
    Ed25519 {
        /// The only answer accepted.
        signature: [u8; 64],
    },
}

/// The nonce of [`FakeAuthentication::Ed25519`]: bytes 1 to 31, then 0.
pub const ED25519_NONCE: [u8; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 0,
];

/// What the fake source serves.
#[derive(Clone, Debug)]
pub struct FakeMySqlScript {
    /// Reported server version.
    pub server_version: String,
    /// The replication user's password (any user name is accepted).
    pub password: String,
    /// How logins are checked.
    pub authentication: FakeAuthentication,
    /// A certificate and key (PEM files): the source offers TLS (`CLIENT_SSL`) with them. A
    /// client may still log in without TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `@@server_id`.
    pub server_id: u32,
    /// `@@server_uuid`.
    pub server_uuid: String,
    /// The binlog file the stream is in.
    pub file_name: String,
    /// The events to stream after the fake rotate, each whole (header to checksum), as they
    /// follow each other in the file from offset 4.
    pub events: Vec<Vec<u8>>,
    /// Whether the events end with a CRC32 (`@@global.binlog_checksum` CRC32 or NONE); read
    /// from the file's format description by [`FakeMySqlScript::from_binlog_file`].
    pub checksum: bool,
    /// `@@global.binlog_format` (`ROW`, `STATEMENT`, `MIXED`).
    pub binlog_format: String,
    /// `@@global.binlog_row_image` (`FULL`, `MINIMAL`, `NOBLOB`); `None` answers as MySQL 5.5
    /// does, which has no such variable (error 1193).
    pub binlog_row_image: Option<String>,
    /// The server ids of the other replicas `SHOW SLAVE HOSTS` lists.
    pub replica_server_ids: Vec<u32>,
    /// When set, the dump ends after the events with this error (code, message), as a source
    /// ends the dump of a replica whose server id another replica took (1236).
    pub dump_error: Option<(u16, String)>,
}

impl FakeMySqlScript {
    /// A script streaming the events of a binlog file's bytes (magic included).
    pub fn from_binlog_file(file_name: &str, bytes: &[u8], password: &str) -> Self {
        let mut events = Vec::new();
        let mut offset = 4;
        while offset + 19 <= bytes.len() {
            let size = u32::from_le_bytes([
                bytes[offset + 9],
                bytes[offset + 10],
                bytes[offset + 11],
                bytes[offset + 12],
            ]) as usize;
            if size < 19 || offset + size > bytes.len() {
                break;
            }
            events.push(bytes[offset..offset + size].to_vec());
            offset += size;
        }
        // A format description written with CRC32 ends with the checksum of its bytes; one from
        // before MySQL 5.6 (or with checksums off) does not.
        let checksum = events.first().is_some_and(|event| {
            event.len() > 23 && {
                let (body, stored) = event.split_at(event.len() - 4);
                crc32fast::hash(body).to_le_bytes() == stored
            }
        });
        FakeMySqlScript {
            server_version: "8.0.36".into(),
            password: password.into(),
            authentication: FakeAuthentication::CachingSha2Fast,
            tls: None,
            server_id: 77,
            server_uuid: "3e11fa47-71ca-11e1-9e33-c80aa9429562".into(),
            file_name: file_name.into(),
            events,
            checksum,
            binlog_format: "ROW".into(),
            binlog_row_image: Some("FULL".into()),
            replica_server_ids: Vec::new(),
            dump_error: None,
        }
    }
}

/// A running fake source.
#[derive(Debug)]
pub struct FakeMySqlSource {
    port: u16,
    commands: Arc<Mutex<Vec<Vec<u8>>>>,
    logins: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl FakeMySqlSource {
    /// Listens on a free loopback port and serves connections until dropped.
    pub async fn start(script: FakeMySqlScript) -> std::io::Result<FakeMySqlSource> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let tls = match &script.tls {
            None => None,
            Some((certificate, key)) => Some(tokio_rustls::TlsAcceptor::from(
                crate::tls::server_config(certificate, key)
                    .map_err(|error| std::io::Error::other(error.to_string()))?,
            )),
        };
        let recorded = Recorded {
            commands: commands.clone(),
            logins: logins.clone(),
        };
        let task = tokio::spawn(async move {
            let mut connection_id = 100;
            while let Ok((stream, _)) = listener.accept().await {
                connection_id += 1;
                let script = script.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    if let Err(error) =
                        serve(stream, &script, tls.as_ref(), connection_id, &recorded).await
                    {
                        recorded.login(format!("connection ended: {error}"));
                    }
                });
            }
        });
        Ok(FakeMySqlSource {
            port,
            commands,
            logins,
            task,
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every command payload received so far, in order (first byte = command).
    pub fn commands(&self) -> Vec<Vec<u8>> {
        self.commands
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default()
    }

    /// How each login went, in order: `caching_sha2_password fast`, `caching_sha2_password
    /// full: clear inside TLS`, `... full: RSA`, `sha256_password: clear inside TLS`,
    /// `sha256_password: RSA`, or what refused it (`refused: ...`, `connection ended: ...`).
    pub fn logins(&self) -> Vec<String> {
        self.logins
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default()
    }

    /// The text of every `COM_QUERY` received.
    pub fn queries(&self) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|command| command.first() == Some(&0x03))
            .map(|command| String::from_utf8_lossy(&command[1..]).into_owned())
            .collect()
    }
}

impl Drop for FakeMySqlSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the connections record for the test.
#[derive(Clone)]
struct Recorded {
    commands: Arc<Mutex<Vec<Vec<u8>>>>,
    logins: Arc<Mutex<Vec<String>>>,
}

impl Recorded {
    fn login(&self, what: String) {
        if let Ok(mut list) = self.logins.lock() {
            list.push(what);
        }
    }
}

/// A socket, plain or TLS.
trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

struct Packets {
    stream: Box<dyn Duplex>,
    sequence: u8,
    tls: bool,
}

impl Packets {
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await?;
        let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        self.sequence = header[3].wrapping_add(1);
        let mut payload = vec![0; length];
        self.stream.read_exact(&mut payload).await?;
        Ok(payload)
    }

    async fn write(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut packet = Vec::with_capacity(payload.len() + 4);
        packet.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        packet.push(self.sequence);
        packet.extend_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
        self.stream.write_all(&packet).await
    }
}

fn length_encoded(bytes: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(bytes.len() + 3);
    if bytes.len() < 251 {
        output.push(bytes.len() as u8);
    } else {
        output.push(0xfc);
        output.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    }
    output.extend_from_slice(bytes);
    output
}

const OK: [u8; 7] = [0, 0, 0, 2, 0, 0, 0];
const EOF: [u8; 5] = [0xfe, 0, 0, 2, 0];

fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let mut packet = vec![0xff];
    packet.extend_from_slice(&code.to_le_bytes());
    packet.extend_from_slice(b"#28000");
    packet.extend_from_slice(message.as_bytes());
    packet
}

async fn result_set(
    packets: &mut Packets,
    rows: &[Vec<String>],
    columns: usize,
) -> std::io::Result<()> {
    packets.write(&[columns as u8]).await?;
    for index in 0..columns {
        let mut definition = Vec::new();
        for part in ["def", "", "", "", &format!("c{index}"), ""] {
            definition.extend_from_slice(&length_encoded(part.as_bytes()));
        }
        definition.push(0x0c);
        definition.extend_from_slice(&45u16.to_le_bytes());
        definition.extend_from_slice(&255u32.to_le_bytes());
        definition.push(253);
        definition.extend_from_slice(&[0, 0, 0, 0, 0]);
        packets.write(&definition).await?;
    }
    packets.write(&EOF).await?;
    for row in rows {
        let mut packet = Vec::new();
        for value in row {
            packet.extend_from_slice(&length_encoded(value.as_bytes()));
        }
        packets.write(&packet).await?;
    }
    packets.write(&EOF).await
}

/// The fake ROTATE a source sends first: artificial, log_pos 0, CRC32 when the stream has them.
fn fake_rotate(server_id: u32, file_name: &str, position: u64, checksum: bool) -> Vec<u8> {
    let size = 19 + 8 + file_name.len() + if checksum { 4 } else { 0 };
    let mut event = Vec::with_capacity(size);
    event.extend_from_slice(&0u32.to_le_bytes());
    event.push(4);
    event.extend_from_slice(&server_id.to_le_bytes());
    event.extend_from_slice(&(size as u32).to_le_bytes());
    event.extend_from_slice(&0u32.to_le_bytes());
    event.extend_from_slice(&0x20u16.to_le_bytes());
    event.extend_from_slice(&position.to_le_bytes());
    event.extend_from_slice(file_name.as_bytes());
    if checksum {
        let crc = crc32fast::hash(&event);
        event.extend_from_slice(&crc.to_le_bytes());
    }
    event
}

/// The format description as a source sends it before events that do not start the file:
/// `log_pos` 0 (artificial), checksum recomputed.
fn artificial_format_description(event: &[u8], checksum: bool) -> Vec<u8> {
    let mut copy = event.to_vec();
    if copy.len() >= 19 {
        copy[13..17].copy_from_slice(&0u32.to_le_bytes());
        if checksum && copy.len() >= 23 {
            let end = copy.len() - 4;
            let crc = crc32fast::hash(&copy[..end]);
            copy[end..].copy_from_slice(&crc.to_le_bytes());
        }
    }
    copy
}

/// The GTIDs of one source in a dump request: its UUID and half-open intervals.
struct GtidSource {
    uuid: [u8; 16],
    intervals: Vec<(u64, u64)>,
}

/// Where a dump starts.
enum DumpStart {
    /// At this offset of the file.
    Position(u64),
    /// After the transactions of this GTID set.
    Gtids(Vec<GtidSource>),
}

/// Reads the start of `COM_BINLOG_DUMP` (0x12) or `COM_BINLOG_DUMP_GTID` (0x1e).
fn dump_start(command: &[u8]) -> DumpStart {
    let u32_at = |at: usize| {
        command.get(at..at + 4).map_or(0, |bytes| {
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        })
    };
    let u64_at = |at: usize| {
        command.get(at..at + 8).map_or(0, |bytes| {
            let mut array = [0u8; 8];
            array.copy_from_slice(bytes);
            u64::from_le_bytes(array)
        })
    };
    if command.first() == Some(&0x12) {
        return DumpStart::Position(u64::from(u32_at(1)));
    }
    // flags(2) server_id(4) name_length(4) name position(8) [data_size(4) data]
    let flags = u16::from_le_bytes([
        command.get(1).copied().unwrap_or(0),
        command.get(2).copied().unwrap_or(0),
    ]);
    let name_length = u32_at(7) as usize;
    let position_at = 11 + name_length;
    let position = u64_at(position_at);
    if flags & 0x04 == 0 {
        return DumpStart::Position(position);
    }
    let mut at = position_at + 8 + 4;
    let sources = u64_at(at);
    at += 8;
    let mut set = Vec::new();
    for _ in 0..sources {
        let mut uuid = [0u8; 16];
        if let Some(bytes) = command.get(at..at + 16) {
            uuid.copy_from_slice(bytes);
        }
        at += 16;
        let count = u64_at(at);
        at += 8;
        let mut intervals = Vec::new();
        for _ in 0..count {
            intervals.push((u64_at(at), u64_at(at + 8)));
            at += 16;
        }
        set.push(GtidSource { uuid, intervals });
    }
    DumpStart::Gtids(set)
}

/// The events a dump from `start` sends after the fake rotate (whole events, header to
/// checksum), and the position the fake rotate names.
fn dump_events(script: &FakeMySqlScript, start: &DumpStart) -> (u64, Vec<Vec<u8>>) {
    match start {
        DumpStart::Position(position) => {
            let position = (*position).max(4);
            let mut events = Vec::new();
            let mut offset = 4u64;
            for (index, event) in script.events.iter().enumerate() {
                if offset >= position {
                    events.push(event.clone());
                } else if index == 0 {
                    events.push(artificial_format_description(event, script.checksum));
                }
                offset += event.len() as u64;
            }
            (position, events)
        }
        DumpStart::Gtids(set) => {
            let contains = |uuid: &[u8], number: u64| {
                set.iter().any(|source| {
                    source.uuid.as_slice() == uuid
                        && source
                            .intervals
                            .iter()
                            .any(|(first, end)| (*first..*end).contains(&number))
                })
            };
            let mut events = Vec::new();
            let mut skipping = false;
            for event in &script.events {
                let event_type = event.get(4).copied().unwrap_or(0);
                if event_type == 33 {
                    // GTID: flags(1) uuid(16) number(8) after the 19-byte header.
                    let uuid = event.get(20..36).unwrap_or_default();
                    let number = event.get(36..44).map_or(0, |bytes| {
                        let mut array = [0u8; 8];
                        array.copy_from_slice(bytes);
                        u64::from_le_bytes(array)
                    });
                    skipping = contains(uuid, number);
                }
                if !skipping {
                    events.push(event.clone());
                } else if ends_transaction(event, script.checksum) {
                    skipping = false;
                }
            }
            (4, events)
        }
    }
}

/// Whether an event closes a transaction: XID, TRANSACTION_PAYLOAD, or a QUERY other than
/// `BEGIN` (a DDL, or `COMMIT`).
fn ends_transaction(event: &[u8], checksum: bool) -> bool {
    match event.get(4).copied() {
        Some(16) | Some(40) => true,
        Some(2) => {
            // thread(4) time(4) schema_length(1) error(2) status_length(2) status schema NUL sql
            let body = event.get(19..).unwrap_or_default();
            let schema_length = usize::from(body.get(8).copied().unwrap_or(0));
            let status_length = usize::from(u16::from_le_bytes([
                body.get(11).copied().unwrap_or(0),
                body.get(12).copied().unwrap_or(0),
            ]));
            let sql_at = 13 + status_length + schema_length + 1;
            let sql_end = body.len().saturating_sub(if checksum { 4 } else { 0 });
            let sql = body.get(sql_at..sql_end).unwrap_or_default();
            !sql.trim_ascii_start()
                .get(..5)
                .is_some_and(|word| word.eq_ignore_ascii_case(b"BEGIN"))
        }
        _ => false,
    }
}

/// `CLIENT_SSL`.
const CLIENT_SSL: u32 = 2048;

/// Reads the password of a full authentication: in clear inside TLS, or, after the client
/// sends `key_request` (`02` for caching_sha2_password, `01` for sha256_password), RSA-OAEP
/// encrypted with the fake's public key. Whether it matches the script's password.
async fn full_authentication(
    packets: &mut Packets,
    script: &FakeMySqlScript,
    nonce: &[u8],
    key_request: u8,
    plugin: &str,
    recorded: &Recorded,
) -> std::io::Result<bool> {
    let answer = packets.read().await?;
    if packets.tls {
        let mut expected = script.password.as_bytes().to_vec();
        expected.push(0);
        let matches = answer == expected;
        recorded.login(if matches {
            format!("{plugin}: clear inside TLS")
        } else {
            format!("refused: {plugin} with a wrong password inside TLS")
        });
        return Ok(matches);
    }
    if answer != [key_request] {
        // A password in clear over a plain socket, or anything else.
        recorded.login(format!(
            "refused: {plugin} got {} bytes without TLS instead of a public key request",
            answer.len()
        ));
        return Ok(false);
    }
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PRIVATE_KEY_PEM)
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let public = rsa::RsaPublicKey::from(&key)
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let mut more_data = vec![0x01];
    more_data.extend_from_slice(public.as_bytes());
    packets.write(&more_data).await?;
    let encrypted = packets.read().await?;
    let decrypted = key
        .decrypt(rsa::Oaep::new::<sha1::Sha1>(), &encrypted)
        .unwrap_or_default();
    let clear: Vec<u8> = decrypted
        .iter()
        .enumerate()
        .map(|(index, byte)| byte ^ nonce[index % nonce.len()])
        .collect();
    let mut expected = script.password.as_bytes().to_vec();
    expected.push(0);
    let matches = clear == expected;
    recorded.login(if matches {
        format!("{plugin}: RSA")
    } else {
        format!("refused: {plugin} with a wrong RSA-encrypted password")
    });
    Ok(matches)
}

async fn serve(
    stream: TcpStream,
    script: &FakeMySqlScript,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    connection_id: u32,
    recorded: &Recorded,
) -> std::io::Result<()> {
    let mut packets = Packets {
        stream: Box::new(stream),
        sequence: 0,
        tls: false,
    };
    let nonce: Vec<u8> = (0..20u8).map(|index| b'a' + index).collect();
    // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | PLUGIN_AUTH_LENENC | LONG_PASSWORD | TRANSACTIONS
    let mut capabilities: u32 = 512 | 32768 | (1 << 19) | (1 << 21) | 1 | 8192;
    if tls.is_some() {
        capabilities |= CLIENT_SSL;
    }
    let mut handshake = vec![10];
    handshake.extend_from_slice(script.server_version.as_bytes());
    handshake.push(0);
    handshake.extend_from_slice(&connection_id.to_le_bytes());
    handshake.extend_from_slice(&nonce[..8]);
    handshake.push(0);
    handshake.extend_from_slice(&(capabilities as u16).to_le_bytes());
    handshake.push(45);
    handshake.extend_from_slice(&2u16.to_le_bytes());
    handshake.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
    handshake.push(21);
    handshake.extend_from_slice(&[0; 10]);
    handshake.extend_from_slice(&nonce[8..]);
    handshake.push(0);
    handshake.extend_from_slice(b"caching_sha2_password\0");
    packets.write(&handshake).await?;

    let mut response = packets.read().await?;
    let client_capabilities = response.get(..4).map_or(0, |bytes| {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    });
    if response.len() == 32 && client_capabilities & CLIENT_SSL != 0 {
        // An SSL request: TLS on this socket, then the handshake response inside it.
        let Some(acceptor) = tls else {
            recorded.login("refused: an SSL request, and this source has no TLS".into());
            return Ok(());
        };
        let sequence = packets.sequence;
        let stream = acceptor.accept(packets.stream).await?;
        packets = Packets {
            stream: Box::new(stream),
            sequence,
            tls: true,
        };
        response = packets.read().await?;
    }
    // capabilities(4) max packet(4) charset(1) filler(23) user NUL, lenenc auth response
    let user_end = response
        .get(32..)
        .and_then(|rest| rest.iter().position(|byte| *byte == 0))
        .unwrap_or(0)
        + 32;
    let auth_length = usize::from(*response.get(user_end + 1).unwrap_or(&0));
    let auth = response
        .get(user_end + 2..user_end + 2 + auth_length)
        .unwrap_or_default()
        .to_vec();
    let expected = {
        let stage1 = Sha256::digest(script.password.as_bytes());
        let stage2 = Sha256::digest(stage1);
        let mut hasher = Sha256::new();
        hasher.update(stage2);
        hasher.update(&nonce);
        let mix = hasher.finalize();
        stage1
            .iter()
            .zip(mix.iter())
            .map(|(a, b)| a ^ b)
            .collect::<Vec<u8>>()
    };
    let denied = error_packet(1045, "Access denied for user (using password: YES)");
    let accepted = match script.authentication {
        FakeAuthentication::CachingSha2Fast => {
            if auth == expected {
                packets.write(&[0x01, 0x03]).await?;
                recorded.login("caching_sha2_password fast".into());
                true
            } else {
                recorded.login("refused: wrong scramble".into());
                false
            }
        }
        FakeAuthentication::CachingSha2Full => {
            if auth == expected {
                packets.write(&[0x01, 0x04]).await?;
                full_authentication(
                    &mut packets,
                    script,
                    &nonce,
                    2,
                    "caching_sha2_password full",
                    recorded,
                )
                .await?
            } else {
                recorded.login("refused: wrong scramble".into());
                false
            }
        }
        FakeAuthentication::Sha256 => {
            let switch_nonce: Vec<u8> = (0..20u8).map(|index| b'A' + index).collect();
            let mut switch = vec![0xfe];
            switch.extend_from_slice(b"sha256_password\0");
            switch.extend_from_slice(&switch_nonce);
            switch.push(0);
            packets.write(&switch).await?;
            full_authentication(
                &mut packets,
                script,
                &switch_nonce,
                1,
                "sha256_password",
                recorded,
            )
            .await?
        }
        FakeAuthentication::Ed25519 { signature } => {
            let mut switch = vec![0xfe];
            switch.extend_from_slice(b"client_ed25519\0");
            switch.extend_from_slice(&ED25519_NONCE);
            packets.write(&switch).await?;
            let answer = packets.read().await?;
            let matches = answer == signature;
            recorded.login(if matches {
                "client_ed25519".into()
            } else {
                format!(
                    "refused: client_ed25519 got {} bytes that are not the signature",
                    answer.len()
                )
            });
            matches
        }
    };
    if !accepted {
        packets.write(&denied).await?;
        return Ok(());
    }
    packets.write(&OK).await?;

    loop {
        let command = packets.read().await?;
        if let Ok(mut list) = recorded.commands.lock() {
            list.push(command.clone());
        }
        packets.sequence = 1;
        match command.first() {
            Some(0x01) | None => return Ok(()),
            Some(0x03) => {
                let query = String::from_utf8_lossy(&command[1..]).into_owned();
                if query.starts_with("SELECT @@global.server_id") {
                    let checksum = if script.checksum { "CRC32" } else { "NONE" };
                    let row = [script.server_id.to_string(), checksum.into(), "1".into()];
                    let columns = query.matches("@@").count();
                    result_set(
                        &mut packets,
                        &[row[..columns.min(3)].to_vec()],
                        columns.min(3),
                    )
                    .await?;
                } else if query.starts_with("SELECT @@global.server_uuid") {
                    result_set(&mut packets, &[vec![script.server_uuid.clone()]], 1).await?;
                } else if query.starts_with("SELECT @@global.binlog_format") {
                    if !query.contains("binlog_row_image") {
                        result_set(&mut packets, &[vec![script.binlog_format.clone()]], 1).await?;
                    } else if let Some(image) = &script.binlog_row_image {
                        let row = vec![script.binlog_format.clone(), image.clone()];
                        result_set(&mut packets, &[row], 2).await?;
                    } else {
                        packets
                            .write(&error_packet(
                                1193,
                                "Unknown system variable 'binlog_row_image'",
                            ))
                            .await?;
                    }
                } else if query.starts_with("SHOW SLAVE HOSTS")
                    || query.starts_with("SHOW REPLICAS")
                {
                    let rows: Vec<Vec<String>> = script
                        .replica_server_ids
                        .iter()
                        .map(|id| {
                            vec![
                                id.to_string(),
                                format!("replica-{id}"),
                                "3306".into(),
                                script.server_id.to_string(),
                                String::new(),
                            ]
                        })
                        .collect();
                    result_set(&mut packets, &rows, 5).await?;
                } else if query.starts_with("SHOW BINARY LOGS") {
                    let size: usize = script.events.iter().map(Vec::len).sum::<usize>() + 4;
                    let row = vec![script.file_name.clone(), size.to_string()];
                    result_set(&mut packets, &[row], 2).await?;
                } else if query.starts_with("SET ") {
                    packets.write(&OK).await?;
                } else {
                    packets.write(&error_packet(1064, "syntax error")).await?;
                }
            }
            Some(0x15) => packets.write(&OK).await?,
            Some(0x12) | Some(0x1e) => {
                let flags_at = if command[0] == 0x12 { 5 } else { 1 };
                let non_blocking = command.get(flags_at).is_some_and(|flags| flags & 1 != 0);
                let (position, events) = dump_events(script, &dump_start(&command));
                let mut packet = vec![0];
                packet.extend_from_slice(&fake_rotate(
                    script.server_id,
                    &script.file_name,
                    position,
                    script.checksum,
                ));
                packets.write(&packet).await?;
                for event in &events {
                    let mut packet = Vec::with_capacity(event.len() + 1);
                    packet.push(0);
                    packet.extend_from_slice(event);
                    packets.write(&packet).await?;
                }
                if let Some((code, message)) = &script.dump_error {
                    packets.write(&error_packet(*code, message)).await?;
                    return Ok(());
                }
                if non_blocking {
                    packets.write(&EOF).await?;
                } else {
                    // Stay connected, as a source with nothing new does.
                    let mut rest = [0u8; 1];
                    let _ = packets.stream.read(&mut rest).await;
                    return Ok(());
                }
            }
            Some(_) => {
                packets
                    .write(&error_packet(1047, "unknown command"))
                    .await?
            }
        }
    }
}
