//! Walking a source tree: which files are candidates for indexing, and why the others are skipped.
//!
//! The walk honours `.gitignore`, `.ignore` and git's exclude file (also outside a git repository),
//! hides hidden files unless configured, applies include/exclude globs, and never follows symbolic
//! links, so nothing outside the root is ever read. Content checks (binary, minified, generated,
//! broken UTF-8) happen when a file is read, in [`classify_content`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lang::Language;

/// Why a file was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Larger than `index.max_file_bytes`.
    TooLarge,
    /// Contains NUL bytes.
    Binary,
    /// Not UTF-8 (more than a stray byte or two).
    InvalidUtf8,
    /// Minified code (very long lines), or a `.min.js`/`.map` file.
    Minified,
    /// Marked as generated, or a lock file.
    Generated,
    /// A file type without a chunker (images, archives, data files, …).
    UnsupportedType,
    /// Excluded by `index.exclude` or not matched by `index.include`.
    ExcludedByGlob,
    /// A symbolic link (never followed).
    Symlink,
    /// Could not be read (permissions, vanished during the walk, …).
    Unreadable,
    /// The file name is not valid UTF-8.
    NonUtf8Path,
    /// A PDF (documentation sets) encrypted with a password.
    PdfEncrypted,
    /// A PDF that could not be read: truncated, corrupt, or the extractor failed on it.
    PdfUnreadable,
    /// A PDF without text: scanned or image-only pages.
    PdfNoText,
    /// A PDF whose text extraction ran out of time.
    PdfTimedOut,
}

impl SkipReason {
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too_large",
            SkipReason::Binary => "binary",
            SkipReason::InvalidUtf8 => "invalid_utf8",
            SkipReason::Minified => "minified",
            SkipReason::Generated => "generated",
            SkipReason::UnsupportedType => "unsupported_type",
            SkipReason::ExcludedByGlob => "excluded_by_glob",
            SkipReason::Symlink => "symlink",
            SkipReason::Unreadable => "unreadable",
            SkipReason::NonUtf8Path => "non_utf8_path",
            SkipReason::PdfEncrypted => "pdf_encrypted",
            SkipReason::PdfUnreadable => "pdf_unreadable",
            SkipReason::PdfNoText => "pdf_no_text",
            SkipReason::PdfTimedOut => "pdf_timed_out",
        }
    }
}

/// Counts of skipped files by reason.
pub type SkipCounts = BTreeMap<SkipReason, u64>;

/// A candidate file found by the walk.
#[derive(Debug, Clone)]
pub struct WalkedFile {
    /// Path relative to the root, with `/` separators.
    pub rel_path: String,
    pub abs_path: PathBuf,
    pub language: Language,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when unknown).
    pub mtime_ns: u128,
}

/// What to walk and how.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    pub max_file_bytes: u64,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub hidden: bool,
    pub respect_gitignore: bool,
    /// Whether PDFs are candidates (documentation sets); elsewhere they are binary files.
    pub pdf: bool,
}

impl From<&aiex_config::IndexConfig> for WalkOptions {
    fn from(config: &aiex_config::IndexConfig) -> Self {
        WalkOptions {
            max_file_bytes: config.max_file_bytes,
            include: config.include.clone(),
            exclude: config.exclude.clone(),
            hidden: config.hidden,
            respect_gitignore: config.respect_gitignore,
            pdf: false,
        }
    }
}

/// The result of a walk: candidate files sorted by path, and what was skipped.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<WalkedFile>,
    pub skipped: SkipCounts,
    /// Paths (relative, `/`-separated) the walk could not read: what was indexed under them is
    /// kept rather than taken for deleted.
    pub unreadable: Vec<String>,
}

impl Walk {
    /// Whether `rel_path` is, or lies under, a path the walk could not read.
    pub fn is_unreadable(&self, rel_path: &str) -> bool {
        self.unreadable.iter().any(|prefix| {
            rel_path == prefix
                || (rel_path.starts_with(prefix.as_str())
                    && rel_path.as_bytes().get(prefix.len()) == Some(&b'/'))
        })
    }
}

/// The path an `ignore` error is about, relative to `root`.
fn error_path(err: &ignore::Error, root: &Path) -> Option<String> {
    match err {
        ignore::Error::WithPath { path, .. } => path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/")),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err, root)
        }
        _ => None,
    }
}

/// Compiles a user glob. `*` does not cross `/`; a pattern without `/` matches a file name at any
/// depth (as in `.gitignore`: `*.rs`, `Cargo.toml`).
pub fn compile_glob(pattern: &str) -> Result<Glob> {
    let anchored = if pattern.contains('/') {
        pattern.trim_start_matches('/').to_string()
    } else {
        format!("**/{pattern}")
    };
    GlobBuilder::new(&anchored)
        .literal_separator(true)
        .build()
        .map_err(|err| Error::InvalidGlob {
            glob: pattern.to_string(),
            reason: err.kind().to_string(),
        })
}

fn glob_set(globs: &[String]) -> Result<Option<GlobSet>> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(compile_glob(glob)?);
    }
    builder.build().map(Some).map_err(|err| Error::InvalidGlob {
        glob: globs.join(","),
        reason: err.to_string(),
    })
}

/// Lock files and other files that are generated by tools, recognised by name.
const GENERATED_NAMES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "Gemfile.lock",
    "composer.lock",
    "go.sum",
    "mix.lock",
    "uv.lock",
    "Pipfile.lock",
];

/// Walks `root` (which must be a directory).
pub fn walk(root: &Path, options: &WalkOptions) -> Result<Walk> {
    let filter = EntryFilter::new(options)?;
    let mut walk = Walk::default();
    for entry in walker(root, options) {
        match entry {
            Ok(entry) => walk.record(filter.visit(&entry, root)),
            Err(err) => walk.record_error(&err, root),
        }
    }
    walk.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(walk)
}

/// The `ignore` walker for `options`: ignore files as configured, never into `.git`, no symbolic
/// links followed.
fn walker(root: &Path, options: &WalkOptions) -> ignore::Walk {
    ignore::WalkBuilder::new(root)
        .hidden(!options.hidden)
        .git_ignore(options.respect_gitignore)
        .git_exclude(options.respect_gitignore)
        .git_global(false)
        .ignore(options.respect_gitignore)
        .parents(options.respect_gitignore)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build()
}

/// What the walk makes of one entry.
enum Visit {
    /// A candidate file.
    File(WalkedFile),
    /// Not a candidate, counted under a reason.
    Skip(SkipReason),
    /// A file whose metadata could not be read (relative path): counted as unreadable, and what
    /// was indexed of it is kept.
    Unreadable(String),
    /// Directories and other entries that are neither files nor links.
    Pass,
}

impl Walk {
    fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    fn record(&mut self, visit: Visit) {
        match visit {
            Visit::File(file) => self.files.push(file),
            Visit::Skip(reason) => self.skip(reason),
            Visit::Unreadable(rel_path) => {
                self.skip(SkipReason::Unreadable);
                self.unreadable.push(rel_path);
            }
            Visit::Pass => {}
        }
    }

    /// An entry the walker could not read (a directory without permission, a vanished file).
    fn record_error(&mut self, err: &ignore::Error, root: &Path) {
        tracing::warn!(error = %err, "skipping unreadable entry");
        self.skip(SkipReason::Unreadable);
        if let Some(path) = error_path(err, root).filter(|p| !p.is_empty()) {
            self.unreadable.push(path);
        }
    }
}

/// Decides, for each entry, whether it is a candidate file.
struct EntryFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    max_file_bytes: u64,
    pdf: bool,
}

impl EntryFilter {
    /// Compiles the include and exclude globs; an invalid one is an error.
    fn new(options: &WalkOptions) -> Result<Self> {
        Ok(EntryFilter {
            include: glob_set(&options.include)?,
            exclude: glob_set(&options.exclude)?,
            max_file_bytes: options.max_file_bytes,
            pdf: options.pdf,
        })
    }

    fn visit(&self, entry: &ignore::DirEntry, root: &Path) -> Visit {
        let Some(file_type) = entry.file_type() else {
            return Visit::Pass;
        };
        if file_type.is_dir() {
            return Visit::Pass;
        }
        if file_type.is_symlink() {
            return Visit::Skip(SkipReason::Symlink);
        }
        if !file_type.is_file() {
            return Visit::Pass;
        }
        let abs_path = entry.path().to_path_buf();
        let Ok(relative) = abs_path.strip_prefix(root) else {
            return Visit::Skip(SkipReason::Unreadable);
        };
        let Some(rel_str) = relative.to_str() else {
            return Visit::Skip(SkipReason::NonUtf8Path);
        };
        let rel_path = rel_str.replace(std::path::MAIN_SEPARATOR, "/");
        if let Some(reason) = self.skip_by_name(&rel_path, &entry.file_name().to_string_lossy()) {
            return Visit::Skip(reason);
        }
        let Some(language) = Language::from_path(relative) else {
            return Visit::Skip(SkipReason::UnsupportedType);
        };
        if language == Language::Pdf && !self.pdf {
            return Visit::Skip(SkipReason::Binary);
        }
        let Ok(metadata) = entry.metadata() else {
            return Visit::Unreadable(rel_path);
        };
        let max_bytes = if language == Language::Pdf {
            crate::pdf::MAX_PDF_BYTES
        } else {
            self.max_file_bytes
        };
        if metadata.len() > max_bytes {
            return Visit::Skip(SkipReason::TooLarge);
        }
        Visit::File(WalkedFile {
            rel_path,
            language,
            size: metadata.len(),
            mtime_ns: mtime_ns(&metadata),
            abs_path,
        })
    }

    /// Why a file is skipped by its path or name alone: the globs, lock files, minified files.
    fn skip_by_name(&self, rel_path: &str, file_name: &str) -> Option<SkipReason> {
        if self
            .include
            .as_ref()
            .is_some_and(|set| !set.is_match(rel_path))
            || self
                .exclude
                .as_ref()
                .is_some_and(|set| set.is_match(rel_path))
        {
            return Some(SkipReason::ExcludedByGlob);
        }
        if GENERATED_NAMES.contains(&file_name) {
            return Some(SkipReason::Generated);
        }
        if file_name.ends_with(".min.js")
            || file_name.ends_with(".min.css")
            || file_name.ends_with(".map")
        {
            return Some(SkipReason::Minified);
        }
        None
    }
}

/// Modification time in nanoseconds since the epoch, 0 when unknown.
fn mtime_ns(metadata: &std::fs::Metadata) -> u128 {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |duration| duration.as_nanos())
}

/// Looks at a file's bytes and decides whether it is indexable text. Returns the text, or why not.
pub fn classify_content(bytes: Vec<u8>) -> std::result::Result<String, SkipReason> {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let bytes = err.into_bytes();
            let lossy = String::from_utf8_lossy(&bytes);
            let replaced = lossy.matches('\u{FFFD}').count();
            // A stray Latin-1 byte in a comment should not hide a whole file; a non-UTF-8 encoding
            // should not be indexed as mojibake.
            if replaced * 1000 > bytes.len().max(1) || replaced > 16 {
                return Err(SkipReason::InvalidUtf8);
            }
            lossy.into_owned()
        }
    };
    if looks_generated(&text) {
        return Err(SkipReason::Generated);
    }
    if looks_minified(&text) {
        return Err(SkipReason::Minified);
    }
    Ok(text)
}

fn looks_generated(text: &str) -> bool {
    text.lines().take(5).any(|line| {
        line.contains("@generated")
            || line.contains("DO NOT EDIT")
            || line.contains("do not edit")
            || line.contains("Code generated by")
    })
}

fn looks_minified(text: &str) -> bool {
    if text.len() < 2048 {
        return false;
    }
    let lines = text.lines().count().max(1);
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    text.len() / lines > 400 || longest > 20_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_gitignore_conventions() {
        let matches = |pattern: &str, path: &str| {
            compile_glob(pattern)
                .expect("glob")
                .compile_matcher()
                .is_match(path)
        };
        assert!(matches("*.rs", "src/deep/lib.rs"));
        assert!(matches("src/*.rs", "src/lib.rs"));
        assert!(!matches("src/*.rs", "src/deep/lib.rs"));
        assert!(matches("src/**/*.rs", "src/deep/lib.rs"));
        assert!(matches("/docs/**", "docs/a/b.md"));
        assert!(compile_glob("[").is_err());
    }

    #[test]
    fn pdfs_are_candidates_only_where_asked() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("guide.md"), "# Guide\n").expect("write");
        std::fs::write(dir.path().join("manual.pdf"), b"%PDF-1.4\n").expect("write");
        let options = WalkOptions {
            max_file_bytes: 1024,
            include: Vec::new(),
            exclude: Vec::new(),
            hidden: false,
            respect_gitignore: true,
            pdf: false,
        };
        let code = walk(dir.path(), &options).expect("walk");
        let paths: Vec<&str> = code.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(paths, ["guide.md"]);
        assert_eq!(code.skipped.get(&SkipReason::Binary), Some(&1));

        // PDFs have their own size limit, above `max_file_bytes`.
        std::fs::write(dir.path().join("manual.pdf"), vec![b' '; 4096]).expect("write");
        let docs = walk(
            dir.path(),
            &WalkOptions {
                pdf: true,
                ..options
            },
        )
        .expect("walk");
        let found: Vec<(&str, Language)> = docs
            .files
            .iter()
            .map(|f| (f.rel_path.as_str(), f.language))
            .collect();
        assert_eq!(
            found,
            [
                ("guide.md", Language::Markdown),
                ("manual.pdf", Language::Pdf)
            ]
        );
        assert!(docs.skipped.is_empty());
    }

    #[test]
    fn unreadable_prefixes() {
        let walk = Walk {
            unreadable: vec!["secret".into()],
            ..Walk::default()
        };
        assert!(walk.is_unreadable("secret/a.rs"));
        assert!(walk.is_unreadable("secret"));
        assert!(!walk.is_unreadable("secretive.rs"));
    }

    #[test]
    fn classifies_content() {
        assert_eq!(
            classify_content(b"fn main() {}\n".to_vec()),
            Ok("fn main() {}\n".into())
        );
        assert_eq!(
            classify_content(b"ab\0cd".to_vec()),
            Err(SkipReason::Binary)
        );
        let latin1_file = b"// caf\xe9\nfn main() {}\n".repeat(100);
        assert_eq!(classify_content(latin1_file), Err(SkipReason::InvalidUtf8));
        let mut stray_byte = b"// caf\xe9 au lait\n".to_vec();
        stray_byte.extend(b"fn main() { println!(\"hello\"); }\n".repeat(100));
        let text = classify_content(stray_byte).expect("one stray byte is tolerated");
        assert!(text.starts_with("// caf\u{FFFD} au lait"));
        assert_eq!(
            classify_content(b"// Code generated by protoc. DO NOT EDIT.\npackage x\n".to_vec()),
            Err(SkipReason::Generated)
        );
        let minified = format!("var a={};", "b".repeat(30_000));
        assert_eq!(
            classify_content(minified.into_bytes()),
            Err(SkipReason::Minified)
        );
    }
}
