//! The LLM-backed planner and synthesizer (through `aiex-llm`). Both fall back to the
//! deterministic path when the model fails or answers with something unusable; the synthesizer's
//! citations are checked by the orchestrator like any other.

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use aiex_llm::{ChatDelta, ChatRequest, Llm, Message, Role, Templates};

use crate::event::SearchFailure;
use crate::evidence::Passage;
use crate::plan::{plan_question, Plan, Planner, SubQuestion};
use crate::synth::{
    extractive_section, passages_for, section_without_evidence, Draft, Synthesizer, SynthesizerKind,
};
use crate::template::Template;
use crate::text::truncate;
use crate::usage::Usage;
use crate::BoxFuture;

/// Longest passage text put in a prompt.
const PROMPT_PASSAGE_BYTES: usize = 1_200;

/// The prompts, as template files rendered by the LLM layer's templating.
static PROMPTS: std::sync::LazyLock<Templates> = std::sync::LazyLock::new(|| {
    let mut templates = Templates::new();
    for (name, source) in [
        ("plan", include_str!("../templates/plan.j2")),
        ("synthesis", include_str!("../templates/synthesis.j2")),
    ] {
        // Compiled by the tests; a broken one is a build defect, reported when rendered.
        if let Err(err) = templates.add(name, source) {
            tracing::error!(template = name, error = %err, "research prompt does not compile");
        }
    }
    templates
});

fn usage_of(usage: aiex_llm::Usage) -> Usage {
    Usage {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_usd: usage.cost_usd,
        calls: 1,
    }
}

/// Sub-questions and queries from the `fast` model, within the deterministic plan's frame
/// (title, key phrases, entities, template).
#[derive(Clone)]
pub struct LlmPlanner {
    llm: Llm,
}

impl LlmPlanner {
    pub fn new(llm: Llm) -> Self {
        LlmPlanner { llm }
    }
}

impl Planner for LlmPlanner {
    fn name(&self) -> &str {
        "llm"
    }

    fn plan<'a>(
        &'a self,
        question: &'a str,
        template: Option<&'static Template>,
        max_sub_questions: usize,
    ) -> BoxFuture<'a, crate::Result<(Plan, Usage)>> {
        Box::pin(async move {
            let base = plan_question(question, template, max_sub_questions);
            // A template fixes the sections: the model is not asked.
            if template.is_some() {
                return Ok((base, Usage::default()));
            }
            let request = plan_request(question, max_sub_questions)?;
            match self.llm.chat_json(request, &plan_schema()).await {
                Ok((value, response)) => {
                    let sub_questions = sub_questions_of(&value, max_sub_questions);
                    let usage = usage_of(response.usage);
                    if sub_questions.is_empty() {
                        return Ok((base, usage));
                    }
                    Ok((
                        Plan {
                            sub_questions,
                            planner: "llm".to_string(),
                            ..base
                        },
                        usage,
                    ))
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LLM planning failed; using the deterministic plan");
                    Ok((base, Usage::default()))
                }
            }
        })
    }
}

/// The JSON schema of a planning answer.
fn plan_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["sub_questions"],
        "properties": {"sub_questions": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["question", "queries"],
            "properties": {
                "heading": {"type": "string"},
                "question": {"type": "string", "minLength": 3},
                "queries": {"type": "array", "items": {"type": "string"}}
            }
        }}}
    })
}

/// The `fast` model's planning request for `question`.
fn plan_request(question: &str, max_sub_questions: usize) -> crate::Result<ChatRequest> {
    let prompt = PROMPTS
        .render(
            "plan",
            json!({"max_sub_questions": max_sub_questions, "question": question}),
        )
        .map_err(|err| crate::Error::Llm(err.to_string()))?;
    Ok(ChatRequest::new(
        Role::Fast,
        vec![
            Message::system("You plan research for programmers."),
            Message::user(prompt),
        ],
    )
    .with_max_tokens(600)
    .with_temperature(0.0))
}

/// The sub-questions of a planning answer (at most `max_sub_questions`, up to three queries
/// each; the question itself when it names none).
fn sub_questions_of(value: &serde_json::Value, max_sub_questions: usize) -> Vec<SubQuestion> {
    let mut sub_questions = Vec::new();
    for item in value["sub_questions"].as_array().into_iter().flatten() {
        let Some(text) = item["question"].as_str().map(str::trim) else {
            continue;
        };
        if text.is_empty() || sub_questions.len() >= max_sub_questions {
            continue;
        }
        let mut queries: Vec<String> = item["queries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| q.as_str().map(str::trim).filter(|q| !q.is_empty()))
            .map(|q| truncate(q, 200))
            .take(3)
            .collect();
        if queries.is_empty() {
            queries.push(text.to_string());
        }
        sub_questions.push(SubQuestion {
            index: sub_questions.len(),
            heading: item["heading"]
                .as_str()
                .filter(|h| !h.trim().is_empty())
                .unwrap_or(text)
                .trim()
                .to_string(),
            text: text.to_string(),
            queries,
        });
    }
    sub_questions
}

/// Synthesis by the `smart` model, streamed, with `[n]` citations to the evidence list.
#[derive(Clone)]
pub struct LlmSynthesizer {
    llm: Llm,
}

impl LlmSynthesizer {
    pub fn new(llm: Llm) -> Self {
        LlmSynthesizer { llm }
    }
}

/// Failed searches named in the synthesis prompt at most.
const PROMPT_FAILURES: usize = 10;

/// The synthesis prompt: question, sections to write, numbered evidence, and the searches that
/// failed (so that the model says evidence is missing rather than that nothing exists).
pub fn synthesis_prompt(
    plan: &Plan,
    passages: &[Passage],
    failures: &[SearchFailure],
) -> Result<String, aiex_llm::LlmError> {
    let failed: Vec<serde_json::Value> = failures
        .iter()
        .take(PROMPT_FAILURES)
        .map(|failure| {
            json!({
                "section": plan
                    .sub_questions
                    .get(failure.sub_question)
                    .map(|sub| sub.heading.clone())
                    .unwrap_or_default(),
                "query": failure.query,
                "source": failure.source.clone().unwrap_or_else(|| "search".to_string()),
                "error": failure.error,
            })
        })
        .collect();
    let passages: Vec<serde_json::Value> = passages
        .iter()
        .map(|passage| {
            json!({
                "n": passage.n,
                "title": passage.reference.locator.title,
                "locator": passage.reference.place(),
                "text": truncate(&passage.text, PROMPT_PASSAGE_BYTES),
            })
        })
        .collect();
    PROMPTS.render(
        "synthesis",
        json!({
            "question": plan.question,
            "passages": passages,
            "failed": failed,
            "summary_heading": plan.summary_heading,
            "sections": plan.sub_questions,
        }),
    )
}

/// Splits the model's Markdown into the summary and one body per sub-question: sections are
/// matched by heading, else by order.
pub fn split_sections(text: &str, plan: &Plan) -> Option<(String, Vec<Option<String>>)> {
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut preamble = String::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            parts.push((heading.trim().to_lowercase(), String::new()));
        } else if let Some((_, body)) = parts.last_mut() {
            body.push_str(line);
            body.push('\n');
        } else {
            preamble.push_str(line);
            preamble.push('\n');
        }
    }
    if parts.is_empty() {
        return None;
    }
    let summary_heading = plan.summary_heading.to_lowercase();
    let mut summary = preamble.trim().to_string();
    let mut bodies: Vec<Option<String>> = vec![None; plan.sub_questions.len()];
    let mut unmatched: Vec<String> = Vec::new();
    for (heading, body) in parts {
        if heading == summary_heading && summary.is_empty() {
            summary = body.trim().to_string();
            continue;
        }
        match plan
            .sub_questions
            .iter()
            .position(|sub| sub.heading.to_lowercase() == heading)
        {
            Some(index) if bodies[index].is_none() => bodies[index] = Some(body.trim().to_string()),
            _ => unmatched.push(body.trim().to_string()),
        }
    }
    let mut unmatched = unmatched.into_iter();
    for body in bodies.iter_mut().filter(|body| body.is_none()) {
        *body = unmatched.next();
    }
    Some((summary, bodies))
}

impl Synthesizer for LlmSynthesizer {
    fn name(&self) -> &str {
        "llm"
    }

    fn kind(&self) -> SynthesizerKind {
        SynthesizerKind::Llm
    }

    fn synthesize<'a>(
        &'a self,
        plan: &'a Plan,
        passages: &'a [Passage],
        failures: &'a [SearchFailure],
        max_output_tokens: u32,
        deltas: mpsc::UnboundedSender<String>,
    ) -> BoxFuture<'a, crate::Result<Draft>> {
        Box::pin(async move {
            let request = ChatRequest::new(
                Role::Smart,
                vec![
                    Message::system(
                        "You are a research assistant for programmers. You answer from numbered \
                         evidence passages only and cite them as [n].",
                    ),
                    Message::user(
                        synthesis_prompt(plan, passages, failures)
                            .map_err(|err| crate::Error::Llm(err.to_string()))?,
                    ),
                ],
            )
            .with_max_tokens(max_output_tokens)
            .with_temperature(0.2);
            let mut stream = self
                .llm
                .chat_stream(request)
                .await
                .map_err(|err| crate::Error::Llm(err.to_string()))?;
            let mut text = String::new();
            let mut usage = Usage::default();
            while let Some(item) = stream.next().await {
                match item.map_err(|err| crate::Error::Llm(err.to_string()))? {
                    ChatDelta::Text(piece) => {
                        text.push_str(&piece);
                        let _ = deltas.send(piece);
                    }
                    ChatDelta::Done(response) => {
                        usage = usage_of(response.usage);
                        text = response.text;
                    }
                }
            }
            let (summary, bodies) = split_sections(&text, plan).unwrap_or_else(|| {
                (
                    text.trim().to_string(),
                    vec![None; plan.sub_questions.len()],
                )
            });
            // A section the model left out is filled from the evidence.
            let sections = plan
                .sub_questions
                .iter()
                .zip(bodies)
                .map(|(sub, body)| match body.filter(|b| !b.is_empty()) {
                    Some(body) => body,
                    None => {
                        let mine = passages_for(passages, sub.index);
                        if mine.is_empty() {
                            section_without_evidence(sub.index, &sub.text, failures)
                        } else {
                            extractive_section(&sub.text, &mine)
                        }
                    }
                })
                .collect();
            Ok(Draft {
                summary,
                sections,
                usage,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_match_by_heading_then_order() {
        let plan = plan_question(
            "How does tokio schedule tasks, and how should I size its thread pool?",
            None,
            4,
        );
        let headings: Vec<String> = plan
            .sub_questions
            .iter()
            .map(|s| s.heading.clone())
            .collect();
        let text = format!(
            "## Summary\nTasks are stolen [1].\n## {}\nSecond [2].\n## Something else\nFirst [1].\n",
            headings[1]
        );
        let (summary, bodies) = split_sections(&text, &plan).expect("sections");
        assert_eq!(summary, "Tasks are stolen [1].");
        assert_eq!(bodies[1].as_deref(), Some("Second [2]."));
        assert_eq!(bodies[0].as_deref(), Some("First [1]."));
        assert!(split_sections("no headings at all", &plan).is_none());
        let prompt = synthesis_prompt(&plan, &[], &[]).expect("renders");
        assert!(!prompt.contains("These searches failed"), "{prompt}");
        let failure = SearchFailure {
            round: 1,
            sub_question: 0,
            query: "tokio scheduler".to_string(),
            source: Some("web".to_string()),
            error: "connection refused".to_string(),
        };
        let prompt = synthesis_prompt(&plan, &[], &[failure]).expect("renders");
        assert!(
            prompt.contains("- tokio scheduler (web: connection refused)"),
            "{prompt}"
        );
        assert!(prompt.contains("## Summary") && prompt.contains(&headings[0]));
        let plan_prompt = PROMPTS
            .render("plan", json!({"max_sub_questions": 3, "question": "Why?"}))
            .expect("renders");
        assert!(plan_prompt.starts_with("Break this programming question into at most 3 "));
        assert!(plan_prompt.ends_with("Answer with JSON only.\n\nQuestion: Why?"));
    }
}
