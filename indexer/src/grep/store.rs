//! The file index of exact and regex search: one tantivy index per collection (`grep/`), one
//! document per file, with its distinct folded trigrams (doc ids only, no positions) and its
//! content stored for verification, context lines and snippets.
//!
//! It lives beside the chunk index rather than inside it: BM25 counts every document of an index
//! (average field length, document frequencies), so file documents would shift keyword ranking,
//! and a new schema would stop older chunk indexes from opening. Commits carry the manifest
//! generation as their payload, like the chunk index's, and the pipeline commits both before the
//! manifest (see `pipeline::keyword`).

use std::path::Path;

use tantivy::collector::DocSetCollector;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::document::{DeserializeError, DocumentDeserialize, DocumentDeserializer};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, STORED, STRING,
};
use tantivy::store::Compressor;
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{
    DocAddress, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use super::trigrams::{term_text, text_trigrams, TrigramQuery};
use crate::error::{Error, Result};
use crate::lang::Language;

/// Memory budget of the writer (files are large documents; one thread is plenty for their terms).
const WRITER_HEAP_BYTES: usize = 96 * 1024 * 1024;
const WRITER_THREADS: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Fields {
    path: Field,
    language: Field,
    trigrams: Field,
    content: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Trigrams come pre-tokenized (distinct, folded); the tokenizer named here is never run.
    let trigram_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let fields = Fields {
        path: builder.add_text_field("path", STRING | STORED),
        language: builder.add_text_field("language", STRING | STORED),
        trigrams: builder.add_text_field("trigrams", trigram_options),
        content: builder.add_text_field("content", STORED),
    };
    (builder.build(), fields)
}

/// One indexed file, as a search reads it back.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub path: String,
    pub language: Option<Language>,
    pub content: String,
}

/// A stored document's fields, read straight into strings: a scan reads every file back, and
/// going through a [`TantivyDocument`] would copy each content once more.
struct StoredFields(Vec<(Field, String)>);

impl DocumentDeserialize for StoredFields {
    fn deserialize<'de, D>(mut deserializer: D) -> std::result::Result<Self, DeserializeError>
    where
        D: DocumentDeserializer<'de>,
    {
        // Every stored field of the schema is a string.
        let mut fields = Vec::with_capacity(deserializer.size_hint());
        while let Some(entry) = deserializer.next_field::<String>()? {
            fields.push(entry);
        }
        Ok(StoredFields(fields))
    }
}

impl StoredFields {
    fn into_file(self, fields: &Fields) -> Option<StoredFile> {
        let (mut path, mut language, mut content) = (None, None, None);
        for (field, value) in self.0 {
            if field == fields.path {
                path = Some(value);
            } else if field == fields.language {
                language = Language::from_name(&value);
            } else if field == fields.content {
                content = Some(value);
            }
        }
        Some(StoredFile {
            path: path?,
            language,
            content: content.unwrap_or_default(),
        })
    }
}

/// The file index of a collection.
pub struct FileStore {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore").finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens the index in `dir`, creating it when absent.
    pub fn open(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir).map_err(Error::io(dir))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        // Contents are stored uncompressed: a pattern that no trigram narrows reads every file
        // back, and decompressing them would cost more than reading them (an index created by an
        // earlier version keeps its own setting).
        let settings = IndexSettings {
            docstore_compression: Compressor::None,
            ..IndexSettings::default()
        };
        let index = Index::builder()
            .schema(schema)
            .settings(settings)
            .open_or_create(directory)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(FileStore {
            index,
            reader,
            fields,
        })
    }

    /// Opens the index in `dir` for reading; `None` when the collection has none yet (indexed
    /// before exact search existed: the next `index` run writes it).
    pub fn open_existing(dir: &Path) -> Result<Option<Self>> {
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        Self::open(dir).map(Some)
    }

    /// Starts a writer (one per index).
    pub fn writer(&self) -> Result<FileWriter> {
        let writer = self
            .index
            .writer_with_num_threads(WRITER_THREADS, WRITER_HEAP_BYTES)?;
        Ok(FileWriter {
            writer,
            fields: self.fields,
        })
    }

    /// Makes the latest commit visible to searches.
    pub fn reload(&self) -> Result<()> {
        self.reader.reload()?;
        Ok(())
    }

    /// The generation recorded by the last commit, if any.
    pub fn committed_generation(&self) -> Result<Option<u64>> {
        let metas = self.index.load_metas()?;
        Ok(metas.payload.and_then(|payload| payload.parse().ok()))
    }

    /// Number of files visible to searches.
    pub fn num_files(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The files that satisfy `query` (every file for [`TrigramQuery::All`]), in no order.
    pub fn candidates(&self, query: &TrigramQuery) -> Result<Vec<DocAddress>> {
        let searcher = self.reader.searcher();
        let tantivy_query = self.tantivy_query(query);
        let addresses = searcher.search(&*tantivy_query, &DocSetCollector)?;
        let mut addresses: Vec<DocAddress> = addresses.into_iter().collect();
        addresses.sort_unstable();
        Ok(addresses)
    }

    /// Reads one file back.
    pub fn file(&self, address: DocAddress) -> Result<Option<StoredFile>> {
        let stored: StoredFields = self.reader.searcher().doc(address)?;
        Ok(stored.into_file(&self.fields))
    }

    /// Reads back the file stored under `path` (relative to the collection root), if any.
    pub fn file_by_path(&self, path: &str) -> Result<Option<StoredFile>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.path, path),
            IndexRecordOption::Basic,
        );
        let found = searcher.search(&query, &DocSetCollector)?;
        match found.into_iter().min() {
            Some(address) => self.file(address),
            None => Ok(None),
        }
    }

    fn tantivy_query(&self, query: &TrigramQuery) -> Box<dyn Query> {
        match query {
            TrigramQuery::All => Box::new(AllQuery),
            TrigramQuery::Trigram(trigram) => Box::new(TermQuery::new(
                Term::from_field_text(self.fields.trigrams, &term_text(*trigram)),
                IndexRecordOption::Basic,
            )),
            TrigramQuery::And(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|part| (Occur::Must, self.tantivy_query(part)))
                    .collect(),
            )),
            TrigramQuery::Or(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|part| (Occur::Should, self.tantivy_query(part)))
                    .collect(),
            )),
        }
    }
}

/// Writes to a file index; nothing is visible until [`FileWriter::commit`].
pub struct FileWriter {
    writer: IndexWriter,
    fields: Fields,
}

impl FileWriter {
    /// Deletes the document of `path`.
    pub fn delete_path(&mut self, path: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.path, path));
    }

    /// Adds one file.
    pub fn add(&mut self, path: &str, language: Language, content: &str) -> Result<()> {
        let tokens = text_trigrams(content)
            .into_iter()
            .enumerate()
            .map(|(position, trigram)| Token {
                offset_from: 0,
                offset_to: 0,
                position,
                text: term_text(trigram),
                position_length: 1,
            })
            .collect();
        let mut document = TantivyDocument::default();
        document.add_text(self.fields.path, path);
        document.add_text(self.fields.language, language.name());
        document.add_pre_tokenized_text(
            self.fields.trigrams,
            PreTokenizedString {
                text: String::new(),
                tokens,
            },
        );
        document.add_text(self.fields.content, content);
        self.writer.add_document(document)?;
        Ok(())
    }

    /// Deletes everything (for a rebuild).
    pub fn delete_all(&mut self) -> Result<()> {
        self.writer.delete_all_documents()?;
        Ok(())
    }

    /// Atomically commits all changes, recording `generation`.
    pub fn commit(mut self, generation: u64) -> Result<()> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&generation.to_string());
        prepared.commit()?;
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}
