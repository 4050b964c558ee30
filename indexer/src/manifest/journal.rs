//! How a manifest is kept on disk: a snapshot (`manifest.json`) and a journal beside it
//! (`manifest.log`) of checkpoints, each a JSON line with the manifest's fields and only the file
//! records that changed since the previous one.
//!
//! The journal's first line names the snapshot it continues (the blake3 hash of its bytes), so a
//! journal left behind by a crash between a new snapshot and the journal's removal is ignored. A
//! checkpoint is one `write` followed by `fsync`; a torn or unparsable line ends the journal
//! there, and the next writer cuts it off before appending. Once the journal has grown past the
//! snapshot's size (or 1 MiB for small ones) the next checkpoint writes a new snapshot instead,
//! so loading stays linear in the collection's size and each checkpoint in what it changed.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{status_path, FileRecord, Manifest, ManifestHead, SCHEMA_VERSION};
use crate::error::{Error, Result};

/// The journal may grow to the snapshot's size, and at least to this, before it is folded into a
/// new snapshot.
const MIN_JOURNAL_BYTES: u64 = 1 << 20;

/// The journal's path beside the snapshot at `manifest`.
pub(super) fn journal_path(manifest: &Path) -> PathBuf {
    manifest.with_file_name("manifest.log")
}

/// What the manifest's files look like on disk: the snapshot's length and modification time
/// (ns) and the journal's length. Any checkpoint changes it; readers compare it to know whether
/// to read the manifest again, and the status record names the stamp it describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ManifestStamp {
    pub snapshot_len: u64,
    pub snapshot_modified_ns: u64,
    pub journal_len: u64,
}

impl ManifestStamp {
    /// The stamp of the manifest at `path`; None when it has no snapshot.
    pub fn of(path: &Path) -> Result<Option<ManifestStamp>> {
        let snapshot = match fs_err::metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io(path)(err)),
        };
        let journal = journal_path(path);
        let journal_len = match fs_err::metadata(&journal) {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(Error::io(&journal)(err)),
        };
        let snapshot_modified_ns = snapshot
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });
        Ok(Some(ManifestStamp {
            snapshot_len: snapshot.len(),
            snapshot_modified_ns,
            journal_len,
        }))
    }
}

/// The journal's first line.
#[derive(Serialize, Deserialize)]
struct JournalHeader {
    /// blake3 of the snapshot's bytes, hex.
    snapshot: String,
}

/// One checkpoint, as read.
#[derive(Deserialize)]
struct Checkpoint {
    /// The manifest without its files.
    head: Manifest,
    #[serde(default)]
    set: BTreeMap<String, FileRecord>,
    #[serde(default)]
    del: Vec<String>,
}

/// One checkpoint, as written.
#[derive(Serialize)]
struct CheckpointOut<'a> {
    head: Manifest,
    set: BTreeMap<&'a str, &'a FileRecord>,
    del: Vec<String>,
}

/// A manifest as read from disk, with where its journal's complete checkpoints end.
struct Loaded {
    manifest: Manifest,
    stamp: ManifestStamp,
    snapshot_hash: String,
    snapshot_len: u64,
    journal_len: u64,
}

fn manifest_error(path: &Path, message: impl ToString) -> Error {
    Error::Manifest {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Loads the manifest at `path` with its stamp (taken before reading, so a change made while it
/// is read shows as a new stamp next time); None when it has no snapshot.
pub(super) fn load(path: &Path) -> Result<Option<(Manifest, ManifestStamp)>> {
    Ok(load_full(path)?.map(|loaded| (loaded.manifest, loaded.stamp)))
}

fn load_full(path: &Path) -> Result<Option<Loaded>> {
    let Some(stamp) = ManifestStamp::of(path)? else {
        return Ok(None);
    };
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io(path)(err)),
    };
    let mut manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|err| manifest_error(path, err))?;
    check_schema(path, manifest.schema_version)?;
    let snapshot_hash = blake3::hash(&bytes).to_hex().to_string();
    let journal_len = replay(path, &snapshot_hash, &mut manifest)?;
    Ok(Some(Loaded {
        manifest,
        stamp,
        snapshot_hash,
        snapshot_len: bytes.len() as u64,
        journal_len,
    }))
}

fn check_schema(path: &Path, found: u32) -> Result<()> {
    if found != SCHEMA_VERSION {
        return Err(Error::SchemaVersion {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies the journal's complete checkpoints for the snapshot hashed `snapshot_hash` to
/// `manifest`; returns the length of the journal they take (0 when it has none for this
/// snapshot, not even its header).
fn replay(path: &Path, snapshot_hash: &str, manifest: &mut Manifest) -> Result<u64> {
    let journal = journal_path(path);
    let bytes = match fs_err::read(&journal) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(Error::io(&journal)(err)),
    };
    let mut lines = bytes.split_inclusive(|&byte| byte == b'\n');
    let header = lines.next().filter(|line| {
        line.ends_with(b"\n")
            && serde_json::from_slice::<JournalHeader>(line)
                .is_ok_and(|header| header.snapshot == snapshot_hash)
    });
    let Some(header) = header else {
        return Ok(0);
    };
    let mut valid = header.len() as u64;
    for line in lines {
        if !line.ends_with(b"\n") {
            break;
        }
        let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(line) else {
            tracing::warn!(
                journal = %journal.display(),
                offset = valid,
                "manifest journal ends with an unreadable checkpoint; it is ignored"
            );
            break;
        };
        check_schema(&journal, checkpoint.head.schema_version)?;
        apply(manifest, checkpoint.head, &checkpoint.del, checkpoint.set);
        valid += line.len() as u64;
    }
    Ok(valid)
}

/// The writer of one collection's manifest, held by an indexing run (under the collection's
/// write lock): it knows what the files on disk hold, so each save appends only what changed.
#[derive(Debug)]
pub struct ManifestFile {
    path: PathBuf,
    /// What the snapshot and the journal hold; None: unknown, the next save writes a snapshot.
    saved: Option<Manifest>,
    snapshot_hash: String,
    snapshot_len: u64,
    /// Length of the journal's complete checkpoints (0: no journal for this snapshot yet).
    journal_len: u64,
}

impl ManifestFile {
    /// A writer that knows nothing of what is on disk: its first save writes a snapshot.
    pub fn fresh(path: &Path) -> ManifestFile {
        ManifestFile {
            path: path.to_path_buf(),
            saved: None,
            snapshot_hash: String::new(),
            snapshot_len: 0,
            journal_len: 0,
        }
    }

    /// Reads the manifest at `path` and returns it with a writer that continues it.
    pub fn open(path: &Path) -> Result<(ManifestFile, Option<Manifest>)> {
        let Some(loaded) = load_full(path)? else {
            return Ok((ManifestFile::fresh(path), None));
        };
        let file = ManifestFile {
            path: path.to_path_buf(),
            saved: Some(loaded.manifest.clone()),
            snapshot_hash: loaded.snapshot_hash,
            snapshot_len: loaded.snapshot_len,
            journal_len: loaded.journal_len,
        };
        Ok((file, Some(loaded.manifest)))
    }

    /// Forgets what is on disk (the manifest was removed): the next save writes a snapshot.
    pub fn forget(&mut self) {
        self.saved = None;
        self.journal_len = 0;
    }

    /// Saves `manifest`: appends a checkpoint of what changed since the last save, or writes a
    /// snapshot (the first save of a writer that knows nothing, or a journal grown past the
    /// snapshot); then the status record. Nothing is written when nothing changed.
    pub fn save(&mut self, manifest: &Manifest) -> Result<()> {
        let Some(saved) = &self.saved else {
            return self.write_snapshot(manifest);
        };
        let head = manifest.without_files();
        let (set, del) = changes(&saved.files, &manifest.files);
        if set.is_empty() && del.is_empty() && saved.without_files() == head {
            return Ok(());
        }
        let checkpoint = CheckpointOut { head, set, del };
        let line = journal_line(&self.path, &checkpoint)?;
        let header = if self.journal_len == 0 {
            let header = JournalHeader {
                snapshot: self.snapshot_hash.clone(),
            };
            journal_line(&self.path, &header)?
        } else {
            Vec::new()
        };
        let grown = self.journal_len + (header.len() + line.len()) as u64;
        if grown > self.snapshot_len.max(MIN_JOURNAL_BYTES) {
            return self.write_snapshot(manifest);
        }
        self.append(&header, &line)?;
        self.journal_len = grown;
        let CheckpointOut { head, set, del } = checkpoint;
        if let Some(saved) = &mut self.saved {
            let set = set
                .into_iter()
                .map(|(path, record)| (path.to_string(), record.clone()));
            apply(saved, head, &del, set);
        }
        write_status(&self.path, manifest)
    }

    /// Appends `header` (empty unless the journal starts here) and `line` to the journal, cutting
    /// off whatever follows its complete checkpoints first, and syncs it.
    fn append(&self, header: &[u8], line: &[u8]) -> Result<()> {
        let journal = journal_path(&self.path);
        let io = |err| Error::io(&journal)(err);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&journal)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() != self.journal_len {
            file.set_len(self.journal_len).map_err(io)?;
        }
        file.seek(SeekFrom::Start(self.journal_len)).map_err(io)?;
        let mut bytes = Vec::with_capacity(header.len() + line.len());
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(line);
        file.write_all(&bytes).map_err(io)?;
        file.sync_data().map_err(io)?;
        if self.journal_len == 0 {
            // A new journal's directory entry must survive a power cut too.
            let directory = self.path.parent().unwrap_or(Path::new("."));
            crate::atomic::sync_directory(directory).map_err(Error::io(directory))?;
        }
        Ok(())
    }

    /// Writes `manifest` whole as the snapshot, then drops the journal (a journal that survives
    /// a crash here names the previous snapshot and is ignored).
    fn write_snapshot(&mut self, manifest: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec(manifest).map_err(|err| manifest_error(&self.path, err))?;
        crate::atomic::atomic_write(&self.path, &bytes).map_err(Error::io(&self.path))?;
        self.snapshot_hash = blake3::hash(&bytes).to_hex().to_string();
        self.snapshot_len = bytes.len() as u64;
        self.journal_len = 0;
        remove_if_present(&journal_path(&self.path))?;
        self.saved = Some(manifest.clone());
        write_status(&self.path, manifest)
    }
}

/// `value` as one line of the journal.
fn journal_line(path: &Path, value: &impl Serialize) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value).map_err(|err| manifest_error(path, err))?;
    line.push(b'\n');
    Ok(line)
}

/// Applies one checkpoint to `manifest`: the files of `del` removed, those of `set` written,
/// every other field taken from `head`.
fn apply(
    manifest: &mut Manifest,
    head: Manifest,
    del: &[String],
    set: impl IntoIterator<Item = (String, FileRecord)>,
) {
    let mut files = std::mem::take(&mut manifest.files);
    for path in del {
        files.remove(path);
    }
    files.extend(set);
    *manifest = head;
    manifest.files = files;
}

/// Removes `path`; a file already gone is no error.
pub(super) fn remove_if_present(path: &Path) -> Result<()> {
    match fs_err::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path)(err)),
        _ => Ok(()),
    }
}

/// The records of `new` that `old` lacks or holds otherwise, and the paths of `old` that `new`
/// lacks: one pass over both sorted maps.
fn changes<'a>(
    old: &BTreeMap<String, FileRecord>,
    new: &'a BTreeMap<String, FileRecord>,
) -> (BTreeMap<&'a str, &'a FileRecord>, Vec<String>) {
    let mut set = BTreeMap::new();
    let mut del = Vec::new();
    let mut old = old.iter().peekable();
    for (path, record) in new {
        while let Some((gone, _)) = old.next_if(|(old_path, _)| *old_path < path) {
            del.push(gone.clone());
        }
        match old.next_if(|(old_path, _)| *old_path == path) {
            Some((_, old_record)) if old_record == record => {}
            _ => {
                set.insert(path.as_str(), record);
            }
        }
    }
    del.extend(old.map(|(gone, _)| gone.clone()));
    (set, del)
}

/// Writes the status record of `manifest`, just saved at `path`.
fn write_status(path: &Path, manifest: &Manifest) -> Result<()> {
    let stamp = ManifestStamp::of(path)?.unwrap_or_default();
    let head = ManifestHead::of(manifest, stamp);
    let status = status_path(path);
    let bytes = serde_json::to_vec(&head).map_err(|err| manifest_error(&status, err))?;
    crate::atomic::atomic_write(&status, &bytes).map_err(Error::io(&status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Language;
    use crate::manifest::ChunkRecord;

    fn record(hash: &str, chunks: u64, embedded: bool) -> FileRecord {
        FileRecord {
            hash: hash.into(),
            size: 10,
            mtime_ns: 5,
            language: Language::Rust,
            chunks: (0..chunks)
                .map(|id| ChunkRecord {
                    id,
                    start_line: 1,
                    end_line: 3,
                    embedded,
                })
                .collect(),
        }
    }

    fn manifest_with(files: usize) -> Manifest {
        let mut manifest = Manifest::new("demo", Path::new("/src/demo"));
        for file in 0..files {
            manifest
                .files
                .insert(format!("src/file_{file}.rs"), record("aa", 3, false));
        }
        manifest
    }

    #[test]
    fn a_checkpoint_appends_only_what_changed_and_loads_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        let (mut file, loaded) = ManifestFile::open(&path).expect("open");
        assert!(loaded.is_none());
        let mut manifest = manifest_with(200);
        file.save(&manifest).expect("first save: a snapshot");
        let snapshot = std::fs::read(&path).expect("snapshot");
        assert!(!journal_path(&path).exists());

        manifest.generation = 2;
        manifest
            .files
            .get_mut("src/file_7.rs")
            .expect("file")
            .chunks[1]
            .embedded = true;
        manifest.files.remove("src/file_9.rs");
        manifest
            .files
            .insert("src/new.rs".into(), record("bb", 1, true));
        file.save(&manifest).expect("checkpoint");
        assert_eq!(
            std::fs::read(&path).expect("snapshot"),
            snapshot,
            "snapshot untouched"
        );
        let journal = std::fs::read_to_string(journal_path(&path)).expect("journal");
        assert_eq!(journal.lines().count(), 2, "header and one checkpoint");
        assert!(
            journal.len() < snapshot.len() / 10,
            "{} bytes",
            journal.len()
        );
        assert!(journal.contains("src/file_7.rs") && journal.contains("src/new.rs"));
        assert!(!journal.contains("src/file_8.rs"));
        assert_eq!(Manifest::load(&path).expect("load"), Some(manifest.clone()));

        // Saving the same manifest again writes nothing.
        let before = ManifestStamp::of(&path).expect("stamp");
        file.save(&manifest).expect("no-op");
        assert_eq!(ManifestStamp::of(&path).expect("stamp"), before);

        // The status record follows the journal without a reader parsing the manifest.
        let head = Manifest::load_head(&path).expect("head").expect("present");
        assert_eq!(head.manifest, before.expect("stamp"));
        assert_eq!(
            (head.generation, head.files, head.embedded_chunks),
            (2, 200, 2)
        );

        // A writer opened later continues the same journal.
        let (mut again, loaded) = ManifestFile::open(&path).expect("open");
        assert_eq!(loaded.as_ref(), Some(&manifest));
        manifest.last_run = Some(Default::default());
        again.save(&manifest).expect("checkpoint");
        let journal = std::fs::read_to_string(journal_path(&path)).expect("journal");
        assert_eq!(journal.lines().count(), 3);
        assert_eq!(Manifest::load(&path).expect("load"), Some(manifest));
    }

    #[test]
    fn a_torn_checkpoint_is_ignored_then_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        let mut file = ManifestFile::fresh(&path);
        let mut complete = manifest_with(20);
        file.save(&complete).expect("snapshot");
        complete.generation = 2;
        file.save(&complete).expect("checkpoint");

        // A crash in the middle of the next append: half a line, or a whole unreadable one.
        for tail in [&b"{\"head\":{\"schema_ver"[..], b"{not json}\n"] {
            let mut journal = std::fs::OpenOptions::new()
                .append(true)
                .open(journal_path(&path))
                .expect("journal");
            journal.write_all(tail).expect("torn write");
            drop(journal);
            assert_eq!(Manifest::load(&path).expect("load"), Some(complete.clone()));
            let head = Manifest::load_head(&path).expect("head").expect("present");
            assert_eq!(head.generation, complete.generation);

            let (mut writer, loaded) = ManifestFile::open(&path).expect("open");
            assert_eq!(loaded.as_ref(), Some(&complete));
            writer.save(&complete).expect("nothing changed");
            let mut next = complete.clone();
            next.generation += 1;
            writer.save(&next).expect("append after the cut");
            assert_eq!(Manifest::load(&path).expect("load"), Some(next.clone()));
            complete = next;
            let journal = std::fs::read(journal_path(&path)).expect("journal");
            assert!(journal.ends_with(b"}\n") && !journal.windows(3).any(|w| w == b"{no"));
        }
        assert_eq!(complete.generation, 4);
    }

    #[test]
    fn the_journal_is_folded_into_a_snapshot_and_a_stale_one_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        let mut file = ManifestFile::fresh(&path);
        // Big enough records that the journal passes the 1 MiB floor after a few checkpoints.
        let mut manifest = manifest_with(2000);
        file.save(&manifest).expect("snapshot");
        let first_snapshot = std::fs::read(&path).expect("snapshot");
        let mut stale = None;
        for round in 0..40 {
            for record in manifest.files.values_mut() {
                record.hash = format!("{round:04}");
            }
            file.save(&manifest).expect("checkpoint");
            let journal = std::fs::read(journal_path(&path)).unwrap_or_default();
            if round == 0 {
                stale = Some(journal.clone());
            }
            let limit = (std::fs::metadata(&path).expect("snapshot").len()).max(MIN_JOURNAL_BYTES);
            assert!(
                journal.len() as u64 <= limit,
                "round {round}: {}",
                journal.len()
            );
            assert_eq!(Manifest::load(&path).expect("load"), Some(manifest.clone()));
        }
        assert_ne!(
            std::fs::read(&path).expect("snapshot"),
            first_snapshot,
            "folded"
        );

        // A crash between a new snapshot and the old journal's removal: the journal names the
        // previous snapshot and is ignored.
        Manifest::save(&manifest, &path).expect("snapshot");
        std::fs::write(journal_path(&path), stale.expect("journal")).expect("stale journal");
        assert_eq!(Manifest::load(&path).expect("load"), Some(manifest.clone()));
        let (mut writer, _) = ManifestFile::open(&path).expect("open");
        manifest.generation = 9;
        writer
            .save(&manifest)
            .expect("checkpoint over the stale journal");
        assert_eq!(Manifest::load(&path).expect("load"), Some(manifest.clone()));
        assert_eq!(
            std::fs::read_to_string(journal_path(&path))
                .expect("journal")
                .lines()
                .count(),
            2
        );

        Manifest::remove(&path).expect("remove");
        assert_eq!(Manifest::load(&path).expect("load"), None);
        assert!(!journal_path(&path).exists() && !status_path(&path).exists());
    }

    #[test]
    fn chunk_records_are_written_compactly_and_the_older_form_still_reads() {
        let chunk = ChunkRecord {
            id: u64::MAX,
            start_line: 4,
            end_line: 9,
            embedded: true,
        };
        let json = serde_json::to_string(&chunk).expect("json");
        assert_eq!(json, format!("[{},4,9,true]", u64::MAX));
        assert_eq!(
            serde_json::from_str::<ChunkRecord>(&json).expect("array"),
            chunk
        );
        let older = format!(
            "{{\"id\":{},\"start_line\":4,\"end_line\":9,\"embedded\":true}}",
            u64::MAX
        );
        assert_eq!(
            serde_json::from_str::<ChunkRecord>(&older).expect("object"),
            chunk
        );
    }
}
