//! The fetch stage: the best web results of a round read as pages, within the page and
//! wall-time budgets, each recorded (and synced) as it is read or fails.

use std::collections::HashSet;

use super::run::{Run, Step};
use super::PageText;
use crate::event::{Budget, EventKind, Stage};
use crate::evidence::FoundText;
use crate::text::{now_millis, rfc3339};

impl Run {
    /// Reads the pages of `round` not read yet, best first; skipped without a page reader or web
    /// results.
    pub(super) async fn fetch_round(&mut self, round: u32) -> Step<()> {
        let Some(reader) = self.engine.pages.clone() else {
            return self
                .skip(Stage::Fetch, round, "page fetching is not configured")
                .await;
        };
        let urls = self.urls_to_read(round);
        if urls.is_empty() {
            return self
                .skip(Stage::Fetch, round, "no web results to read")
                .await;
        }
        let started = self.begin(Stage::Fetch, round).await?;
        let max_pages = self.engine.config.research.max_pages;
        for (score, sub, url) in urls {
            self.check_cancelled()?;
            if self.state.pages_tried >= max_pages {
                let used = self.state.pages_tried as f64;
                self.budget(Budget::Pages, Stage::Fetch, max_pages as f64, used)?;
                break;
            }
            if !self.wall_time_left(Stage::Fetch)? {
                break;
            }
            match reader.read(&url).await {
                Ok(page) => self.emit(EventKind::PageFetched {
                    round,
                    sub_question: sub,
                    page: page_found(page, score),
                })?,
                Err(error) => self.emit(EventKind::PageFailed { round, url, error })?,
            }
            self.sync().await?;
        }
        self.finish(Stage::Fetch, round, started).await
    }

    /// The web results of `round` not read yet, one per URL: (score, sub-question, URL), best
    /// first.
    fn urls_to_read(&self, round: u32) -> Vec<(f32, usize, String)> {
        let mut urls: Vec<(f32, usize, String)> = Vec::new();
        for ((search_round, sub, _), found) in &self.state.searches {
            if *search_round != round {
                continue;
            }
            for item in found {
                if let Some(url) = &item.locator.url {
                    if !urls.iter().any(|(_, _, known)| known == url) {
                        urls.push((item.score, *sub, url.clone()));
                    }
                }
            }
        }
        let done: HashSet<String> = self
            .state
            .pages
            .iter()
            .filter_map(|(_, _, page)| page.locator.url.clone())
            .collect();
        urls.retain(|(_, _, url)| !done.contains(url));
        urls.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        urls
    }
}

/// A read page as a found text, with the score of the result that led to it.
fn page_found(page: PageText, score: f32) -> FoundText {
    FoundText {
        locator: aiex_search::Locator::web("page", &page.url, &page.title),
        parent: None,
        text: page.text,
        score,
        retrieved_at: rfc3339(now_millis()),
    }
}
