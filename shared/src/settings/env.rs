//! Where variables come from (the `.env` file, then the process environment) and how their
//! values are parsed and bounded.

use super::SettingsError;
use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The variables an app sees: its `.env` file, then the process environment on top.
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    vars: HashMap<String, String>,
}

impl EnvSource {
    /// Reads `file` (absent is fine unless `required`) and overlays the process environment.
    pub fn load(file: &Path, required: bool) -> Result<Self, SettingsError> {
        let mut vars = HashMap::new();
        match dotenvy::from_path_iter(file) {
            Ok(iter) => {
                for item in iter {
                    let (key, value) = item.map_err(|e| SettingsError::File {
                        path: file.display().to_string(),
                        problem: e.to_string(),
                    })?;
                    vars.insert(key, value);
                }
            }
            Err(e) if e.not_found() && !required => {}
            Err(e) => {
                return Err(SettingsError::File {
                    path: file.display().to_string(),
                    problem: e.to_string(),
                })
            }
        }
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    /// An app's settings: the file named by `file_var` (which must exist then), else
    /// `default_file` in the working directory if there is one; the environment on top.
    pub fn load_app(file_var: &str, default_file: &str) -> Result<Self, SettingsError> {
        match std::env::var_os(file_var) {
            Some(path) => Self::load(Path::new(&path), true),
            None => Self::load(Path::new(default_file), false),
        }
    }

    /// A source made of the given pairs only, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one variable (tests use this to isolate an app).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// The variable's value; an empty value counts as unset, as in most `.env` conventions.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Parses the variable, or gives `default` when it is unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, SettingsError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| {
                SettingsError::invalid(name, format!("{raw:?} is not valid ({e})"))
            }),
        }
    }

    /// A whole number of seconds (0 allowed), bounded by `max`.
    pub fn seconds_or(
        &self,
        name: &str,
        default: u64,
        max: u64,
    ) -> Result<Duration, SettingsError> {
        let secs: u64 = self.parse_or(name, default)?;
        if secs > max {
            return Err(SettingsError::invalid(
                name,
                format!("{secs} is more than the maximum of {max} seconds"),
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    /// Like [`Self::seconds_or`], but zero is refused too.
    pub fn positive_seconds_or(
        &self,
        name: &str,
        default: u64,
        max: u64,
    ) -> Result<Duration, SettingsError> {
        let duration = self.seconds_or(name, default, max)?;
        if duration.is_zero() {
            return Err(SettingsError::invalid(name, "must be at least 1"));
        }
        Ok(duration)
    }

    /// A count between `min` and `max` inclusive.
    pub fn count_or(
        &self,
        name: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, SettingsError> {
        let n: usize = self.parse_or(name, default)?;
        if !(min..=max).contains(&n) {
            return Err(SettingsError::invalid(
                name,
                format!("{n} is outside {min}..={max}"),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let err = env(&[("X", "-1")])
            .seconds_or("X", 1, 10)
            .expect_err("negative");
        assert!(err.to_string().starts_with("X:"), "{err}");
        let err = env(&[("X", "11")])
            .seconds_or("X", 1, 10)
            .expect_err("above max");
        assert!(err.to_string().contains("maximum"), "{err}");
        let err = env(&[("X", "0")])
            .positive_seconds_or("X", 1, 10)
            .expect_err("zero");
        assert!(err.to_string().starts_with("X:"), "{err}");
        let err = env(&[("N", "9")])
            .count_or("N", 1, 1, 8)
            .expect_err("outside");
        assert!(err.to_string().starts_with("N:"), "{err}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let source = env(&[("A", ""), ("B", "  ")]);
        assert_eq!(source.get("A"), None);
        assert_eq!(source.get("B"), None);
        assert_eq!(source.parse_or("A", 7u16).expect("default"), 7);
    }

    #[test]
    fn the_process_environment_wins_over_the_file() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path();
        let file = dir.join("app.env");
        // PATH is always set in the process environment; the file's value must lose.
        std::fs::write(&file, "PATH=from-file\nHOSTPULSE_ONLY_IN_FILE=yes\n").expect("write");
        let source = EnvSource::load(&file, true).expect("loads");
        assert_eq!(source.get("HOSTPULSE_ONLY_IN_FILE"), Some("yes"));
        assert_ne!(source.get("PATH"), Some("from-file"));
        assert!(EnvSource::load(&dir.join("missing.env"), false).is_ok());
        assert!(EnvSource::load(&dir.join("missing.env"), true).is_err());
    }
}
