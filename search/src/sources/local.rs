//! Code and docs sources: hybrid (or keyword/vector) search over local collections, run on the
//! bounded CPU pool.

use std::sync::Arc;
use std::time::Duration;

use aiex_config::SearchMode;
use aiex_indexer::chunk::ChunkKind;
use aiex_indexer::{Language, SearchHit, SearchRequest, Searcher};

pub use crate::cpu::run_cpu;
use crate::hit::{Hit, Locator};
use crate::source::{BoxFuture, Source, SourceError, SourceQuery, SourceResults};

/// Local collections of one kind, searched with one mode.
pub struct LocalSource {
    name: String,
    searcher: Arc<Searcher>,
    mode: SearchMode,
    pool: Arc<rayon::ThreadPool>,
    ttl: Duration,
}

impl LocalSource {
    pub fn new(
        name: impl Into<String>,
        searcher: Arc<Searcher>,
        mode: SearchMode,
        pool: Arc<rayon::ThreadPool>,
        ttl: Duration,
    ) -> Self {
        LocalSource {
            name: name.into(),
            searcher,
            mode,
            pool,
            ttl,
        }
    }
}

fn to_hit(source: &str, hit: SearchHit) -> Hit {
    let page = (hit.kind == ChunkKind::Page)
        .then(|| {
            hit.symbol
                .as_deref()
                .and_then(aiex_indexer::pdf::page_number)
        })
        .flatten();
    let title = match (&hit.symbol, page) {
        (_, Some(page)) => format!("{} (page {page})", hit.path),
        (Some(symbol), None) => format!("{} {symbol}", hit.kind.name()),
        (None, None) => hit.path.clone(),
    };
    Hit {
        locator: Locator {
            source: source.to_string(),
            title,
            url: hit.url,
            collection: Some(hit.collection),
            path: Some(hit.path),
            start_line: Some(hit.start_line),
            end_line: Some(hit.end_line),
            language: Some(hit.language.name().to_string()),
            symbol: hit.symbol,
            kind: Some(hit.kind.name().to_string()),
            page,
        },
        snippet: hit.snippet,
        snippet_line: Some(hit.snippet_start_line),
        highlights: hit.highlights,
        score: hit.score,
        published: None,
        chunk_id: Some(hit.chunk_id),
    }
}

impl Source for LocalSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn cache_token(&self) -> String {
        self.searcher.refresh().unwrap_or_default()
    }

    fn cache_ttl(&self) -> Duration {
        self.ttl
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        Box::pin(async move {
            let own = self.searcher.collection_names();
            // Collections named in the request that are not this source's are another source's.
            let collections: Vec<String> = if query.collections.is_empty() {
                own
            } else {
                query
                    .collections
                    .iter()
                    .filter(|name| own.contains(name))
                    .cloned()
                    .collect()
            };
            if collections.is_empty() {
                return Ok(SourceResults::default());
            }
            let languages = query
                .languages
                .iter()
                .map(|name| {
                    Language::from_name(name).ok_or_else(|| {
                        SourceError::Unavailable(format!("unknown language `{name}`"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mode = query.mode.unwrap_or(self.mode);
            let request = SearchRequest {
                query: query.query.clone(),
                mode,
                collections,
                languages,
                path_glob: query.path_glob.clone(),
                limit: query.limit,
            };
            let searcher = self.searcher.clone();
            let results = run_cpu(&self.pool, move || searcher.search(&request)).await??;
            let mut notes: Vec<String> = results
                .vectors_incomplete
                .iter()
                .map(|name| {
                    format!(
                        "vectors of `{name}` are still being computed; vector results may be partial"
                    )
                })
                .collect();
            notes.extend(
                results
                    .vectors_unavailable
                    .iter()
                    .map(|(name, reason)| match mode {
                        // Vector mode has no keyword side to fall back on.
                        SearchMode::Vector => {
                            format!("`{name}` has no vector search ({reason}): no results from it")
                        }
                        _ => format!("`{name}` searched by keywords only ({reason})"),
                    }),
            );
            let name = self.name.clone();
            Ok(SourceResults {
                hits: results
                    .hits
                    .into_iter()
                    .map(|hit| to_hit(&name, hit))
                    .collect(),
                notes,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_hit(path: &str, kind: ChunkKind, symbol: Option<&str>) -> SearchHit {
        SearchHit {
            collection: "manuals".to_string(),
            path: path.to_string(),
            start_line: 5,
            end_line: 9,
            language: Language::Pdf,
            symbol: symbol.map(str::to_string),
            kind,
            parent: None,
            score: 1.0,
            snippet: "turn the knob".to_string(),
            snippet_start_line: 6,
            highlights: Vec::new(),
            url: None,
            chunk_id: 7,
        }
    }

    #[test]
    fn pdf_pages_are_located_by_page() {
        let hit = to_hit(
            "docs",
            search_hit("widget/manual.pdf", ChunkKind::Page, Some("page 2")),
        );
        assert_eq!(hit.locator.page, Some(2));
        assert_eq!(hit.locator.title, "widget/manual.pdf (page 2)");
        assert_eq!(hit.locator.place(), "manuals:widget/manual.pdf (page 2)");
        let json = serde_json::to_value(&hit).expect("json");
        assert_eq!(json["page"], 2);

        let section = to_hit(
            "docs",
            search_hit("guide.md", ChunkKind::Section, Some("page 2")),
        );
        assert_eq!(section.locator.page, None);
        assert_eq!(section.locator.title, "section page 2");
        assert_eq!(section.locator.place(), "manuals:guide.md:5-9");
    }
}
