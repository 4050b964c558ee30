//! The evidence stage: everything found so far per sub-question, ranked and cut to the evidence
//! budget on the search CPU pool (with the query model when local sources are known).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aiex_indexer::search::QueryEmbedder;

use super::run::{Run, Step};
use crate::event::{Budget, EventKind, Stage};
use crate::evidence::{
    select_evidence, FoundText, NoEmbeddings, Selection, SelectionLimits, TextEmbedder,
};
use crate::plan::SubQuestion;
use crate::{Error, Result};

/// The query model as a [`TextEmbedder`]; gives up after the first failure (no model installed).
struct ModelEmbedder {
    model: Arc<QueryEmbedder>,
    failed: AtomicBool,
}

impl TextEmbedder for ModelEmbedder {
    fn embed(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        match self.model.embed(text) {
            Ok(vector) => Some(vector),
            Err(err) => {
                tracing::warn!(error = %err, "evidence ranked without embeddings");
                self.failed.store(true, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Run {
    /// Selects the evidence of `round` from everything found up to it.
    pub(super) async fn evidence_round(&mut self, round: u32) -> Step<()> {
        let plan = self
            .state
            .plan
            .clone()
            .ok_or_else(|| Error::Internal("no plan".to_string()))?;
        let found = self.found_per_question(round);
        let research = &self.engine.config.research;
        let limits = SelectionLimits {
            token_budget: research.evidence_tokens,
            per_sub_question: research.passages_per_sub_question,
            embed_candidates: research.embed_candidates,
        };
        let selection = self.select(plan.sub_questions, found, limits).await?;
        if selection.budget_reached {
            let used = selection
                .passages
                .iter()
                .map(|p| crate::text::approx_tokens(&p.text))
                .sum::<usize>() as f64;
            self.budget(
                Budget::EvidenceTokens,
                Stage::Evidence,
                limits.token_budget as f64,
                used,
            )?;
        }
        self.emit(EventKind::EvidenceSelected {
            round,
            passages: selection.passages,
            gaps: selection.gaps,
        })?;
        Ok(())
    }

    /// Runs the selection off the async workers: on the search CPU pool with the query model, or
    /// on a blocking thread without embeddings when no local sources are known.
    async fn select(
        &self,
        sub_questions: Vec<SubQuestion>,
        found: Vec<Vec<FoundText>>,
        limits: SelectionLimits,
    ) -> Result<Selection> {
        match self.engine.local.clone() {
            Some(local) => {
                let embedder = ModelEmbedder {
                    model: Arc::clone(&local.query_embedder),
                    failed: AtomicBool::new(false),
                };
                aiex_search::sources::local::run_cpu(&local.pool, move || {
                    select_evidence(&sub_questions, &found, &embedder, limits)
                })
                .await
                .map_err(|err| Error::Internal(err.to_string()))
            }
            None => tokio::task::spawn_blocking(move || {
                select_evidence(&sub_questions, &found, &NoEmbeddings, limits)
            })
            .await
            .map_err(|err| Error::Internal(err.to_string())),
        }
    }

    /// Everything found for each sub-question up to `round`: fetched pages first, then the search
    /// results in query order, one copy of each text.
    fn found_per_question(&self, round: u32) -> Vec<Vec<FoundText>> {
        let Some(plan) = &self.state.plan else {
            return Vec::new();
        };
        let mut out: Vec<Vec<FoundText>> = vec![Vec::new(); plan.sub_questions.len()];
        let mut seen: Vec<HashSet<String>> = vec![HashSet::new(); plan.sub_questions.len()];
        for (page_round, sub, page) in &self.state.pages {
            if *page_round <= round && *sub < out.len() && seen[*sub].insert(page.key()) {
                out[*sub].push(page.clone());
            }
        }
        for search_round in 1..=round {
            let mut keys: Vec<&(u32, usize, String)> = self
                .state
                .searches
                .keys()
                .filter(|(r, _, _)| *r == search_round)
                .collect();
            // Plan order, so the same searches give the same evidence.
            keys.sort_by_key(|(_, sub, query)| {
                let position = plan
                    .sub_questions
                    .get(*sub)
                    .and_then(|s| s.queries.iter().position(|q| q == query))
                    .unwrap_or(usize::MAX);
                (*sub, position, query.clone())
            });
            for key in keys {
                let sub = key.1;
                if sub >= out.len() {
                    continue;
                }
                for item in &self.state.searches[key] {
                    if seen[sub].insert(item.key()) {
                        out[sub].push(item.clone());
                    }
                }
            }
        }
        out
    }
}
