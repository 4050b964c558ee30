//! The plan stage: the planner's sub-questions, cut to the sub-question budget.

use super::run::{Run, Step};
use crate::event::{Budget, EventKind, ResearchRequest, Stage};

impl Run {
    /// Plans `request` and records the plan (and the planner's LLM usage).
    pub(super) async fn plan(&mut self, request: &ResearchRequest) -> Step<()> {
        let max_sub_questions = self.engine.config.research.max_sub_questions;
        let template = match &request.template {
            Some(name) => Some(crate::template::template(name)?),
            None => None,
        };
        // One more than allowed, so that a cut shows as an exhausted budget.
        let (mut plan, usage) = self
            .engine
            .planner
            .plan(&request.question, template, max_sub_questions + 1)
            .await?;
        if usage.calls > 0 {
            self.emit(EventKind::LlmUsage {
                stage: Stage::Plan,
                usage,
            })?;
        }
        if plan.sub_questions.len() > max_sub_questions {
            let proposed = plan.sub_questions.len();
            plan.sub_questions.truncate(max_sub_questions);
            self.budget(
                Budget::SubQuestions,
                Stage::Plan,
                max_sub_questions as f64,
                proposed as f64,
            )?;
        }
        self.emit(EventKind::Planned { plan })?;
        Ok(())
    }
}
