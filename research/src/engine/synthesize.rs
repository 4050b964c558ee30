//! The synthesis stage: the draft of the configured synthesizer (extractive when the token or
//! cost budget is spent, or when an LLM fails), its text streamed as deltas, and the report with
//! checked citations.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::run::{Run, Step};
use crate::cite::check_citations;
use crate::event::{Budget, EventKind, SearchFailure, Stage};
use crate::evidence::Passage;
use crate::graph::build_graph;
use crate::plan::Plan;
use crate::report::{Reference, Report, Section};
use crate::synth::{Draft, ExtractiveSynthesizer, Synthesizer, SynthesizerKind};
use crate::text::{now_millis, rfc3339};
use crate::{Error, Result};

/// Most output tokens asked of an LLM synthesis, and the fewest worth asking for.
const MAX_SYNTHESIS_TOKENS: u64 = 1_500;
const MIN_SYNTHESIS_TOKENS: u32 = 64;
/// Synthesis text gathered before it goes out as an event.
const DELTA_BYTES: usize = 64;

impl Run {
    /// The report from the evidence of `round` (of round 1 when `round` has none).
    pub(super) async fn synthesize(&mut self, round: u32) -> Step<Report> {
        let plan = self
            .state
            .plan
            .clone()
            .ok_or_else(|| Error::Internal("no plan".to_string()))?;
        let passages = self
            .state
            .evidence
            .get(&round)
            .or_else(|| self.state.evidence.get(&1))
            .map(|(passages, _)| passages.clone())
            .unwrap_or_default();
        let failures = self.state.failures.clone();
        let (synthesizer, max_output_tokens) = self.choose_synthesizer(&passages)?;
        let drafted = self
            .stream_draft(
                synthesizer.as_ref(),
                (&plan, &passages, &failures),
                max_output_tokens,
            )
            .await?;
        let (draft, synthesis) = match drafted {
            Ok(draft) => (draft, synthesizer.name().to_string()),
            Err(err) if synthesizer.kind() == SynthesizerKind::Llm => {
                self.emit(EventKind::Warning {
                    message: format!("LLM synthesis failed, falling back to extractive: {err}"),
                })?;
                let (deltas, _receiver) = mpsc::unbounded_channel();
                let draft = ExtractiveSynthesizer
                    .synthesize(&plan, &passages, &failures, 0, deltas)
                    .await?;
                (draft, ExtractiveSynthesizer.name().to_string())
            }
            Err(err) => return Err(err.into()),
        };
        if draft.usage.calls > 0 {
            self.emit(EventKind::LlmUsage {
                stage: Stage::Synthesize,
                usage: draft.usage,
            })?;
        }
        let mut report = self.checked_report(&plan, &passages, draft, synthesis)?;
        report.failed_searches = failures;
        Ok(report)
    }

    /// The engine's synthesizer and the output tokens it may use: the token budget less what was
    /// spent and the prompt's estimate. An LLM synthesizer gives way to extractive synthesis
    /// when too few tokens are left or the cost budget is spent (reported as exhausted).
    fn choose_synthesizer(&mut self, passages: &[Passage]) -> Result<(Arc<dyn Synthesizer>, u32)> {
        let max_tokens = self.engine.config.research.max_tokens;
        let max_cost_usd = self.engine.config.research.max_cost_usd;
        let usage = self.state.usage;
        let synthesizer = Arc::clone(&self.engine.synthesizer);
        let prompt_tokens = passages
            .iter()
            .map(|p| crate::text::approx_tokens(&p.text).min(300) + 20)
            .sum::<usize>() as u64
            + 300;
        let left = max_tokens
            .saturating_sub(usage.total_tokens())
            .saturating_sub(prompt_tokens);
        let max_output_tokens = left.min(MAX_SYNTHESIS_TOKENS) as u32;
        if synthesizer.kind() == SynthesizerKind::Extractive {
            return Ok((synthesizer, max_output_tokens));
        }
        if max_output_tokens < MIN_SYNTHESIS_TOKENS {
            let used = (usage.total_tokens() + prompt_tokens) as f64;
            self.budget(Budget::Tokens, Stage::Synthesize, max_tokens as f64, used)?;
            return Ok((Arc::new(ExtractiveSynthesizer), max_output_tokens));
        }
        if usage.cost_usd >= max_cost_usd {
            self.budget(
                Budget::Cost,
                Stage::Synthesize,
                max_cost_usd,
                usage.cost_usd,
            )?;
            return Ok((Arc::new(ExtractiveSynthesizer), max_output_tokens));
        }
        Ok((synthesizer, max_output_tokens))
    }

    /// Runs `synthesizer`, sending the text it streams as `synthesis_delta` events of a line or
    /// a few words; the synthesizer's own result inside.
    async fn stream_draft(
        &mut self,
        synthesizer: &dyn Synthesizer,
        (plan, passages, failures): (&Plan, &[Passage], &[SearchFailure]),
        max_output_tokens: u32,
    ) -> Step<Result<Draft>> {
        let (deltas, mut receiver) = mpsc::unbounded_channel::<String>();
        let mut pending = String::new();
        let future = synthesizer.synthesize(plan, passages, failures, max_output_tokens, deltas);
        tokio::pin!(future);
        let mut receiving = true;
        let drafted = loop {
            tokio::select! {
                result = &mut future => break result,
                delta = receiver.recv(), if receiving => match delta {
                    Some(text) => {
                        pending.push_str(&text);
                        if pending.len() >= DELTA_BYTES || pending.contains('\n') {
                            let text = std::mem::take(&mut pending);
                            self.emit(EventKind::SynthesisDelta { text })?;
                        }
                    }
                    None => receiving = false,
                },
            }
        };
        while let Ok(text) = receiver.try_recv() {
            pending.push_str(&text);
        }
        if !pending.is_empty() {
            self.emit(EventKind::SynthesisDelta { text: pending })?;
        }
        Ok(drafted)
    }

    /// The report of `draft`: its citations checked against the passages (the removed ones
    /// reported), the references and the knowledge graph.
    fn checked_report(
        &mut self,
        plan: &Plan,
        passages: &[Passage],
        draft: Draft,
        synthesis: String,
    ) -> Result<Report> {
        let count = passages.len();
        let mut removed = Vec::new();
        let summary = check_citations(&draft.summary, count);
        removed.extend(summary.removed.clone());
        let mut sections = Vec::new();
        for (position, sub_question) in plan.sub_questions.iter().enumerate() {
            let body = draft.sections.get(position).cloned().unwrap_or_default();
            let checked = check_citations(&body, count);
            removed.extend(checked.removed.clone());
            sections.push(Section {
                heading: sub_question.heading.clone(),
                sub_question: sub_question.text.clone(),
                body: checked.text,
                citations: checked.cited,
            });
        }
        if !removed.is_empty() {
            self.emit(EventKind::CitationsRemoved {
                removed: removed.clone(),
            })?;
        }
        Ok(Report {
            session: self.session.clone(),
            title: plan.title.clone(),
            question: plan.question.clone(),
            template: plan.template.clone(),
            summary_heading: plan.summary_heading.clone(),
            summary: summary.text,
            sections,
            references: passages.iter().map(Reference::from_passage).collect(),
            graph: build_graph(passages, &plan.key_phrases),
            usage: self.state.usage,
            synthesis,
            removed_citations: removed,
            budgets_hit: self.state.budgets_hit.clone(),
            failed_searches: Vec::new(),
            created_at: rfc3339(now_millis()),
        })
    }
}
