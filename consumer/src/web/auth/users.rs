//! `DASHBOARD_USERS_FILE`: `name:hash` lines in the manner of htpasswd, each hash an argon2id
//! PHC string as `consumer hash-password` prints it.

use argon2::password_hash::{PasswordHashString, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use std::collections::HashMap;

/// The people who may log in. `Debug` shows how many, never a hash.
pub struct Users {
    hashes: HashMap<String, PasswordHashString>,
    /// Checked for names that do not exist, so they take as long as a wrong password.
    dummy: PasswordHashString,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} configured)", self.hashes.len())
    }
}

impl Users {
    /// Parses the file's text; errors name the line, never its content (it holds hashes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut hashes = HashMap::new();
        let mut first_params = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, hash)) = line.split_once(':') else {
                return Err(format!("line {number}: expected name:hash"));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("line {number}: the name is empty"));
            }
            let parsed = PasswordHash::new(hash.trim()).map_err(|_| {
                format!(
                    "line {number}: the hash is not a PHC string (use `consumer hash-password`)"
                )
            })?;
            if parsed.algorithm != Algorithm::Argon2id.ident() {
                return Err(format!("line {number}: the hash is not argon2id"));
            }
            let params = Params::try_from(&parsed)
                .map_err(|e| format!("line {number}: unusable argon2 parameters ({e})"))?;
            first_params.get_or_insert(params);
            if hashes.insert(name.to_owned(), parsed.serialize()).is_some() {
                return Err(format!("line {number}: {name:?} is listed twice"));
            }
        }
        let Some(params) = first_params else {
            return Err("no users in the file".into());
        };
        let dummy = hash_with(params, b"not anyone's password")
            .map_err(|e| format!("cannot prepare the login check ({e})"))?;
        Ok(Self { hashes, dummy })
    }

    /// True when `name` exists and `password` is theirs. An unknown name costs one argon2
    /// check as well, so neither the answer nor its time tells which names exist.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        let (hash, known) = match self.hashes.get(name) {
            Some(hash) => (hash, true),
            None => (&self.dummy, false),
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &hash.password_hash())
            .is_ok();
        matches && known
    }

    /// How many users are configured.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when the file lists nobody (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// An argon2id PHC string for `password`, with a fresh salt and the crate's default cost
/// (19 MiB, 2 passes): what `consumer hash-password` prints.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(hash_with(Params::default(), password.as_bytes())?.to_string())
}

fn hash_with(
    params: Params,
    password: &[u8],
) -> Result<PasswordHashString, argon2::password_hash::Error> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    Ok(argon.hash_password(password, &salt)?.serialize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_logs_in_and_nothing_else_does() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let users = Users::parse(&format!("# team\nalice:{hash}\n")).expect("parses");
        assert!(users.verify("alice", "correct horse"));
        assert!(!users.verify("alice", "wrong"));
        assert!(!users.verify("bob", "correct horse"));
    }

    #[test]
    fn bad_files_are_named_by_line_without_their_content() {
        let err = Users::parse("alice:$2y$10$abcdefghijklmnopqrstuv").expect_err("bcrypt");
        assert!(err.starts_with("line 1:"), "{err}");
        assert!(!err.contains("abcdef"), "{err}");
        assert!(Users::parse("just-a-name")
            .expect_err("no colon")
            .contains("line 1"));
        assert!(Users::parse("# nobody\n").is_err());
    }
}
