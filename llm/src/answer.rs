//! One streamed answer from one provider: reading, decoding, think-stripping, timeouts, and
//! the final usage. Dropping an [`Answer`] drops the HTTP response, which closes the connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::{timeout_at, Instant};

use crate::client::{Inner, Provider};
use crate::error::TimeoutStage;
use crate::meter::{cost, estimate_tokens};
use crate::providers::{Parser, StreamItem};
use crate::think::ThinkFilter;
use crate::{ChatDelta, ChatResponse, ChatStream, LlmError, Usage};

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An answer being streamed.
pub(crate) struct Answer {
    inner: Arc<Inner>,
    provider: Arc<Provider>,
    body: Body,
    parser: Parser,
    queue: VecDeque<StreamItem>,
    think: ThinkFilter,
    /// Everything the model produced, think blocks included (for the output estimate).
    raw: String,
    text: String,
    input_estimate: u64,
    input: Option<u64>,
    output: Option<u64>,
    finish_reason: Option<String>,
    started: Instant,
    deadline: Instant,
    finished: bool,
    /// Whether the caller got the answer (a stream, or a collection in progress).
    delivered: bool,
}

impl Drop for Answer {
    /// A delivered answer dropped before its end was cancelled by the caller: the tokens used
    /// so far are booked, estimated.
    fn drop(&mut self) {
        if self.delivered && !self.finished {
            let usage = self.usage(true);
            self.inner
                .meter
                .record_cancelled(&self.provider.config.name, &usage);
            tracing::debug!(provider = %self.provider.config.name, "answer cancelled by the caller");
        }
    }
}

impl Answer {
    pub(crate) fn new(
        inner: Arc<Inner>,
        provider: Arc<Provider>,
        response: reqwest::Response,
        input_estimate: u64,
        started: Instant,
    ) -> Self {
        let deadline = started + provider.total_timeout;
        let parser = Parser::new(provider.config.kind);
        Self {
            inner,
            provider,
            body: Box::pin(response.bytes_stream()),
            parser,
            queue: VecDeque::new(),
            think: ThinkFilter::default(),
            raw: String::new(),
            text: String::new(),
            input_estimate,
            input: None,
            output: None,
            finish_reason: None,
            started,
            deadline,
            finished: false,
            delivered: false,
        }
    }

    fn name(&self) -> &str {
        &self.provider.config.name
    }

    /// Reads until the first token (or the end of a complete, empty answer) is queued.
    pub(crate) async fn wait_first_token(&mut self) -> Result<(), LlmError> {
        let deadline = self
            .deadline
            .min(self.started + self.provider.first_token_timeout);
        let stage = if deadline < self.deadline {
            TimeoutStage::FirstToken
        } else {
            TimeoutStage::Total
        };
        while !self
            .queue
            .iter()
            .any(|item| matches!(item, StreamItem::Text(_) | StreamItem::Done))
        {
            self.pull(deadline, stage).await?;
        }
        Ok(())
    }

    /// Decodes the next piece of the body into the queue.
    async fn pull(&mut self, deadline: Instant, stage: TimeoutStage) -> Result<(), LlmError> {
        let read = timeout_at(deadline, self.body.next()).await;
        let items = match read {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: self.name().to_owned(),
                    stage,
                    after_ms: millis(self.started.elapsed()),
                })
            }
            Ok(Some(Ok(bytes))) => self.parser.feed(&bytes),
            Ok(Some(Err(err))) => {
                tracing::debug!(provider = self.name(), error = %err, "stream read failed");
                return Err(LlmError::CutOff {
                    provider: self.name().to_owned(),
                });
            }
            Ok(None) => self.parser.finish(),
        };
        let items = items.map_err(|err| err.into_error(&self.provider.config.name))?;
        self.queue.extend(items);
        Ok(())
    }

    /// The next delta; `None` after the final [`ChatDelta::Done`] or an error.
    pub(crate) async fn next_delta(&mut self) -> Option<Result<ChatDelta, LlmError>> {
        if self.finished {
            return None;
        }
        loop {
            while let Some(item) = self.queue.pop_front() {
                match item {
                    StreamItem::Text(text) => {
                        self.raw.push_str(&text);
                        let visible = self.think.push(&text);
                        if !visible.is_empty() {
                            self.text.push_str(&visible);
                            return Some(Ok(ChatDelta::Text(visible)));
                        }
                    }
                    StreamItem::Usage { input, output } => {
                        self.input = input.or(self.input);
                        self.output = output.or(self.output);
                    }
                    StreamItem::Finish(reason) => self.finish_reason = Some(reason),
                    StreamItem::Done => {
                        let tail = self.think.finish();
                        if !tail.is_empty() {
                            self.text.push_str(&tail);
                            self.queue.push_front(StreamItem::Done);
                            return Some(Ok(ChatDelta::Text(tail)));
                        }
                        self.finished = true;
                        return Some(Ok(ChatDelta::Done(self.response())));
                    }
                }
            }
            if let Err(err) = self.pull(self.deadline, TimeoutStage::Total).await {
                self.finished = true;
                self.inner.note_failure(&self.provider, &err);
                return Some(Err(err));
            }
        }
    }

    /// The whole answer.
    pub(crate) async fn collect(mut self) -> Result<ChatResponse, LlmError> {
        self.delivered = true;
        while let Some(delta) = self.next_delta().await {
            if let ChatDelta::Done(response) = delta? {
                return Ok(response);
            }
        }
        Err(LlmError::CutOff {
            provider: self.name().to_owned(),
        })
    }

    pub(crate) fn into_stream(mut self) -> ChatStream {
        self.delivered = true;
        Box::pin(futures_util::stream::unfold(
            self,
            |mut answer| async move { answer.next_delta().await.map(|delta| (delta, answer)) },
        ))
    }

    /// Usage from the provider's counts, estimated where absent (or everywhere when `cut`:
    /// counts seen before the end are partial).
    fn usage(&self, cut: bool) -> Usage {
        let config = &self.provider.config;
        let input = self.input.unwrap_or(self.input_estimate);
        let output = match self.output {
            Some(output) if !cut => output,
            _ => estimate_tokens(&self.raw),
        };
        Usage {
            input_tokens: input,
            output_tokens: output,
            cost_usd: cost(config.prices.get(&config.model), input, output),
            estimated: cut || self.input.is_none() || self.output.is_none(),
        }
    }

    fn response(&self) -> ChatResponse {
        let config = &self.provider.config;
        let usage = self.usage(false);
        self.inner.meter.record(&config.name, &usage);
        ChatResponse {
            text: self.text.clone(),
            usage,
            provider: config.name.clone(),
            model: config.model.clone(),
            finish_reason: self.finish_reason.clone(),
        }
    }
}

pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
