//! The stream of a chat completion: a research session's events translated into OpenAI chunks
//! ([`Piece`]s framed as `chat.completion.chunk` SSE events, or gathered into one completion).

use aiex_research::EventKind;
use axum::response::sse::Event;
use futures_util::{Stream, StreamExt};

use super::{
    now_secs, ChatCompletionChunk, ChunkChoice, ChunkDelta, CompletionUsage, OpenAiError,
    OpenAiErrorBody,
};
use crate::server::research_stream::{progress_text, Followed};

/// A piece of the answer, before it is framed as a chunk or gathered into a completion.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Piece {
    Role,
    Content(String),
    Reasoning(String),
    Finish(&'static str),
    Usage(CompletionUsage),
    Error { code: String, message: String },
    Done,
}

/// Turns a session's events into [`Piece`]s.
#[derive(Debug, Clone)]
pub(super) struct Translator {
    id: String,
    session: String,
    model: String,
    created: u64,
    earlier: usize,
    started: bool,
    content_sent: bool,
    cancelled: bool,
    closed: bool,
    usage: aiex_research::usage::Usage,
}

impl Translator {
    pub(super) fn new(session: &str, model: &str, earlier: usize) -> Self {
        Translator {
            id: format!("chatcmpl-{session}"),
            session: session.to_string(),
            model: model.to_string(),
            created: now_secs(),
            earlier,
            started: false,
            content_sent: false,
            cancelled: false,
            closed: false,
            usage: aiex_research::usage::Usage::default(),
        }
    }

    pub(super) fn context(&self) -> (String, String, String) {
        (self.id.clone(), self.session.clone(), self.model.clone())
    }

    /// The pieces for one followed item.
    pub(super) fn on(&mut self, followed: Followed) -> Vec<Piece> {
        if self.closed {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(Piece::Role);
        }
        let event = match followed {
            Followed::Event(event) => *event,
            Followed::Control { data, .. } => {
                let text = |key: &str| data.get(key).and_then(|v| v.as_str()).unwrap_or_default();
                out.push(Piece::Error {
                    code: text("code").to_string(),
                    message: text("message").to_string(),
                });
                out.push(Piece::Done);
                self.closed = true;
                return out;
            }
        };
        if let Some(text) = self.reasoning(&event.kind) {
            out.push(Piece::Reasoning(text));
            return out;
        }
        match event.kind {
            EventKind::LlmUsage { usage, .. } => self.usage.add(&usage),
            EventKind::SynthesisDelta { text } => {
                self.content_sent = true;
                out.push(Piece::Content(text));
            }
            EventKind::ReportReady { report } => {
                if !self.content_sent {
                    out.push(Piece::Content(report_body(&report)));
                }
                out.push(Piece::Content(references(&report)));
                if !report.failed_searches.is_empty() {
                    let failed = report.failed_searches_markdown();
                    out.push(Piece::Content(format!("\n\n{}", failed.trim_end())));
                }
                self.content_sent = true;
                self.usage = report.usage;
            }
            EventKind::Cancelled {} => self.cancelled = true,
            EventKind::Failed { error } => {
                out.push(Piece::Error {
                    code: "research_failed".to_string(),
                    message: format!("the research session failed: {error}"),
                });
                out.push(Piece::Done);
                self.closed = true;
            }
            EventKind::Done { .. } => out.extend(self.ending()),
            _ => {}
        }
        out
    }

    /// The "thinking" line of an event that tells of the session's progress, else None.
    fn reasoning(&self, kind: &EventKind) -> Option<String> {
        let mut text = progress_text(kind)?;
        if matches!(kind, EventKind::SessionStarted { .. }) && self.earlier > 0 {
            text.push_str(&format!(
                "({} earlier messages of the conversation are not used to plan this session.)\n",
                self.earlier
            ));
        }
        Some(text)
    }

    /// The last pieces of a session that ended well.
    fn ending(&mut self) -> Vec<Piece> {
        self.closed = true;
        vec![
            Piece::Finish("stop"),
            Piece::Usage(CompletionUsage::of(&self.usage)),
            Piece::Done,
        ]
    }

    /// The pieces when the session's events end without `done`.
    pub(super) fn finish(&mut self) -> Vec<Piece> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let message = if self.cancelled {
            "the research session was cancelled"
        } else {
            "the research session stopped before its end"
        };
        vec![
            Piece::Error {
                code: if self.cancelled {
                    "cancelled"
                } else {
                    "incomplete"
                }
                .to_string(),
                message: message.to_string(),
            },
            Piece::Done,
        ]
    }

    /// The SSE frame of `piece`.
    pub(super) fn frame(&self, piece: &Piece) -> Event {
        let chunk = |delta: ChunkDelta, finish_reason: Option<&str>| ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_string(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: self.session.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_string),
            }],
            usage: None,
        };
        let value = match piece {
            Piece::Role => chunk(
                ChunkDelta {
                    role: Some("assistant".to_string()),
                    content: Some(String::new()),
                    reasoning_content: None,
                },
                None,
            ),
            Piece::Content(text) => chunk(
                ChunkDelta {
                    content: Some(text.clone()),
                    ..ChunkDelta::default()
                },
                None,
            ),
            Piece::Reasoning(text) => chunk(
                ChunkDelta {
                    reasoning_content: Some(text.clone()),
                    ..ChunkDelta::default()
                },
                None,
            ),
            Piece::Finish(reason) => chunk(ChunkDelta::default(), Some(reason)),
            Piece::Usage(usage) => ChatCompletionChunk {
                choices: Vec::new(),
                usage: Some(*usage),
                ..chunk(ChunkDelta::default(), None)
            },
            Piece::Error { code, message } => {
                let body = OpenAiErrorBody {
                    error: OpenAiError {
                        message: message.clone(),
                        kind: "server_error".to_string(),
                        param: None,
                        code: Some(code.clone()),
                    },
                };
                return Event::default()
                    .data(serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_string()));
            }
            Piece::Done => return Event::default().data("[DONE]"),
        };
        Event::default().data(serde_json::to_string(&value).unwrap_or_else(|_| "{}".to_string()))
    }
}

/// The pieces of a followed session, each with the translator as it stands after it.
pub(super) fn pieces(
    followed: impl Stream<Item = Followed> + Send + 'static,
    translator: Translator,
) -> impl Stream<Item = (Piece, Translator)> + Send + 'static {
    struct Reading<S> {
        followed: std::pin::Pin<Box<S>>,
        translator: Translator,
        ended: bool,
    }
    let reading = Reading {
        followed: Box::pin(followed),
        translator,
        ended: false,
    };
    futures_util::stream::unfold(reading, |mut reading| async move {
        if reading.ended {
            return None;
        }
        let pieces = match reading.followed.next().await {
            Some(item) => reading.translator.on(item),
            None => {
                reading.ended = true;
                reading.translator.finish()
            }
        };
        if reading.translator.closed {
            reading.ended = true;
        }
        let translator = reading.translator.clone();
        let batch: Vec<(Piece, Translator)> = pieces
            .into_iter()
            .map(|piece| (piece, translator.clone()))
            .collect();
        Some((futures_util::stream::iter(batch), reading))
    })
    .flatten()
}

/// The report's summary and sections, for a session whose text was not streamed.
fn report_body(report: &aiex_research::Report) -> String {
    let mut out = format!("{}\n\n", report.summary.trim());
    for section in &report.sections {
        out.push_str(&format!(
            "## {}\n\n{}\n\n",
            section.heading,
            section.body.trim()
        ));
    }
    out
}

/// The references as a Markdown list: a link to the URL, or the `path:lines` in its collection.
fn references(report: &aiex_research::Report) -> String {
    if report.references.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n\n## References\n\n");
    for reference in &report.references {
        let title = reference.locator.title.replace(['[', ']'], "");
        match &reference.locator.url {
            Some(url) => out.push_str(&format!("{}. [{title}]({url})\n", reference.n)),
            None => out.push_str(&format!(
                "{}. {title}: `{}`\n",
                reference.n,
                reference.place()
            )),
        }
    }
    out
}
