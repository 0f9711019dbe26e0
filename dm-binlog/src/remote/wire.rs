//! The parts of the MySQL client/server protocol a replica needs, as pure functions over bytes:
//! the initial handshake, the handshake response, the password scrambles and MariaDB's ed25519
//! signature, OK/ERR/EOF packets, text result sets, and the replication commands
//! (`COM_REGISTER_SLAVE`, `COM_BINLOG_DUMP`, `COM_BINLOG_DUMP_GTID`).
//!
//! ```text
//! server                          replica (this crate)
//!   HandshakeV10      ---------->  parse_handshake
//!                     <----------  [ssl_request, then TLS]
//!                     <----------  handshake_response (mysql_native_password / caching_sha2_password
//!                                  / sha256_password)
//!   OK | ERR | AuthSwitch | AuthMoreData
//!   (AuthSwitch to client_ed25519: its 32-byte nonce  <----------  sign_ed25519, 64 bytes)
//!   (full authentication: the password in clear inside TLS, or `encrypt_password` with the
//!    server's RSA public key: OAEP, the password XOR the nonce)
//!                     <----------  COM_QUERY "SET @master_binlog_checksum=..." ...
//!                     <----------  COM_REGISTER_SLAVE, COM_BINLOG_DUMP(_GTID)
//!   00 <event> | 00 <event> | ... | FE (end, non-blocking) | FF ERR
//! ```
//!
//! Nothing here does I/O; every parser returns an error message naming the field it could not
//! read instead of panicking on short or odd packets.

use dm_core::MySqlGtidSet;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use crate::bytes::ByteReader;

/// Capability flags this client uses (`CLIENT_*` in the protocol documentation).
pub mod capability {
    /// Longer passwords (always set by modern clients).
    pub const LONG_PASSWORD: u32 = 1;
    /// Report found rows instead of affected rows.
    pub const FOUND_ROWS: u32 = 2;
    /// Column flags in column definitions.
    pub const LONG_FLAG: u32 = 4;
    /// A database name in the handshake response.
    pub const CONNECT_WITH_DB: u32 = 8;
    /// The 4.1 protocol.
    pub const PROTOCOL_41: u32 = 512;
    /// TLS: offered by the server, requested by the client with an SSL request packet.
    pub const SSL: u32 = 2048;
    /// Transactions flag in status.
    pub const TRANSACTIONS: u32 = 8192;
    /// 4.1 authentication.
    pub const SECURE_CONNECTION: u32 = 32768;
    /// Pluggable authentication.
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    /// Length-encoded auth response.
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
}

/// `COM_QUIT`.
pub const COM_QUIT: u8 = 0x01;
/// `COM_QUERY`.
pub const COM_QUERY: u8 = 0x03;
/// `COM_BINLOG_DUMP`.
pub const COM_BINLOG_DUMP: u8 = 0x12;
/// `COM_REGISTER_SLAVE`.
pub const COM_REGISTER_SLAVE: u8 = 0x15;
/// `COM_BINLOG_DUMP_GTID` (MySQL).
pub const COM_BINLOG_DUMP_GTID: u8 = 0x1e;

/// `COM_BINLOG_DUMP` flag: send an EOF packet at the end of the binlog instead of waiting.
pub const DUMP_NON_BLOCK: u16 = 0x01;
/// MariaDB `COM_BINLOG_DUMP` flag: send ANNOTATE_ROWS events.
pub const DUMP_SEND_ANNOTATE_ROWS: u16 = 0x02;
/// MySQL `COM_BINLOG_DUMP_GTID` flag: the file name and position are used.
pub const DUMP_THROUGH_POSITION: u16 = 0x02;
/// MySQL `COM_BINLOG_DUMP_GTID` flag: the GTID set is used.
pub const DUMP_THROUGH_GTID: u16 = 0x04;

/// The largest payload of one physical packet; a payload this long continues in the next one.
pub const MAX_PACKET_PAYLOAD: usize = 0xff_ff_ff;

/// The largest logical packet a replica accepts: one event of at most
/// [`crate::event::MAXIMUM_EVENT_SIZE`] behind its one-byte OK marker (a server's
/// `max_allowed_packet` is at most 1 GiB).
pub const MAXIMUM_LOGICAL_PACKET: u64 = crate::event::MAXIMUM_EVENT_SIZE + 1;

/// The payload length a physical packet's header announces, when the logical packet it
/// continues (`received` bytes so far) stays within [`MAXIMUM_LOGICAL_PACKET`]; otherwise the
/// total the packet would reach. A reader checks this before reading the payload, and reads it
/// as it arrives: a header alone never makes it allocate.
pub fn packet_length(header: [u8; 4], received: usize) -> Result<usize, u64> {
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]);
    let total = received as u64 + u64::from(length);
    if total > MAXIMUM_LOGICAL_PACKET {
        return Err(total);
    }
    Ok(length as usize)
}

/// The server's first packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// `8.0.36` or `5.5.5-10.11.6-MariaDB-...`.
    pub server_version: String,
    /// The connection id (for `KILL`).
    pub connection_id: u32,
    /// The 20-byte nonce the password is scrambled with.
    pub nonce: Vec<u8>,
    /// The server's capability flags.
    pub capabilities: u32,
    /// The authentication plugin the server proposes.
    pub auth_plugin: String,
}

impl Handshake {
    /// Whether the server is MariaDB.
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }
}

/// Parses the initial handshake packet (protocol version 10).
pub fn parse_handshake(payload: &[u8]) -> Result<Handshake, String> {
    let mut reader = ByteReader::new(payload);
    let protocol = reader.u8("protocol version")?;
    if protocol == 0xff {
        let error = parse_error(payload)?;
        return Err(format!("the server refused the connection: {error}"));
    }
    if protocol != 10 {
        return Err(format!(
            "protocol version {protocol} is not supported (10 is the MySQL 4.1+ protocol)"
        ));
    }
    let server_version = null_terminated(&mut reader, "server version")?;
    let connection_id = reader.u32("connection id")?;
    let mut nonce = reader.take(8, "auth data part 1")?.to_vec();
    reader.u8("filler")?;
    let capabilities_low = u32::from(reader.u16("capability flags")?);
    let mut capabilities = capabilities_low;
    let mut auth_plugin = String::from("mysql_native_password");
    if reader.remaining() > 0 {
        reader.u8("character set")?;
        reader.u16("status flags")?;
        capabilities |= u32::from(reader.u16("upper capability flags")?) << 16;
        let auth_data_length = reader.u8("auth data length")?;
        reader.take(10, "reserved bytes")?;
        if capabilities & capability::SECURE_CONNECTION != 0 {
            let length = usize::from(auth_data_length).saturating_sub(8).max(13);
            let part = reader.take(length, "auth data part 2")?;
            // The part ends with a NUL that is not part of the nonce.
            let part = part.strip_suffix(&[0]).unwrap_or(part);
            nonce.extend_from_slice(part);
        }
        if capabilities & capability::PLUGIN_AUTH != 0 && reader.remaining() > 0 {
            auth_plugin = null_terminated(&mut reader, "auth plugin name")?;
        }
    }
    Ok(Handshake {
        server_version,
        connection_id,
        nonce,
        capabilities,
        auth_plugin,
    })
}

fn null_terminated(reader: &mut ByteReader<'_>, what: &str) -> Result<String, String> {
    let rest = reader.rest();
    let end = rest
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(rest.len());
    let text = String::from_utf8_lossy(&rest[..end]).into_owned();
    // Put back what follows the terminator.
    let consumed = (end + 1).min(rest.len());
    *reader = ByteReader::new(&rest[consumed..]);
    if end == rest.len() && rest.is_empty() {
        return Err(format!("{what} is missing"));
    }
    Ok(text)
}

/// The capabilities this client asks for (intersected with the server's).
pub fn client_capabilities(server: u32) -> u32 {
    let wanted = capability::LONG_PASSWORD
        | capability::FOUND_ROWS
        | capability::LONG_FLAG
        | capability::PROTOCOL_41
        | capability::TRANSACTIONS
        | capability::SECURE_CONNECTION
        | capability::PLUGIN_AUTH
        | capability::PLUGIN_AUTH_LENENC_CLIENT_DATA;
    wanted & server
}

/// Builds the handshake response (HandshakeResponse41), utf8mb4, no database.
pub fn handshake_response(
    capabilities: u32,
    user: &str,
    auth_response: &[u8],
    auth_plugin: &str,
) -> Vec<u8> {
    let mut packet = Vec::with_capacity(64 + user.len() + auth_response.len());
    packet.extend_from_slice(&capabilities.to_le_bytes());
    packet.extend_from_slice(&(MAX_PACKET_PAYLOAD as u32).to_le_bytes());
    // utf8mb4_general_ci
    packet.push(45);
    packet.extend_from_slice(&[0; 23]);
    packet.extend_from_slice(user.as_bytes());
    packet.push(0);
    if capabilities & capability::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        put_length_encoded(&mut packet, auth_response.len() as u64);
        packet.extend_from_slice(auth_response);
    } else {
        packet.push(auth_response.len().min(255) as u8);
        packet.extend_from_slice(&auth_response[..auth_response.len().min(255)]);
    }
    if capabilities & capability::PLUGIN_AUTH != 0 {
        packet.extend_from_slice(auth_plugin.as_bytes());
        packet.push(0);
    }
    packet
}

/// The SSL request: the first 32 bytes of a handshake response, with `CLIENT_SSL` set. The
/// TLS handshake follows on the same socket, then the whole handshake response.
pub fn ssl_request(capabilities: u32) -> Vec<u8> {
    let mut packet = Vec::with_capacity(32);
    packet.extend_from_slice(&(capabilities | capability::SSL).to_le_bytes());
    packet.extend_from_slice(&(MAX_PACKET_PAYLOAD as u32).to_le_bytes());
    // utf8mb4_general_ci, as the handshake response
    packet.push(45);
    packet.extend_from_slice(&[0; 23]);
    packet
}

/// The password as `caching_sha2_password` and `sha256_password` send it without TLS:
/// `password NUL` XOR the nonce (repeated), encrypted with the server's RSA public key
/// (`public_key_pem`, SPKI or PKCS#1 PEM) with OAEP padding (SHA-1, as MySQL 8.0.5 and later).
pub fn encrypt_password(
    password: &[u8],
    nonce: &[u8],
    public_key_pem: &[u8],
) -> Result<Vec<u8>, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(public_key_pem)
        .map_err(|_| "the server's public key is not PEM text".to_owned())?;
    let text = text.trim_end_matches('\0');
    let key = rsa::RsaPublicKey::from_public_key_pem(text)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(text))
        .map_err(|error| format!("the server's public key is not an RSA PEM key: {error}"))?;
    let nonce = nonce_prefix(nonce);
    if nonce.is_empty() {
        return Err("the server sent no nonce to encrypt the password with".into());
    }
    let mut message: Vec<u8> = password.to_vec();
    message.push(0);
    for (index, byte) in message.iter_mut().enumerate() {
        *byte ^= nonce[index % nonce.len()];
    }
    key.encrypt(
        &mut rsa::rand_core::OsRng,
        rsa::Oaep::new::<Sha1>(),
        &message,
    )
    .map_err(|error| {
        format!("the password cannot be encrypted with the server's public key: {error}")
    })
}

/// `mysql_native_password`: `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`; empty for
/// an empty password.
pub fn scramble_native(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(nonce_prefix(nonce));
    hasher.update(stage2);
    let mix = hasher.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// `caching_sha2_password` fast authentication:
/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)`; empty for an empty password.
pub fn scramble_caching_sha2(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut hasher = Sha256::new();
    hasher.update(stage2);
    hasher.update(nonce_prefix(nonce));
    let mix = hasher.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// The length of the nonce MariaDB's `ed25519` plugin signs.
pub const ED25519_NONCE_LENGTH: usize = 32;

/// MariaDB's `client_ed25519`: the 64-byte Ed25519 signature (RFC 8032, `R || S`) of the
/// server's 32-byte nonce. The key comes from the password the way MariaDB derives it:
/// `SHA-512(password)`, whose first half, clamped, is the secret scalar (the public key the
/// server stores is that scalar times the base point) and whose second half is the prefix the
/// signature's own nonce is hashed from. RFC 8032 hashes a 32-byte seed the same way, so a
/// 32-byte password signs as that seed would. An empty password signs too (with `SHA-512` of
/// nothing), as MariaDB's client does; MariaDB 10.11 stores no key for `PASSWORD('')` and
/// refuses every signature for such a user, its own client's too. Refused, as MariaDB's client
/// refuses it: a nonce that is not 32 bytes.
pub fn sign_ed25519(password: &[u8], nonce: &[u8]) -> Result<[u8; 64], String> {
    if nonce.len() != ED25519_NONCE_LENGTH {
        return Err(format!(
            "the server sent a {}-byte nonce for client_ed25519, which signs exactly {ED25519_NONCE_LENGTH} bytes",
            nonce.len()
        ));
    }
    Ok(ed25519_signature(password, nonce))
}

/// Ed25519 (RFC 8032, section 5.1.6) of `message`, with `SHA-512(password)` as the expanded
/// secret key.
fn ed25519_signature(password: &[u8], message: &[u8]) -> [u8; 64] {
    use curve25519_dalek::EdwardsPoint;
    use curve25519_dalek::scalar::{Scalar, clamp_integer};
    let digest = Sha512::digest(password);
    let (secret_half, prefix) = digest.split_at(32);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(secret_half);
    let secret = Scalar::from_bytes_mod_order(clamp_integer(secret));
    let public_key = EdwardsPoint::mul_base(&secret).compress();
    // r = SHA-512(prefix || message), R = rB (the signature's own nonce and its commitment)
    let mut hasher = Sha512::new();
    hasher.update(prefix);
    hasher.update(message);
    let signature_nonce = Scalar::from_bytes_mod_order_wide(&wide(&hasher.finalize()));
    let commitment = EdwardsPoint::mul_base(&signature_nonce).compress();
    // k = SHA-512(R || A || message), S = r + k s
    let mut hasher = Sha512::new();
    hasher.update(commitment.as_bytes());
    hasher.update(public_key.as_bytes());
    hasher.update(message);
    let challenge = Scalar::from_bytes_mod_order_wide(&wide(&hasher.finalize()));
    let response = signature_nonce + challenge * secret;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(commitment.as_bytes());
    signature[32..].copy_from_slice(response.as_bytes());
    signature
}

/// A SHA-512 digest as the array the scalar reduction takes.
fn wide(digest: &[u8]) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    bytes.copy_from_slice(digest);
    bytes
}

/// The scramble uses the first 20 bytes of the nonce.
fn nonce_prefix(nonce: &[u8]) -> &[u8] {
    &nonce[..nonce.len().min(20)]
}

/// An ERR packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The MySQL error number (1236 for replication errors).
    pub code: u16,
    /// The SQL state, when sent.
    pub state: String,
    /// The message.
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "ERROR {}", self.code)?;
        if !self.state.is_empty() {
            write!(formatter, " ({})", self.state)?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// Parses an ERR packet (`ff code [# state] message`).
pub fn parse_error(payload: &[u8]) -> Result<ServerError, String> {
    let mut reader = ByteReader::new(payload);
    let marker = reader.u8("ERR marker")?;
    if marker != 0xff {
        return Err(format!(
            "expected an ERR packet, found marker {marker:#04x}"
        ));
    }
    let code = reader.u16("error code")?;
    let mut rest = reader.rest();
    let mut state = String::new();
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        state = String::from_utf8_lossy(&rest[1..6]).into_owned();
        rest = &rest[6..];
    }
    Ok(ServerError {
        code,
        state,
        message: String::from_utf8_lossy(rest).into_owned(),
    })
}

/// What kind of packet a payload is, by its first byte and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// `00`: OK (or, in a binlog stream, an event).
    Ok,
    /// `ff`: ERR.
    Error,
    /// `fe` and shorter than 9 bytes: EOF.
    Eof,
    /// Anything else (result set data, auth switch, more data).
    Other,
}

/// Classifies a payload.
pub fn packet_kind(payload: &[u8]) -> PacketKind {
    match payload.first() {
        Some(0x00) => PacketKind::Ok,
        Some(0xff) => PacketKind::Error,
        Some(0xfe) if payload.len() < 9 => PacketKind::Eof,
        _ => PacketKind::Other,
    }
}

/// An authentication-switch request: the plugin to use and its new nonce, as sent. The SHA
/// plugins send 20 bytes and a NUL (their scrambles use the first 20); MariaDB's ed25519 sends
/// 32 random bytes and no NUL, so a last byte 0 is part of the nonce and is kept.
pub fn parse_auth_switch(payload: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut reader = ByteReader::new(payload);
    reader.u8("auth switch marker")?;
    let plugin = null_terminated(&mut reader, "auth plugin name")?;
    Ok((plugin, reader.rest().to_vec()))
}

/// Appends a length-encoded integer.
pub fn put_length_encoded(buffer: &mut Vec<u8>, value: u64) {
    if value < 251 {
        buffer.push(value as u8);
    } else if value < 1 << 16 {
        buffer.push(0xfc);
        buffer.extend_from_slice(&(value as u16).to_le_bytes());
    } else if value < 1 << 24 {
        buffer.push(0xfd);
        buffer.extend_from_slice(&(value as u32).to_le_bytes()[..3]);
    } else {
        buffer.push(0xfe);
        buffer.extend_from_slice(&value.to_le_bytes());
    }
}

/// One row of a text result set: each column's text, `None` for NULL.
pub type TextRow = Vec<Option<String>>;

/// Parses a text-protocol row (`lenenc string | fb` per column).
pub fn parse_text_row(payload: &[u8]) -> Result<TextRow, String> {
    let mut reader = ByteReader::new(payload);
    let mut row = Vec::new();
    while reader.remaining() > 0 {
        if reader.peek() == Some(0xfb) {
            reader.u8("NULL marker")?;
            row.push(None);
            continue;
        }
        let length = reader.length_encoded("column length")?;
        let length = usize::try_from(length).map_err(|_| format!("column length {length}"))?;
        let bytes = reader.take(length, "column value")?;
        row.push(Some(String::from_utf8_lossy(bytes).into_owned()));
    }
    Ok(row)
}

/// `COM_QUERY`.
pub fn query_command(sql: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(1 + sql.len());
    packet.push(COM_QUERY);
    packet.extend_from_slice(sql.as_bytes());
    packet
}

/// `COM_REGISTER_SLAVE`: announces this replica (shown by `SHOW SLAVE HOSTS`).
pub fn register_replica_command(server_id: u32, host: &str, port: u16) -> Vec<u8> {
    let host = &host.as_bytes()[..host.len().min(255)];
    let mut packet = Vec::with_capacity(32 + host.len());
    packet.push(COM_REGISTER_SLAVE);
    packet.extend_from_slice(&server_id.to_le_bytes());
    packet.push(host.len() as u8);
    packet.extend_from_slice(host);
    // user and password: not reported
    packet.push(0);
    packet.push(0);
    packet.extend_from_slice(&port.to_le_bytes());
    // replication rank, master id
    packet.extend_from_slice(&0u32.to_le_bytes());
    packet.extend_from_slice(&0u32.to_le_bytes());
    packet
}

/// `COM_BINLOG_DUMP` from `file` at `position` (which must fit 32 bits).
pub fn binlog_dump_command(server_id: u32, file: &str, position: u32, flags: u16) -> Vec<u8> {
    let mut packet = Vec::with_capacity(11 + file.len());
    packet.push(COM_BINLOG_DUMP);
    packet.extend_from_slice(&position.to_le_bytes());
    packet.extend_from_slice(&flags.to_le_bytes());
    packet.extend_from_slice(&server_id.to_le_bytes());
    packet.extend_from_slice(file.as_bytes());
    packet
}

/// `COM_BINLOG_DUMP_GTID` (MySQL): from `file:position` (64-bit) and/or after the GTIDs of
/// `gtid_set`. Tagged GTIDs cannot be encoded in this request's classic format.
pub fn binlog_dump_gtid_command(
    server_id: u32,
    file: &str,
    position: u64,
    gtid_set: Option<&MySqlGtidSet>,
    mut flags: u16,
) -> Result<Vec<u8>, String> {
    let mut packet = Vec::with_capacity(64 + file.len());
    if gtid_set.is_some() {
        flags |= DUMP_THROUGH_GTID;
    } else {
        flags |= DUMP_THROUGH_POSITION;
    }
    packet.push(COM_BINLOG_DUMP_GTID);
    packet.extend_from_slice(&flags.to_le_bytes());
    packet.extend_from_slice(&server_id.to_le_bytes());
    packet.extend_from_slice(&(file.len() as u32).to_le_bytes());
    packet.extend_from_slice(file.as_bytes());
    packet.extend_from_slice(&position.to_le_bytes());
    if let Some(set) = gtid_set {
        let encoded = encode_gtid_set(set)?;
        packet.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
        packet.extend_from_slice(&encoded);
    }
    Ok(packet)
}

/// MySQL's binary GTID set encoding (`Gtid_set::encode`): source count, then per source its UUID,
/// interval count and half-open `[start, end)` intervals, all little-endian `u64`.
pub fn encode_gtid_set(set: &MySqlGtidSet) -> Result<Vec<u8>, String> {
    let mut sources = Vec::new();
    for (uuid, tags) in set.sources() {
        for (tag, intervals) in tags {
            if !tag.is_empty() {
                return Err(format!(
                    "the GTID set has tagged GTIDs ({uuid}:{tag}:...), which this request cannot carry; start from a file position instead"
                ));
            }
            if !intervals.is_empty() {
                sources.push((uuid, intervals));
            }
        }
    }
    let mut encoded = Vec::with_capacity(8 + sources.len() * 40);
    encoded.extend_from_slice(&(sources.len() as u64).to_le_bytes());
    for (uuid, intervals) in sources {
        encoded.extend_from_slice(&uuid.0);
        encoded.extend_from_slice(&(intervals.intervals().len() as u64).to_le_bytes());
        for (first, last) in intervals.intervals() {
            encoded.extend_from_slice(&first.to_le_bytes());
            encoded.extend_from_slice(&last.saturating_add(1).to_le_bytes());
        }
    }
    Ok(encoded)
}

/// Splits a payload into physical packets (`3-byte length | sequence | bytes`), starting at
/// `sequence`; a payload that is a multiple of the maximum ends with an empty packet. Returns the
/// next sequence number.
pub fn frame_packets(payload: &[u8], mut sequence: u8, output: &mut Vec<u8>) -> u8 {
    let mut chunks = payload.chunks(MAX_PACKET_PAYLOAD).peekable();
    let mut last_length = 0;
    while let Some(chunk) = chunks.next() {
        output.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
        output.push(sequence);
        output.extend_from_slice(chunk);
        sequence = sequence.wrapping_add(1);
        last_length = chunk.len();
        if chunks.peek().is_none() {
            break;
        }
    }
    if payload.is_empty() || last_length == MAX_PACKET_PAYLOAD {
        output.extend_from_slice(&[0, 0, 0, sequence]);
        sequence = sequence.wrapping_add(1);
    }
    sequence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn packet_lengths_stop_at_the_event_limit() {
        assert_eq!(packet_length([3, 0, 0, 0], 0), Ok(3));
        assert_eq!(
            packet_length([0xff, 0xff, 0xff, 7], 0),
            Ok(MAX_PACKET_PAYLOAD)
        );
        // 64 full packets are 1 GiB - 64: the 65th may carry 65 more bytes, not more.
        let received = 64 * MAX_PACKET_PAYLOAD;
        assert_eq!(packet_length([65, 0, 0, 0], received), Ok(65));
        assert_eq!(
            packet_length([66, 0, 0, 0], received),
            Err(MAXIMUM_LOGICAL_PACKET + 1)
        );
    }

    #[test]
    fn native_scramble_matches_the_servers_password_hash() {
        // The server stores SHA1(SHA1(password)); check the scramble inverts to it:
        // SHA1(scramble XOR SHA1(nonce + stored)) == stored.
        let nonce = b"0123456789abcdefghij";
        let scramble = scramble_native(b"secret", nonce);
        let stored = Sha1::digest(Sha1::digest(b"secret"));
        let mut hasher = Sha1::new();
        hasher.update(nonce);
        hasher.update(stored);
        let mix = hasher.finalize();
        let stage1: Vec<u8> = scramble
            .iter()
            .zip(mix.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(hex(&Sha1::digest(&stage1)), hex(&stored));
        assert!(scramble_native(b"", nonce).is_empty());
    }

    #[test]
    fn caching_sha2_scramble_inverts_to_the_password_digest() {
        let nonce = b"abcdefghij0123456789";
        let scramble = scramble_caching_sha2(b"pw", nonce);
        let stage2 = Sha256::digest(Sha256::digest(b"pw"));
        let mut hasher = Sha256::new();
        hasher.update(stage2);
        hasher.update(nonce);
        let mix = hasher.finalize();
        let stage1: Vec<u8> = scramble
            .iter()
            .zip(mix.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(hex(&stage1), hex(&Sha256::digest(b"pw")));
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn ed25519_signatures_match_rfc_8032() {
        // RFC 8032 section 7.1, TESTs 1-3: a 32-byte password is hashed as the RFC's seed is.
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (seed, message, signature) in vectors {
            assert_eq!(
                hex(&ed25519_signature(&unhex(seed), &unhex(message))),
                signature
            );
        }
    }

    #[test]
    fn ed25519_signature_of_a_mariadb_password_is_the_known_answer() {
        // Computed with an independent implementation (RFC 8032's reference algorithm in
        // Python), whose public key for the password `pw` is the one MariaDB 10.11 stores for
        // `IDENTIFIED VIA ed25519 USING PASSWORD('pw')` (vRq+ROSzhW4MwhdoPvlkL1fHkT0w6ZDDbTpVQwSNQ90).
        // The nonce ends in 0: every byte is signed.
        let nonce: Vec<u8> = (1..32).chain([0]).collect();
        assert_eq!(
            hex(&sign_ed25519(b"s3cr3t-Pa55", &nonce).expect("32 bytes")),
            "7c5aa94fb16b2b78a4e5f3e8e0d886abbbeeb328d8f6120642c73d2d4d6adfcdda3c594cf76121e35af1035e3fbb9ebced4f0ddc3b2abd1275d1c52427bd2a07"
        );
    }

    #[test]
    fn ed25519_signs_32_byte_nonces_only_and_empty_passwords_too() {
        let nonce = [7u8; ED25519_NONCE_LENGTH];
        let signature = sign_ed25519(b"s3cr3t", &nonce).expect("32 bytes");
        // Deterministic, and bound to the password and the nonce.
        assert_eq!(
            signature,
            sign_ed25519(b"s3cr3t", &nonce).expect("32 bytes")
        );
        assert_ne!(
            signature,
            sign_ed25519(b"s3cr3T", &nonce).expect("32 bytes")
        );
        assert_ne!(
            signature,
            sign_ed25519(b"s3cr3t", &[8u8; 32]).expect("32 bytes")
        );
        // An empty password signs (with SHA-512 of nothing), as MariaDB's client does.
        assert_eq!(
            sign_ed25519(b"", &nonce).expect("32 bytes"),
            ed25519_signature(b"", &nonce)
        );
        for length in [0, 20, 21, 31, 33] {
            let error = sign_ed25519(b"s3cr3t", &vec![1; length]).expect_err("wrong length");
            assert!(error.contains(&format!("{length}-byte nonce")), "{error}");
        }
    }

    #[test]
    fn auth_switch_keeps_a_last_zero_byte_of_the_nonce() {
        // MariaDB's ed25519 switch: 32 random bytes, no terminator; a last byte 0 is data.
        let mut packet = vec![0xfe];
        packet.extend_from_slice(b"client_ed25519\0");
        let mut nonce = [9u8; 32];
        nonce[31] = 0;
        packet.extend_from_slice(&nonce);
        let (plugin, data) = parse_auth_switch(&packet).expect("parses");
        assert_eq!(plugin, "client_ed25519");
        assert_eq!(data, nonce);
        // The SHA plugins' 20 bytes and NUL: their scrambles read the first 20.
        let mut packet = vec![0xfe];
        packet.extend_from_slice(b"mysql_native_password\0abcdefghij0123456789\0");
        let (plugin, data) = parse_auth_switch(&packet).expect("parses");
        assert_eq!(plugin, "mysql_native_password");
        assert_eq!(nonce_prefix(&data), b"abcdefghij0123456789");
        assert_eq!(
            scramble_native(b"pw", &data),
            scramble_native(b"pw", b"abcdefghij0123456789")
        );
    }

    #[test]
    fn handshake_parses_and_short_packets_are_errors() {
        let mut packet = vec![10];
        packet.extend_from_slice(b"10.11.6-MariaDB\0");
        packet.extend_from_slice(&7u32.to_le_bytes());
        packet.extend_from_slice(b"abcdefgh\0");
        let capabilities =
            capability::PROTOCOL_41 | capability::SECURE_CONNECTION | capability::PLUGIN_AUTH;
        packet.extend_from_slice(&(capabilities as u16).to_le_bytes());
        packet.push(45);
        packet.extend_from_slice(&2u16.to_le_bytes());
        packet.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
        packet.push(21);
        packet.extend_from_slice(&[0; 10]);
        packet.extend_from_slice(b"ijklmnopqrst\0");
        packet.extend_from_slice(b"mysql_native_password\0");
        let handshake = parse_handshake(&packet).expect("parses");
        assert_eq!(handshake.connection_id, 7);
        assert_eq!(handshake.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(handshake.auth_plugin, "mysql_native_password");
        assert!(handshake.is_mariadb());
        for cut in 0..packet.len() - 30 {
            // Never panics; too short is an error.
            let _ = parse_handshake(&packet[..cut]);
        }
        assert!(parse_handshake(&packet[..10]).is_err());
    }

    #[test]
    fn error_packets_keep_code_state_and_message() {
        let mut packet = vec![0xff];
        packet.extend_from_slice(&1236u16.to_le_bytes());
        packet.extend_from_slice(b"#HY000Could not find first log file name");
        let error = parse_error(&packet).expect("parses");
        assert_eq!(error.code, 1236);
        assert_eq!(error.state, "HY000");
        assert_eq!(
            error.to_string(),
            "ERROR 1236 (HY000): Could not find first log file name"
        );
    }

    #[test]
    fn text_rows_have_nulls_and_values() {
        let mut packet = vec![3];
        packet.extend_from_slice(b"abc");
        packet.push(0xfb);
        packet.push(0);
        assert_eq!(
            parse_text_row(&packet).expect("parses"),
            vec![Some("abc".into()), None, Some(String::new())]
        );
        assert!(parse_text_row(&[5, b'a']).is_err());
    }

    #[test]
    fn gtid_sets_encode_as_half_open_intervals() {
        let set =
            MySqlGtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7").expect("valid set");
        let encoded = encode_gtid_set(&set).expect("untagged");
        assert_eq!(&encoded[..8], &1u64.to_le_bytes());
        assert_eq!(&encoded[24..32], &2u64.to_le_bytes());
        assert_eq!(&encoded[32..40], &1u64.to_le_bytes());
        assert_eq!(&encoded[40..48], &6u64.to_le_bytes());
        assert_eq!(&encoded[48..56], &7u64.to_le_bytes());
        assert_eq!(&encoded[56..64], &8u64.to_le_bytes());
        let tagged =
            MySqlGtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:blue:1").expect("valid set");
        assert!(encode_gtid_set(&tagged).is_err());
    }

    #[test]
    fn long_payloads_split_into_physical_packets() {
        let payload = vec![7u8; MAX_PACKET_PAYLOAD + 10];
        let mut output = Vec::new();
        let next = frame_packets(&payload, 0, &mut output);
        assert_eq!(next, 2);
        assert_eq!(&output[..4], &[0xff, 0xff, 0xff, 0]);
        let second = 4 + MAX_PACKET_PAYLOAD;
        assert_eq!(&output[second..second + 4], &[10, 0, 0, 1]);
        let mut exact = Vec::new();
        assert_eq!(
            frame_packets(&vec![0u8; MAX_PACKET_PAYLOAD], 3, &mut exact),
            5
        );
        assert_eq!(&exact[exact.len() - 4..], &[0, 0, 0, 4]);
    }
}
