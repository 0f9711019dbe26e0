//! Passwords that DM encrypted (`dmctl encrypt`, and what `dmctl config export` writes), read the
//! way DM reads them: decrypt, or use the text as the plain password when it is not a ciphertext.
//!
//! ```text
//! password text --base64--> bytes = iv (16) | '@' | AES-256-CFB(plain)
//!      |  not base64, shorter than 17 bytes, or no '@' at byte 16 --> PasswordText::Plain
//!      '- decrypt with DM's built-in key --> UTF-8 text   --> PasswordText::Decrypted(plain)
//!                                        '-> other bytes  --> PasswordText::NotDecryptable
//! ```
//!
//! DM up to v7.6 encrypted with one built-in AES-256 key, and `dmctl encrypt` of those versions
//! wrote what users keep in their files; that key is the one here. DM v8.0 removed it: a
//! cluster decrypts only with the key file named by `secret-key-path` in dm-master's and
//! dm-worker's configuration. Such a key is not supported here (there is no such setting): a
//! text that has a ciphertext's shape but does not decrypt to text with the built-in key is used
//! as the plain password, as DM uses any text it cannot decrypt, and the task or source warns
//! about it.
//!
//! CFB here is Go's `cipher.NewCFBDecrypter`: full-block (128-bit) feedback, no padding.

use aes::Aes256;
use base64::Engine;
use cfb_mode::cipher::KeyIvInit;

/// DM's built-in key before v8.0 (`dm/pkg/encrypt`, removed in tiflow #9494).
const DM_BUILT_IN_KEY: [u8; 32] = [
    0xa5, 0x29, 0xb7, 0x66, 0x59, 0x97, 0xf0, 0x43, 0xa3, 0x0a, 0xc8, 0xfa, 0xdc, 0xb5, 0x1d, 0x6a,
    0xa0, 0x32, 0xc2, 0x26, 0xab, 0x5b, 0x77, 0x50, 0x53, 0x0b, 0x12, 0xb8, 0xc1, 0xa1, 0x6a, 0x48,
];

/// The length of AES's block, and so of the initialisation vector in front of a ciphertext.
const IV_LENGTH: usize = 16;

/// What a password text in a DM file is. Its `Debug` does not show the decrypted password.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordText {
    /// Not a DM ciphertext: the text is the password.
    Plain,
    /// A DM ciphertext; this is the password it holds.
    Decrypted(String),
    /// A DM ciphertext's shape, but the built-in key does not turn it into text: encrypted with a
    /// custom key (`secret-key-path`), or a plain password that happens to look like one. The
    /// text is used as the password.
    NotDecryptable,
}

impl std::fmt::Debug for PasswordText {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordText::Plain => formatter.write_str("Plain"),
            PasswordText::Decrypted(password) => formatter
                .debug_tuple("Decrypted")
                .field(&dm_core::Redacted(password))
                .finish(),
            PasswordText::NotDecryptable => formatter.write_str("NotDecryptable"),
        }
    }
}

/// Reads a password text as DM does (see the module documentation).
pub fn decrypt_dm_password(text: &str) -> PasswordText {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
        return PasswordText::Plain;
    };
    if bytes.len() < IV_LENGTH + 1 || bytes[IV_LENGTH] != b'@' {
        return PasswordText::Plain;
    }
    let (iv, ciphertext) = (&bytes[..IV_LENGTH], &bytes[IV_LENGTH + 1..]);
    let mut plain = ciphertext.to_vec();
    let Ok(decryptor) = cfb_mode::Decryptor::<Aes256>::new_from_slices(&DM_BUILT_IN_KEY, iv) else {
        return PasswordText::NotDecryptable;
    };
    decryptor.decrypt(&mut plain);
    match String::from_utf8(plain) {
        Ok(text) if !text.chars().any(char::is_control) => PasswordText::Decrypted(text),
        _ => PasswordText::NotDecryptable,
    }
}

/// The password a DM password text stands for: its plain text when it decrypts, else itself.
pub fn password_of(text: &str) -> String {
    match decrypt_dm_password(text) {
        PasswordText::Decrypted(plain) => plain,
        PasswordText::Plain | PasswordText::NotDecryptable => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encrypts as `dmctl encrypt` of DM before v8.0 did, with a chosen IV.
    fn encrypt(plain: &str, iv: [u8; IV_LENGTH]) -> String {
        let mut ciphertext = plain.as_bytes().to_vec();
        cfb_mode::Encryptor::<Aes256>::new_from_slices(&DM_BUILT_IN_KEY, &iv)
            .expect("key and iv lengths")
            .encrypt(&mut ciphertext);
        let mut bytes = iv.to_vec();
        bytes.push(b'@');
        bytes.extend_from_slice(&ciphertext);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn ciphertexts_of_dm_decrypt_to_their_passwords() {
        // Made with OpenSSL (`openssl enc -aes-256-cfb -K <DM's key> -iv 000102...0f`), an
        // implementation independent of this one.
        assert_eq!(
            decrypt_dm_password("AAECAwQFBgcICQoLDA0OD0BU4TkekPRHjMAJ3R0lWu4="),
            PasswordText::Decrypted("upstream-secret".into())
        );
        assert_eq!(
            decrypt_dm_password("8OHSw7Sllod4aVpLPC0eD0CgX/F6x+A="),
            PasswordText::Decrypted("123456".into())
        );
        assert_eq!(
            encrypt("upstream-secret", std::array::from_fn(|index| index as u8)),
            "AAECAwQFBgcICQoLDA0OD0BU4TkekPRHjMAJ3R0lWu4="
        );
        for plain in [
            "",
            "p",
            "a longer password with spaces and ünïcode",
            "x@y:z/+=",
        ] {
            assert_eq!(
                decrypt_dm_password(&encrypt(plain, [7; IV_LENGTH])),
                PasswordText::Decrypted(plain.to_owned()),
                "{plain}"
            );
            assert_eq!(password_of(&encrypt(plain, [9; IV_LENGTH])), plain);
        }
    }

    #[test]
    fn plain_passwords_stay_as_they_are() {
        for plain in [
            "",
            "123456",
            "secret",
            "abc=",
            "not base64 at all!",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==",
        ] {
            assert_eq!(decrypt_dm_password(plain), PasswordText::Plain, "{plain}");
            assert_eq!(password_of(plain), plain);
        }
    }

    #[test]
    fn a_ciphertext_of_another_key_is_used_as_written() {
        // The shape of a ciphertext (16 bytes, '@', then bytes), encrypted with some other key:
        // its decryption under DM's key is not text.
        let mut bytes = vec![0x11; IV_LENGTH];
        bytes.push(b'@');
        bytes.extend_from_slice(&[0x00, 0xff, 0x80, 0x01, 0xfe, 0x02, 0x90, 0x91]);
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(decrypt_dm_password(&text), PasswordText::NotDecryptable);
        assert_eq!(password_of(&text), text);
    }
}
