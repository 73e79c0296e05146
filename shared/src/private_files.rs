//! Folders and files only their owner may read: the history (and the API token hashes in
//! it), the outbox. Folders this creates are 0700 and files 0600, whatever the umask; a folder
//! that already exists is left as it is, but said on start-up when other users can read it.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the folders this module creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files created through [`file_options`].
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) readable by its owner only. An existing folder keeps
/// its mode; when group or others may use it, a warning says so, naming it `what` (the
/// setting that chose it).
pub fn create_dir(dir: &Path, what: &str) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    folder = %dir.display(),
                    mode = %format!("{mode:o}"),
                    "{what} can be read by other users of this machine; `chmod 700` it to keep \
                     it private (left as it is)"
                );
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a folder",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir),
        Err(e) => Err(e),
    }
}

/// Options that create a file readable by its owner only (an existing file keeps its mode).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn created_folders_and_files_are_private_whatever_the_umask() {
        let root = std::env::temp_dir().join(format!("hostpulse-private-{}", std::process::id()));
        let dir = root.join("a").join("b");
        create_dir(&dir, "DATA_DIR").expect("created");
        for folder in [&root.join("a"), &dir] {
            let mode = std::fs::metadata(folder)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, DIR_MODE, "{}", folder.display());
        }
        let file = dir.join("f");
        file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&file)
            .expect("file");
        let mode = std::fs::metadata(&file)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, FILE_MODE);
        // An existing folder is used as it is, and said to be open.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let log = Captured::default();
        let sink = log.clone();
        let subscriber =
            crate::telemetry::get_subscriber("warn", move || sink.clone(), false).expect("filter");
        // A second dispatcher keeps the line on whatever other tests' threads decided.
        let _lines_stay_on = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        tracing::subscriber::with_default(subscriber, || {
            create_dir(&dir, "OUTBOX_DIR").expect("kept");
            create_dir(&root.join("a"), "OUTBOX_DIR").expect("kept");
        });
        let mode = std::fs::metadata(&dir)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let log = String::from_utf8_lossy(&log.0.lock().expect("log")).into_owned();
        assert_eq!(
            log.matches("can be read by other users").count(),
            1,
            "{log}"
        );
        assert!(
            log.contains("OUTBOX_DIR") && log.contains(&dir.display().to_string()),
            "{log}"
        );
        assert!(log.contains("mode=755"), "{log}");
        assert!(
            create_dir(&file, "DATA_DIR").is_err(),
            "a file is not a folder"
        );
        std::fs::remove_dir_all(&root).expect("cleaned up");
    }
}
