//! The keyword index: one tantivy index per collection, with the code-aware tokenizer.
//!
//! The tantivy index is the source of truth for what a hit shows (path, lines, symbol, text): a
//! vector hit whose chunk is no longer here is dropped. Commits carry the manifest generation as
//! their payload, so a reader can tell which generation it sees.

use std::collections::HashMap;
use std::path::Path;

use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, Occur, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::chunk::ChunkKind;
use crate::document::Chunk;
use crate::error::{Error, Result};
use crate::lang::Language;
use crate::tokenizer::{code_tokens, CodeTokenizer, TokenMode, CODE_TOKENIZER};

/// Memory budget of each indexing thread (tantivy requires at least 15 MB per thread).
const WRITER_HEAP_BYTES_PER_THREAD: usize = 48 * 1024 * 1024;
/// More indexing threads than this do not speed up commits of chunk-sized documents.
const MAX_WRITER_THREADS: usize = 4;

/// One value per field that keyword search reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PerField<T> {
    pub content: T,
    pub symbol: T,
    pub parent: T,
    pub path: T,
}

/// Field boosts: a match in a symbol name says more than one in a body. The symbol's boost is
/// measured (README, retrieval benchmark): since a symbol's words carry their stems too, 1.5 ranks
/// better than the former 3.0 on every evaluation corpus.
pub(crate) const FIELD_BOOSTS: PerField<f32> = PerField {
    content: 1.0,
    symbol: 1.5,
    parent: 1.2,
    path: 1.5,
};

/// Typical length in tokens of each field, against which BM25 normalises a field's length,
/// rather than the collection's average: most chunks have no parent and many no symbol, so their
/// averages are far below the length of a field that is there, and a symbol of three words would
/// count as long. Chunks are bounded in size, so the spread of content lengths is small. The
/// server's sparse vectors use the same figures (their client does not know the averages).
pub(crate) const TYPICAL_TOKENS: PerField<f32> = PerField {
    content: 160.0,
    symbol: 3.0,
    parent: 4.0,
    path: 8.0,
};

/// BM25 statistics of a multi-field search, as BM25F and the server's sparse vectors count them:
/// a term's document frequency is the number of chunks holding it in any field (`shared`, by the
/// term's text), and a field's length is normalised against its typical length.
struct FieldedStatistics<'a> {
    searcher: &'a tantivy::Searcher,
    shared: HashMap<Vec<u8>, u64>,
    typical: HashMap<Field, f32>,
}

impl Bm25StatisticsProvider for FieldedStatistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        match self.typical.get(&field) {
            Some(typical) => Ok((f64::from(*typical) * self.total_num_docs()? as f64) as u64),
            None => self.searcher.total_num_tokens(field),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Bm25StatisticsProvider::total_num_docs(self.searcher)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        match self.shared.get(term.serialized_value_bytes()) {
            Some(&frequency) => Ok(frequency),
            None => self.searcher.doc_freq(term),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    path: Field,
    path_text: Field,
    language: Field,
    symbol: Field,
    kind: Field,
    parent: Field,
    start_line: Field,
    end_line: Field,
    hash: Field,
    content: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let code_text = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(CODE_TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let fields = Fields {
        id: builder.add_u64_field("id", INDEXED | STORED | FAST),
        path: builder.add_text_field("path", STRING | STORED),
        path_text: builder.add_text_field("path_text", code_text(false)),
        language: builder.add_text_field("language", STRING | STORED),
        symbol: builder.add_text_field("symbol", code_text(true)),
        kind: builder.add_text_field("kind", STRING | STORED),
        parent: builder.add_text_field("parent", code_text(true)),
        start_line: builder.add_u64_field("start_line", STORED),
        end_line: builder.add_u64_field("end_line", STORED),
        hash: builder.add_text_field("hash", STRING | STORED),
        content: builder.add_text_field("content", code_text(true)),
    };
    (builder.build(), fields)
}

/// Words too common in questions to say anything about code.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "i", "if",
    "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "so", "that", "the", "their",
    "then", "there", "this", "to", "was", "what", "when", "where", "which", "while", "who", "why",
    "will", "with", "you",
];

/// The distinct query terms of a search string (words, identifier parts and their stems), stop
/// words and their stems removed (unless nothing else is left).
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    let mut content_terms: Vec<String> = Vec::new();
    // A stem follows its word: it is a stop word's stem when that word was one.
    let mut stop_word = false;
    for token in code_tokens(query, TokenMode::Query) {
        if !token.is_stem() {
            stop_word = STOP_WORDS.contains(&token.text.as_str());
        }
        if !stop_word && !content_terms.contains(&token.text) {
            content_terms.push(token.text.clone());
        }
        if !terms.contains(&token.text) {
            terms.push(token.text);
        }
    }
    if content_terms.is_empty() {
        terms
    } else {
        content_terms
    }
}

/// A term of a keyword query and what a match on it counts for: 1 for the query's own words, less
/// for an abbreviation it was expanded with ([`abbreviations`](super::abbreviations)).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTerm {
    pub text: String,
    pub weight: f32,
}

/// The weighted terms of `query` for the keyword side ([`weighted_terms`] of its
/// [`query_terms`]).
pub fn keyword_query(query: &str, expand: bool) -> Vec<QueryTerm> {
    weighted_terms(&query_terms(query), query, expand)
}

/// `terms` (the [`query_terms`] of `query`) at weight 1, then, with `expand`, the terms of the
/// abbreviations of its prose words that it does not hold already, at
/// [`ABBREVIATION_WEIGHT`](super::abbreviations::ABBREVIATION_WEIGHT).
pub fn weighted_terms(terms: &[String], query: &str, expand: bool) -> Vec<QueryTerm> {
    let mut weighted: Vec<QueryTerm> = terms
        .iter()
        .map(|text| QueryTerm {
            text: text.clone(),
            weight: 1.0,
        })
        .collect();
    if expand {
        for abbreviation in super::abbreviations::abbreviations(query) {
            for text in query_terms(abbreviation) {
                if !weighted.iter().any(|term| term.text == text) {
                    weighted.push(QueryTerm {
                        text,
                        weight: super::abbreviations::ABBREVIATION_WEIGHT,
                    });
                }
            }
        }
    }
    weighted
}

/// Most documents read to order the hits tied with the last one kept.
const MAX_TIED: usize = 10_000;

/// A keyword index on disk.
pub struct KeywordStore {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    frequencies: parking_lot::Mutex<Frequencies>,
}

/// Terms' document frequencies over every field, as counted in one searcher generation: each
/// costs a pass over the term's postings, and queries share most of their words (and stems).
#[derive(Default)]
struct Frequencies {
    generation: u64,
    counts: HashMap<String, u64>,
}

/// Frequencies kept at most; the cache starts again empty beyond.
const MAX_CACHED_FREQUENCIES: usize = 100_000;

impl std::fmt::Debug for KeywordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywordStore").finish_non_exhaustive()
    }
}

impl KeywordStore {
    /// Opens the index in `dir`, creating it when absent.
    pub fn open(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir).map_err(Error::io(dir))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        index
            .tokenizers()
            .register(CODE_TOKENIZER, TextAnalyzer::from(CodeTokenizer::default()));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KeywordStore {
            index,
            reader,
            fields,
            frequencies: parking_lot::Mutex::new(Frequencies::default()),
        })
    }

    /// The number of chunks holding `term` in any field (`keys`: the term in each field), counted
    /// once per searcher generation.
    fn frequency(&self, searcher: &tantivy::Searcher, term: &str, keys: &[Term]) -> Result<u64> {
        let generation = searcher.generation().generation_id();
        {
            let frequencies = self.frequencies.lock();
            if frequencies.generation == generation {
                if let Some(&count) = frequencies.counts.get(term) {
                    return Ok(count);
                }
            }
        }
        let anywhere = BooleanQuery::new(
            keys.iter()
                .map(|key| {
                    let query = TermQuery::new(key.clone(), IndexRecordOption::Basic);
                    (Occur::Should, Box::new(query) as Box<dyn Query>)
                })
                .collect(),
        );
        let count = searcher.search(&anywhere, &Count)? as u64;
        let mut frequencies = self.frequencies.lock();
        if frequencies.generation != generation
            || frequencies.counts.len() >= MAX_CACHED_FREQUENCIES
        {
            frequencies.counts.clear();
            frequencies.generation = generation;
        }
        frequencies.counts.insert(term.to_string(), count);
        Ok(count)
    }

    /// Starts a writer (tantivy allows one per index; a second is an error, not a corruption).
    pub fn writer(&self, threads: usize) -> Result<KeywordWriter> {
        let threads = threads.clamp(1, MAX_WRITER_THREADS);
        let writer = self
            .index
            .writer_with_num_threads(threads, threads * WRITER_HEAP_BYTES_PER_THREAD)?;
        Ok(KeywordWriter {
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

    /// Number of chunks visible to searches.
    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// BM25 search over content, symbol, parent and path, each term's matches scaled by its
    /// weight. `languages` and `paths` restrict hits (empty: any).
    pub fn search(
        &self,
        terms: &[QueryTerm],
        languages: &[Language],
        paths: &[String],
        limit: usize,
    ) -> Result<Vec<(f32, Chunk)>> {
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let fields = [
            (self.fields.content, FIELD_BOOSTS.content),
            (self.fields.symbol, FIELD_BOOSTS.symbol),
            (self.fields.parent, FIELD_BOOSTS.parent),
            (self.fields.path_text, FIELD_BOOSTS.path),
        ];
        let mut statistics = FieldedStatistics {
            searcher: &searcher,
            shared: HashMap::new(),
            typical: HashMap::from([
                (self.fields.content, TYPICAL_TOKENS.content),
                (self.fields.symbol, TYPICAL_TOKENS.symbol),
                (self.fields.parent, TYPICAL_TOKENS.parent),
                (self.fields.path_text, TYPICAL_TOKENS.path),
            ]),
        };
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for QueryTerm { text: term, weight } in terms {
            let keys: Vec<Term> = fields
                .iter()
                .map(|(field, _)| Term::from_field_text(*field, term))
                .collect();
            // One document frequency per term, over every field (the chunks holding it
            // anywhere), as BM25F and the server's sparse vectors weigh it: a term rare in one
            // field (a symbol) is not made rarer than it is.
            let shared = self.frequency(&searcher, term, &keys)?;
            if shared == 0 {
                continue;
            }
            statistics.shared.insert(term.as_bytes().to_vec(), shared);
            for ((_, boost), key) in fields.iter().zip(keys) {
                let query = TermQuery::new(key, IndexRecordOption::WithFreqs);
                should.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(query), *boost * *weight)),
                ));
            }
        }
        if should.is_empty() {
            return Ok(Vec::new());
        }
        let mut must: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(should)))];
        if !languages.is_empty() {
            let language_terms = languages
                .iter()
                .map(|language| Term::from_field_text(self.fields.language, language.name()));
            must.push((Occur::Must, Box::new(TermSetQuery::new(language_terms))));
        }
        if !paths.is_empty() {
            let path_terms = paths
                .iter()
                .map(|path| Term::from_field_text(self.fields.path, path));
            must.push((Occur::Must, Box::new(TermSetQuery::new(path_terms))));
        }
        let query = BooleanQuery::new(must);
        let top = self.top_with_ties(&searcher, &query, limit, &statistics)?;
        // Equal scores are ordered by path and line, so that two indexes of the same files
        // (whose documents sit in other segments, in another order) answer alike.
        let boundary = top.get(limit - 1).map(|(score, _)| *score);
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            if boundary.is_some_and(|boundary| score < boundary) {
                break;
            }
            let document: TantivyDocument = searcher.doc(address)?;
            if let Some(chunk) = self.chunk_from_document(&document) {
                hits.push((score, chunk));
            }
        }
        hits.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.path.cmp(&b.1.path))
                .then_with(|| a.1.start_line.cmp(&b.1.start_line))
        });
        hits.truncate(limit);
        Ok(hits)
    }

    /// The best `limit` documents of `query` and every document tied with the last of them (up
    /// to [`MAX_TIED`] in all), best first.
    fn top_with_ties(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn Query,
        limit: usize,
        statistics: &dyn Bm25StatisticsProvider,
    ) -> Result<Vec<(f32, tantivy::DocAddress)>> {
        let mut fetch = limit.saturating_add(limit.max(8));
        loop {
            let top = searcher.search_with_statistics_provider(
                query,
                &TopDocs::with_limit(fetch),
                statistics,
            )?;
            let ends_in_tie = top.len() == fetch
                && top.get(limit - 1).map(|hit| hit.0) == top.last().map(|hit| hit.0);
            if !ends_in_tie || fetch >= MAX_TIED {
                return Ok(top);
            }
            fetch = fetch.saturating_mul(4).min(MAX_TIED);
        }
    }

    /// The chunks with the given ids that exist (collection left empty: the caller knows it).
    pub fn get_chunks(&self, ids: &[u64]) -> Result<HashMap<u64, Chunk>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let terms = ids
            .iter()
            .map(|&id| Term::from_field_u64(self.fields.id, id));
        let searcher = self.reader.searcher();
        let top = searcher.search(&TermSetQuery::new(terms), &TopDocs::with_limit(ids.len()))?;
        let mut chunks = HashMap::with_capacity(top.len());
        for (_, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            if let Some(chunk) = self.chunk_from_document(&document) {
                chunks.insert(chunk.id, chunk);
            }
        }
        Ok(chunks)
    }

    /// The symbol and line span (1-based, inclusive) of every chunk of `path` that has a symbol.
    pub fn symbol_spans(&self, path: &str) -> Result<Vec<(String, u32, u32)>> {
        Ok(self
            .chunks_of_path(path)?
            .into_iter()
            .filter_map(|chunk| Some((chunk.symbol?, chunk.start_line, chunk.end_line)))
            .collect())
    }

    /// Every chunk of `path`, in line order (collection left empty: the caller knows it).
    pub fn chunks_of_path(&self, path: &str) -> Result<Vec<Chunk>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.path, path),
            IndexRecordOption::Basic,
        );
        let mut chunks = Vec::new();
        for address in searcher.search(&query, &DocSetCollector)? {
            let document: TantivyDocument = searcher.doc(address)?;
            chunks.extend(self.chunk_from_document(&document));
        }
        chunks.sort_by_key(|chunk| (chunk.start_line, chunk.end_line));
        Ok(chunks)
    }

    fn chunk_from_document(&self, document: &TantivyDocument) -> Option<Chunk> {
        let text = |field: Field| {
            document
                .get_first(field)
                .and_then(|value| value.as_str())
                .map(str::to_string)
        };
        let number = |field: Field| document.get_first(field).and_then(|value| value.as_u64());
        let optional = |field: Field| text(field).filter(|value| !value.is_empty());
        Some(Chunk {
            id: number(self.fields.id)?,
            collection: String::new(),
            path: text(self.fields.path)?,
            language: Language::from_name(&text(self.fields.language)?)?,
            symbol: optional(self.fields.symbol),
            kind: ChunkKind::from_name(&text(self.fields.kind)?)?,
            parent: optional(self.fields.parent),
            start_line: u32::try_from(number(self.fields.start_line)?).ok()?,
            end_line: u32::try_from(number(self.fields.end_line)?).ok()?,
            hash: text(self.fields.hash)?,
            text: text(self.fields.content).unwrap_or_default(),
        })
    }
}

/// Writes to a keyword index; nothing is visible until [`KeywordWriter::commit`].
pub struct KeywordWriter {
    writer: IndexWriter,
    fields: Fields,
}

impl KeywordWriter {
    /// Deletes every chunk of `path`.
    pub fn delete_path(&mut self, path: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.path, path));
    }

    /// Adds one chunk.
    pub fn add(&mut self, chunk: &Chunk) -> Result<()> {
        let fields = self.fields;
        self.writer.add_document(doc!(
            fields.id => chunk.id,
            fields.path => chunk.path.as_str(),
            fields.path_text => chunk.path.as_str(),
            fields.language => chunk.language.name(),
            fields.symbol => chunk.symbol.as_deref().unwrap_or(""),
            fields.kind => chunk.kind.name(),
            fields.parent => chunk.parent.as_deref().unwrap_or(""),
            fields.start_line => u64::from(chunk.start_line),
            fields.end_line => u64::from(chunk.end_line),
            fields.hash => chunk.hash.as_str(),
            fields.content => chunk.text.as_str(),
        ))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkKind;

    fn chunk(id: u64, path: &str, text: &str) -> Chunk {
        Chunk {
            id,
            collection: String::new(),
            path: path.to_string(),
            language: Language::Rust,
            symbol: None,
            kind: ChunkKind::Function,
            parent: None,
            start_line: 1,
            end_line: 1,
            hash: format!("h{id}"),
            text: text.to_string(),
        }
    }

    /// A store holding `chunks` (id, path, text), committed and reloaded.
    fn store_with(dir: &Path, chunks: &[(u64, &str, &str)]) -> KeywordStore {
        let store = KeywordStore::open(dir).expect("open");
        let mut writer = store.writer(1).expect("writer");
        for &(id, path, text) in chunks {
            writer.add(&chunk(id, path, text)).expect("add");
        }
        writer.commit(1).expect("commit");
        store.reload().expect("reload");
        store
    }

    /// An index of `paths` (identical texts), added in the given order, one segment per commit.
    fn index_of(dir: &Path, paths: &[String]) -> KeywordStore {
        let store = KeywordStore::open(dir).expect("open");
        for (n, batch) in paths.chunks(7).enumerate() {
            let mut writer = store.writer(1).expect("writer");
            for path in batch {
                let id = path.trim_start_matches("src/f").trim_end_matches(".rs");
                let id: u64 = id.parse().expect("id");
                writer
                    .add(&chunk(id, path, "fn tied() { parse config }"))
                    .expect("add");
            }
            writer.commit(n as u64 + 1).expect("commit");
        }
        store.reload().expect("reload");
        store
    }

    #[test]
    fn equal_scores_give_the_same_hits_whatever_the_insertion_order() {
        let paths: Vec<String> = (10..40).map(|n| format!("src/f{n}.rs")).collect();
        let mut reversed = paths.clone();
        reversed.reverse();
        let one = tempfile::tempdir().expect("tempdir");
        let two = tempfile::tempdir().expect("tempdir");
        let forward = index_of(one.path(), &paths);
        let backward = index_of(two.path(), &reversed);
        let terms = keyword_query("parse config", false);
        let hits = |store: &KeywordStore| -> Vec<String> {
            store
                .search(&terms, &[], &[], 5)
                .expect("search")
                .into_iter()
                .map(|(_, chunk)| chunk.path)
                .collect()
        };
        assert_eq!(hits(&forward), paths[..5].to_vec());
        assert_eq!(hits(&backward), hits(&forward));
    }

    #[test]
    fn a_common_word_weighs_little_even_where_it_is_the_symbol() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeywordStore::open(dir.path()).expect("open");
        let mut writer = store.writer(1).expect("writer");
        let named = |id: u64, path: &str, symbol: &str, text: &str| Chunk {
            symbol: Some(symbol.to_string()),
            ..chunk(id, path, text)
        };
        for n in 0..20 {
            let text = format!("fn step_{n}() {{ let value = compute(value); }}");
            writer
                .add(&named(
                    n,
                    &format!("src/f{n}.rs"),
                    &format!("step_{n}"),
                    &text,
                ))
                .expect("add");
        }
        // `value` is in every chunk's text, and the symbol of one only.
        writer
            .add(&named(
                100,
                "src/named.rs",
                "value",
                "fn value() { let value = 1; }",
            ))
            .expect("add");
        writer
            .add(&named(
                101,
                "src/rare.rs",
                "rare",
                "fn rare() { let value = quux(value); }",
            ))
            .expect("add");
        writer.commit(1).expect("commit");
        store.reload().expect("reload");
        let hits = store
            .search(&keyword_query("value quux", false), &[], &[], 3)
            .expect("search");
        // The chunk with the rare word comes first: the symbol match of a word every chunk has
        // is not scored as if the word were rare.
        assert_eq!(hits[0].1.path, "src/rare.rs", "{hits:?}");
        assert_eq!(hits[1].1.path, "src/named.rs", "{hits:?}");
    }

    #[test]
    fn stop_words_and_their_stems_are_not_query_terms() {
        assert_eq!(
            query_terms("the tables of decoded values"),
            ["tables", "~tabl", "decoded", "~decod", "values", "~valu"]
        );
        assert_eq!(query_terms("the"), ["the", "~the"]);
    }

    #[test]
    fn another_form_of_a_word_is_found_below_its_own_spelling() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(
            dir.path(),
            &[
                (1, "src/stem.rs", "fn next() { decode(bytes) }"),
                (2, "src/exact.rs", "fn next() { decodes(bytes) }"),
                (3, "src/other.rs", "fn next() { encode(bytes) }"),
            ],
        );
        let paths: Vec<String> = store
            .search(&keyword_query("decodes", false), &[], &[], 5)
            .expect("search")
            .into_iter()
            .map(|(_, chunk)| chunk.path)
            .collect();
        assert_eq!(paths, ["src/exact.rs", "src/stem.rs"]);
    }

    #[test]
    fn an_expanded_query_finds_abbreviations_below_its_own_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(
            dir.path(),
            &[
                (
                    1,
                    "src/abbreviated.rs",
                    "fn walk(tree: &Tree) { tree.iter().count() }",
                ),
                (
                    2,
                    "src/spelt.rs",
                    "fn walk(tree: &Tree) { tree.iterator().count() }",
                ),
                (
                    3,
                    "src/other.rs",
                    "fn walk(tree: &Tree) { tree.nodes().count() }",
                ),
            ],
        );
        let paths = |expand: bool| -> Vec<String> {
            store
                .search(&keyword_query("walk the iterator", expand), &[], &[], 5)
                .expect("search")
                .into_iter()
                .map(|(_, chunk)| chunk.path)
                .collect()
        };
        // Unexpanded, `iter` is no match: the two chunks without `iterator` tie on `walk`.
        assert_eq!(paths(false)[0], "src/spelt.rs");
        assert_eq!(
            paths(true),
            ["src/spelt.rs", "src/abbreviated.rs", "src/other.rs"]
        );
        let weights: Vec<(String, f32)> = keyword_query("walk the iterator", true)
            .into_iter()
            .map(|term| (term.text, term.weight))
            .collect();
        assert!(weights.contains(&("iter".to_string(), 0.3)));
        assert!(weights.contains(&("iterator".to_string(), 1.0)));
        assert!(!weights.iter().any(|(text, _)| text == "the"));
    }

    #[test]
    fn frequencies_are_counted_again_after_a_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeywordStore::open(dir.path()).expect("open");
        let keys: Vec<Term> = [
            store.fields.content,
            store.fields.symbol,
            store.fields.parent,
            store.fields.path_text,
        ]
        .iter()
        .map(|field| Term::from_field_text(*field, "rare"))
        .collect();
        let frequency = |store: &KeywordStore| {
            let searcher = store.reader.searcher();
            store
                .frequency(&searcher, "rare", &keys)
                .expect("frequency")
        };
        let mut writer = store.writer(1).expect("writer");
        writer
            .add(&chunk(1, "src/a.rs", "fn a() { rare }"))
            .expect("add");
        writer.commit(1).expect("commit");
        store.reload().expect("reload");
        assert_eq!(frequency(&store), 1);
        assert_eq!(frequency(&store), 1, "from the cache");
        let mut writer = store.writer(1).expect("writer");
        writer
            .add(&chunk(2, "src/rare.rs", "fn b() {}"))
            .expect("add");
        writer.commit(2).expect("commit");
        store.reload().expect("reload");
        // The second chunk holds the word in its path only: counted, in the new generation.
        assert_eq!(frequency(&store), 2);
    }
}
