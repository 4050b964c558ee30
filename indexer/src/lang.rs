//! Source languages known to the indexer.
//!
//! [`Language::from_path`] maps a file path to a language by extension or by
//! well-known file name; the chunker uses [`Language::has_grammar`] to decide
//! between symbol-aware chunking (tree-sitter) and plain line windows.

use std::fmt;
use std::path::Path;

/// A source language. Serialized as its lowercase [`Language::name`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Ruby,
    Elixir,
    Markdown,
    Toml,
    Yaml,
    Json,
    Shell,
    Html,
    Css,
    Sql,
    Text,
    /// PDF documents (documentation sets only): their extracted text, page by page.
    Pdf,
}

const ALL: &[Language] = &[
    Language::Rust,
    Language::Python,
    Language::JavaScript,
    Language::TypeScript,
    Language::Tsx,
    Language::Go,
    Language::Java,
    Language::C,
    Language::Cpp,
    Language::Ruby,
    Language::Elixir,
    Language::Markdown,
    Language::Toml,
    Language::Yaml,
    Language::Json,
    Language::Shell,
    Language::Html,
    Language::Css,
    Language::Sql,
    Language::Text,
    Language::Pdf,
];

impl Language {
    /// Every language, in declaration order.
    pub fn all() -> &'static [Language] {
        ALL
    }

    /// Lowercase canonical name, identical to the serde representation.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
            Language::Java => "java",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Ruby => "ruby",
            Language::Elixir => "elixir",
            Language::Markdown => "markdown",
            Language::Toml => "toml",
            Language::Yaml => "yaml",
            Language::Json => "json",
            Language::Shell => "shell",
            Language::Html => "html",
            Language::Css => "css",
            Language::Sql => "sql",
            Language::Text => "text",
            Language::Pdf => "pdf",
        }
    }

    /// Inverse of [`Language::name`], case-insensitive. Also accepts common
    /// aliases (`js`, `ts`, `py`, `c++`, `md`, `rs`, `golang`, `sh`, `bash`, ...).
    pub fn from_name(name: &str) -> Option<Language> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(lang) = ALL.iter().copied().find(|l| l.name() == lower) {
            return Some(lang);
        }
        let lang = match lower.as_str() {
            "rs" => Language::Rust,
            "py" | "python3" => Language::Python,
            "js" | "jsx" | "node" | "ecmascript" => Language::JavaScript,
            "ts" => Language::TypeScript,
            "golang" => Language::Go,
            "h" => Language::C,
            "c++" | "cxx" | "cc" | "hpp" => Language::Cpp,
            "rb" => Language::Ruby,
            "ex" | "exs" => Language::Elixir,
            "md" | "markdown" | "mdown" => Language::Markdown,
            "yml" => Language::Yaml,
            "sh" | "bash" | "zsh" | "shellscript" => Language::Shell,
            "htm" | "xhtml" => Language::Html,
            "txt" | "plaintext" | "plain" => Language::Text,
            _ => return None,
        };
        Some(lang)
    }

    /// Whether the chunker parses this language with tree-sitter.
    pub fn has_grammar(self) -> bool {
        matches!(
            self,
            Language::Rust
                | Language::Python
                | Language::JavaScript
                | Language::TypeScript
                | Language::Tsx
                | Language::Go
                | Language::Java
                | Language::C
                | Language::Cpp
                | Language::Ruby
                | Language::Elixir
                | Language::Markdown
        )
    }

    /// Detects the language of `path` from its file name or extension.
    ///
    /// Returns `None` for unknown extensions; callers decide whether such a
    /// file is indexed as [`Language::Text`].
    pub fn from_path(path: &Path) -> Option<Language> {
        let file_name = path.file_name()?.to_str()?;
        if let Some(lang) = Self::from_file_name(file_name) {
            return Some(lang);
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Self::from_extension(&ext)
    }

    fn from_file_name(file_name: &str) -> Option<Language> {
        let lang = match file_name {
            "Rakefile" | "Gemfile" | "Guardfile" | "Podfile" | "Vagrantfile" | "Brewfile"
            | "Capfile" | "Fastfile" | "config.ru" => Language::Ruby,
            "Cargo.lock" | "Pipfile" | "poetry.lock" | "uv.lock" => Language::Toml,
            "mix.lock" => Language::Elixir,
            "Makefile" | "makefile" | "GNUmakefile" | "Dockerfile" | "Containerfile"
            | "Procfile" | "Justfile" | "justfile" | "CMakeLists.txt" | "LICENSE" | "LICENCE"
            | "COPYING" | "NOTICE" | "AUTHORS" | "CODEOWNERS" | ".gitignore" | ".gitattributes"
            | ".dockerignore" | ".editorconfig" => Language::Text,
            ".bashrc" | ".bash_profile" | ".profile" | ".zshrc" | ".zprofile" | ".envrc" => {
                Language::Shell
            }
            _ => {
                // `Dockerfile.dev`, `Makefile.am`, ...
                if file_name.starts_with("Dockerfile.") || file_name.starts_with("Makefile.") {
                    Language::Text
                } else {
                    return None;
                }
            }
        };
        Some(lang)
    }

    fn from_extension(ext: &str) -> Option<Language> {
        let lang = match ext {
            "rs" => Language::Rust,
            "py" | "pyi" | "pyw" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" | "h" => Language::C,
            "cpp" | "cc" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" | "tpp" | "inl" => {
                Language::Cpp
            }
            "rb" | "rake" | "gemspec" | "ru" => Language::Ruby,
            "ex" | "exs" => Language::Elixir,
            "md" | "markdown" | "mdown" | "mkd" | "mdx" => Language::Markdown,
            "toml" => Language::Toml,
            "yaml" | "yml" => Language::Yaml,
            "json" | "jsonc" | "json5" | "jsonl" | "ndjson" | "geojson" => Language::Json,
            "sh" | "bash" | "zsh" | "ksh" | "fish" => Language::Shell,
            "html" | "htm" | "xhtml" => Language::Html,
            "css" | "scss" | "sass" | "less" => Language::Css,
            "sql" => Language::Sql,
            "txt" | "text" | "rst" | "adoc" | "asciidoc" | "org" => Language::Text,
            "pdf" => Language::Pdf,
            _ => return None,
        };
        Some(lang)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Language;
    use std::path::Path;

    #[test]
    fn name_round_trips() {
        for &lang in Language::all() {
            assert_eq!(Language::from_name(lang.name()), Some(lang));
            assert_eq!(
                Language::from_name(&lang.name().to_ascii_uppercase()),
                Some(lang)
            );
            assert_eq!(lang.to_string(), lang.name());
        }
    }

    #[test]
    fn serde_matches_name() {
        for &lang in Language::all() {
            let json = serde_json::to_string(&lang).expect("serialize");
            assert_eq!(json, format!("\"{}\"", lang.name()));
            let back: Language = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, lang);
        }
    }

    #[test]
    fn detects_by_extension_and_file_name() {
        let cases = [
            ("src/main.rs", Some(Language::Rust)),
            ("a/b/c.PY", Some(Language::Python)),
            ("x.mjs", Some(Language::JavaScript)),
            ("x.jsx", Some(Language::JavaScript)),
            ("x.cts", Some(Language::TypeScript)),
            ("x.tsx", Some(Language::Tsx)),
            ("x.h", Some(Language::C)),
            ("x.hpp", Some(Language::Cpp)),
            ("x.cc", Some(Language::Cpp)),
            ("lib/tasks/db.rake", Some(Language::Ruby)),
            ("Rakefile", Some(Language::Ruby)),
            ("Gemfile", Some(Language::Ruby)),
            ("mix.exs", Some(Language::Elixir)),
            ("README.markdown", Some(Language::Markdown)),
            ("Cargo.toml", Some(Language::Toml)),
            ("ci.yml", Some(Language::Yaml)),
            ("run.zsh", Some(Language::Shell)),
            ("notes.rst", Some(Language::Text)),
            ("Makefile", Some(Language::Text)),
            ("Dockerfile", Some(Language::Text)),
            ("manuals/Guide.PDF", Some(Language::Pdf)),
            ("image.png", None),
            ("noext", None),
        ];
        for (path, want) in cases {
            assert_eq!(Language::from_path(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn aliases() {
        assert_eq!(Language::from_name("JS"), Some(Language::JavaScript));
        assert_eq!(Language::from_name("ts"), Some(Language::TypeScript));
        assert_eq!(Language::from_name("py"), Some(Language::Python));
        assert_eq!(Language::from_name("C++"), Some(Language::Cpp));
        assert_eq!(Language::from_name("md"), Some(Language::Markdown));
        assert_eq!(Language::from_name("rs"), Some(Language::Rust));
        assert_eq!(Language::from_name("golang"), Some(Language::Go));
        assert_eq!(Language::from_name("sh"), Some(Language::Shell));
        assert_eq!(Language::from_name("bash"), Some(Language::Shell));
        assert_eq!(Language::from_name("klingon"), None);
    }
}
