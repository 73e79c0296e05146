//! `DASHBOARD_USERS_FILE`: `name:hash` lines in the manner of htpasswd, each hash an argon2id
//! PHC string as `consumer hash-password` prints it.
//!
//! Every hash is taken apart once, at start-up (parameters, salt, expected output), so a check
//! only runs argon2 into a work area the caller lends ([`Workspace`]): the login pool keeps one
//! per slot, and memory stays at one argon2 state per running check however many come.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// The weakest argon2id memory cost accepted, in KiB (OWASP's minimum, the crate's default).
pub const MIN_M_COST: u32 = Params::DEFAULT_M_COST;
/// The fewest argon2id passes accepted with [`MIN_M_COST`].
pub const MIN_T_COST: u32 = Params::DEFAULT_T_COST;

/// The people who may log in. `Debug` shows how many, never a hash.
pub struct Users {
    hashes: HashMap<String, Stored>,
    /// Checked for names that do not exist, so they take as long as a wrong password.
    dummy: Stored,
}

/// One hash, taken apart: what to run and what it must give.
struct Stored {
    params: Params,
    version: Version,
    salt: Vec<u8>,
    output: Vec<u8>,
}

impl Stored {
    /// Takes a PHC string apart; `Err` says why it cannot be used (never its content).
    fn parse(hash: &str) -> Result<Self, String> {
        let parsed = PasswordHash::new(hash)
            .map_err(|_| "the hash is not a PHC string (use `consumer hash-password`)")?;
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return Err("the hash is not argon2id".into());
        }
        let params =
            Params::try_from(&parsed).map_err(|e| format!("unusable argon2 parameters ({e})"))?;
        if params.m_cost() < MIN_M_COST || params.t_cost() < MIN_T_COST {
            return Err(format!(
                "argon2id settings m={} KiB, t={} are below the minimum m={MIN_M_COST} KiB, \
                 t={MIN_T_COST}; make the hash again with `consumer hash-password`",
                params.m_cost(),
                params.t_cost()
            ));
        }
        let version = match parsed.version {
            None => Version::default(),
            Some(v) => Version::try_from(v).map_err(|_| "unknown argon2 version")?,
        };
        let mut buffer = [0u8; 64];
        let salt = parsed
            .salt
            .ok_or("the hash has no salt")?
            .decode_b64(&mut buffer)
            .map_err(|_| "the salt is not valid base64")?
            .to_vec();
        if salt.len() < argon2::MIN_SALT_LEN {
            return Err("the salt is too short".into());
        }
        let output = parsed
            .hash
            .ok_or("the hash has no output")?
            .as_bytes()
            .to_vec();
        Ok(Self {
            params,
            version,
            salt,
            output,
        })
    }

    /// True when `password` gives this hash; argon2 runs in `work`.
    fn matches(&self, password: &[u8], work: &mut Workspace) -> bool {
        let blocks = self.params.block_count();
        if work.0.len() < blocks {
            work.0.resize(blocks, Block::default());
        }
        let argon = Argon2::new(Algorithm::Argon2id, self.version, self.params.clone());
        let mut out = vec![0u8; self.output.len()];
        match argon.hash_password_into_with_memory(password, &self.salt, &mut out, &mut work.0) {
            Ok(()) => bool::from(out.ct_eq(&self.output)),
            Err(_) => false,
        }
    }
}

/// Memory for one argon2 check, reused from check to check (19 MiB with the defaults).
#[derive(Default)]
pub struct Workspace(Vec<Block>);

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} configured)", self.hashes.len())
    }
}

impl Users {
    /// Parses the file's text; errors name the line, never its content (it holds hashes).
    /// Hashes weaker than m=[`MIN_M_COST`] KiB, t=[`MIN_T_COST`] are refused.
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
            let stored = Stored::parse(hash.trim()).map_err(|e| format!("line {number}: {e}"))?;
            first_params.get_or_insert(stored.params.clone());
            if hashes.insert(name.to_owned(), stored).is_some() {
                return Err(format!("line {number}: {name:?} is listed twice"));
            }
        }
        let Some(params) = first_params else {
            return Err("no users in the file".into());
        };
        let dummy = hash_with(params, b"not anyone's password")
            .map_err(|e| format!("cannot prepare the login check ({e})"))
            .and_then(|hash| Stored::parse(&hash))?;
        Ok(Self { hashes, dummy })
    }

    /// True when `name` exists and `password` is theirs, argon2 running in `work`. An unknown
    /// name costs one argon2 check as well, so neither the answer nor its time tells which
    /// names exist.
    pub fn verify_in(&self, name: &str, password: &str, work: &mut Workspace) -> bool {
        let (stored, known) = match self.hashes.get(name) {
            Some(stored) => (stored, true),
            None => (&self.dummy, false),
        };
        stored.matches(password.as_bytes(), work) && known
    }

    /// [`Self::verify_in`] with a work area of its own (the command line, tests).
    pub fn verify(&self, name: &str, password: &str) -> bool {
        self.verify_in(name, password, &mut Workspace::default())
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
    hash_with(Params::default(), password.as_bytes())
}

fn hash_with(params: Params, password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    Ok(argon.hash_password(password, &salt)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_logs_in_and_nothing_else_does() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let users = Users::parse(&format!("# team\nalice:{hash}\n")).expect("parses");
        let mut work = Workspace::default();
        assert!(users.verify_in("alice", "correct horse", &mut work));
        assert!(!users.verify_in("alice", "wrong", &mut work));
        assert!(!users.verify_in("bob", "correct horse", &mut work));
        assert!(users.verify("alice", "correct horse"));
    }

    #[test]
    fn stronger_settings_than_the_minimum_are_accepted() {
        let params = Params::new(MIN_M_COST + 1024, 3, 1, None).expect("params");
        let hash = hash_with(params, b"pw").expect("hashes");
        let users = Users::parse(&format!("alice:{hash}\n")).expect("parses");
        assert!(users.verify("alice", "pw"));
    }

    #[test]
    fn weak_argon2_settings_are_refused_by_line() {
        for (m, t) in [(MIN_M_COST - 1, 2), (64 * 1024, 1), (4096, 3)] {
            let params = Params::new(m, t, 1, None).expect("params");
            let hash = hash_with(params, b"pw").expect("hashes");
            let err = Users::parse(&format!("# team\nalice:{hash}\n")).expect_err("weak");
            assert!(err.starts_with("line 2: argon2id settings"), "{err}");
            assert!(err.contains(&format!("m={m} KiB, t={t}")), "{err}");
            assert!(err.contains("m=19456 KiB, t=2"), "{err}");
            assert!(!err.contains(&hash), "{err}");
        }
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
