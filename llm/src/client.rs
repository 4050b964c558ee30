//! [`Llm`]: roles to providers, retries with backoff, circuit breakers, rate limits, fallback.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aiex_config::{LlmConfig, LlmProviderConfig, LlmProviderKind};
use aiex_resilience::{BreakerState, CallHealth, CircuitBreaker, RateLimits, RetryPolicy};
use serde_json::{json, Value};
use tokio::time::{timeout_at, Instant};

use crate::answer::{millis, Answer};
use crate::error::TimeoutStage;
use crate::health::{probe, HealthReport};
use crate::http::{send, timeout};
use crate::json::Schema;
use crate::meter::estimate_tokens;
use crate::providers;
use crate::{
    ChatRequest, ChatResponse, ChatStream, LlmError, Message, MessageRole, Role, Templates,
    UsageMeter,
};

/// One configured provider with its client, breaker and limits.
pub(crate) struct Provider {
    pub(crate) config: LlmProviderConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) connect_timeout: Duration,
    pub(crate) first_token_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) breaker: CircuitBreaker,
    limits: RateLimits,
}

pub(crate) struct Inner {
    providers: Vec<Arc<Provider>>,
    /// Indices into `providers` per role, in [`Role::ALL`] order.
    roles: [Vec<usize>; 3],
    retry: RetryPolicy,
    max_tokens: u32,
    pub(crate) meter: UsageMeter,
    templates: Templates,
}

impl Inner {
    /// Books a stream that failed after its first token (the attempt was already reported
    /// healthy to the breaker): the breaker counts provider failures only.
    pub(crate) fn note_failure(&self, provider: &Provider, err: &LlmError) {
        if err.counts_against_provider() {
            provider.breaker.record_failure();
        }
        self.meter.record_failure(&provider.config.name);
    }
}

/// A prepared chat call.
struct Call {
    role: Role,
    messages: Vec<Message>,
    max_tokens: u32,
    temperature: Option<f32>,
    schema: Option<Value>,
    input_estimate: u64,
}

/// The LLM layer: cheap to clone, shared by everything that talks to models.
#[derive(Clone)]
pub struct Llm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .inner
            .providers
            .iter()
            .map(|p| p.config.name.as_str())
            .collect();
        f.debug_struct("Llm").field("providers", &names).finish()
    }
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Fast => 0,
        Role::Smart => 1,
        Role::Embed => 2,
    }
}

impl Llm {
    /// The layer for `config`; `None` when no provider is configured.
    pub fn from_config(config: &LlmConfig) -> Result<Option<Llm>, LlmError> {
        if !config.is_configured() {
            return Ok(None);
        }
        let ms = Duration::from_millis;
        let mut providers = Vec::new();
        for provider in config.all_providers() {
            let connect_timeout = ms(provider
                .connect_timeout_ms
                .unwrap_or(config.connect_timeout_ms));
            let http = reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .user_agent(concat!("aiex/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|err| LlmError::Config {
                    message: format!("http client for {}: {err}", provider.name),
                })?;
            providers.push(Arc::new(Provider {
                http,
                connect_timeout,
                first_token_timeout: ms(provider
                    .first_token_timeout_ms
                    .unwrap_or(config.first_token_timeout_ms)),
                total_timeout: ms(provider.total_timeout_ms.unwrap_or(config.total_timeout_ms)),
                breaker: CircuitBreaker::new(
                    config.breaker_failures,
                    ms(config.breaker_cooldown_ms),
                ),
                limits: RateLimits::new(provider.requests_per_minute, provider.tokens_per_minute),
                config: provider,
            }));
        }
        let mut roles: [Vec<usize>; 3] = Default::default();
        for role in Role::ALL {
            for name in config.role_providers(role.as_str()) {
                let index = providers
                    .iter()
                    .position(|p| p.config.name == name)
                    .ok_or_else(|| LlmError::Config {
                        message: format!("role {role} names the unknown provider `{name}`"),
                    })?;
                roles[role_index(role)].push(index);
            }
        }
        Ok(Some(Llm {
            inner: Arc::new(Inner {
                providers,
                roles,
                retry: RetryPolicy {
                    max_retries: config.max_retries,
                    base: ms(config.retry_base_ms),
                    max_backoff: ms(config.retry_max_ms),
                    max_retry_after: ms(config.retry_max_ms),
                },
                max_tokens: config.max_tokens,
                meter: UsageMeter::default(),
                templates: Templates::new(),
            }),
        }))
    }

    /// Provider names serving `role`, first choice first.
    pub fn role_providers(&self, role: Role) -> Vec<String> {
        self.inner.roles[role_index(role)]
            .iter()
            .map(|&i| self.inner.providers[i].config.name.clone())
            .collect()
    }

    /// One complete answer (streamed internally, so the first-token timeout applies; a stream
    /// that fails midway is asked again).
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let call = self.prepare(request, None)?;
        self.complete(&call).await
    }

    /// A streamed answer; dropping the stream cancels the HTTP request. Retries and fallback
    /// happen before the first token; an error after it ends the stream.
    pub async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let call = self.prepare(request, None)?;
        Ok(self.open(&call).await?.into_stream())
    }

    /// A JSON answer valid against `schema` (an empty object asks for any JSON object). An
    /// invalid answer is repaired once by asking again with the validation error; the returned
    /// usage covers both calls.
    pub async fn chat_json(
        &self,
        request: ChatRequest,
        schema: &Value,
    ) -> Result<(Value, ChatResponse), LlmError> {
        let compiled = Schema::compile(schema)?;
        let first = self
            .complete(&self.prepare(request.clone(), Some(schema))?)
            .await?;
        let problem = match compiled.check(&first.text) {
            Ok(value) => return Ok((value, first)),
            Err(problem) => problem,
        };
        tracing::info!(provider = %first.provider, %problem, "json answer invalid, asking for a repair");
        let repair_prompt = self.inner.templates.render(
            "json_repair",
            json!({"error": problem, "schema": schema_text(schema)}),
        )?;
        let mut repair = request;
        repair.messages.push(Message::assistant(first.text.clone()));
        repair.messages.push(Message::user(repair_prompt));
        let second = self.complete(&self.prepare(repair, Some(schema))?).await?;
        let usage = first.usage.plus(second.usage);
        match compiled.check(&second.text) {
            Ok(value) => Ok((value, ChatResponse { usage, ..second })),
            Err(message) => Err(LlmError::InvalidJson {
                message,
                text: second.text,
            }),
        }
    }

    /// Embeddings of `inputs`, in order, from the `embed` role.
    pub async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: u64 = inputs.iter().map(|text| estimate_tokens(text)).sum();
        self.over_role(Role::Embed, |provider| async move {
            if provider.config.kind == LlmProviderKind::Anthropic {
                return Err(LlmError::Unsupported {
                    provider: provider.config.name.clone(),
                    what: "embeddings",
                });
            }
            self.with_retries(&provider, tokens, || self.embed_once(&provider, inputs))
                .await
        })
        .await
    }

    /// Usage totals since creation.
    pub fn meter(&self) -> &UsageMeter {
        &self.inner.meter
    }

    /// Each provider's breaker, for metrics.
    pub fn breaker_states(&self) -> Vec<(String, BreakerState)> {
        self.inner
            .providers
            .iter()
            .map(|p| (p.config.name.clone(), p.breaker.state()))
            .collect()
    }

    /// Probes every provider concurrently.
    pub async fn health(&self) -> HealthReport {
        let probes = self.inner.providers.iter().map(|p| probe(p));
        let providers = futures_util::future::join_all(probes).await;
        let ready = [Role::Fast, Role::Smart].iter().all(|role| {
            self.inner.roles[role_index(*role)]
                .iter()
                .any(|&i| providers[i].ok)
        });
        HealthReport { ready, providers }
    }

    fn prepare(&self, request: ChatRequest, schema: Option<&Value>) -> Result<Call, LlmError> {
        let mut messages = request.messages;
        if let Some(schema) = schema {
            let instruction = self
                .inner
                .templates
                .render("json_instruction", json!({"schema": schema_text(schema)}))?;
            match messages.iter_mut().find(|m| m.role == MessageRole::System) {
                Some(system) => {
                    system.content.push_str("\n\n");
                    system.content.push_str(&instruction);
                }
                None => messages.insert(0, Message::system(instruction)),
            }
        }
        let input_estimate = messages
            .iter()
            .map(|m| estimate_tokens(&m.content) + 4)
            .sum();
        Ok(Call {
            role: request.role,
            max_tokens: request.max_tokens.unwrap_or(self.inner.max_tokens),
            temperature: request.temperature,
            schema: schema.cloned(),
            messages,
            input_estimate,
        })
    }

    /// The whole answer; a stream that breaks after its first token is asked again.
    async fn complete(&self, call: &Call) -> Result<ChatResponse, LlmError> {
        let mut round = 0;
        loop {
            let answer = self.open(call).await?;
            match answer.collect().await {
                Ok(response) => return Ok(response),
                Err(err) if err.is_retryable() && round < self.inner.retry.max_retries => {
                    tracing::warn!(error = %err, "answer broke off, asking again");
                    if let Some(delay) = self.inner.retry.delay(round, err.retry_after()) {
                        tokio::time::sleep(delay).await;
                    }
                    round += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// An answer streaming from the first provider of the role that produces a first token.
    async fn open(&self, call: &Call) -> Result<Answer, LlmError> {
        let tokens = call.input_estimate + u64::from(call.max_tokens);
        self.over_role(call.role, |provider| async move {
            self.with_retries(&provider, tokens, || self.attempt(&provider, call))
                .await
        })
        .await
    }

    /// Tries the providers of `role` in order until one succeeds.
    async fn over_role<T, F, Fut>(&self, role: Role, mut op: F) -> Result<T, LlmError>
    where
        F: FnMut(Arc<Provider>) -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let indices = &self.inner.roles[role_index(role)];
        let mut tried = Vec::new();
        let mut last = None;
        for &index in indices {
            let provider = Arc::clone(&self.inner.providers[index]);
            let name = provider.config.name.clone();
            match op(provider).await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_caller_error() => return Err(err),
                Err(err) => {
                    tracing::warn!(provider = %name, %role, error = %err, "provider failed, trying the next one");
                    tried.push(name);
                    last = Some(err);
                }
            }
        }
        match last {
            None => Err(LlmError::NoProvider { role }),
            Some(last) if tried.len() == 1 => Err(last),
            Some(last) => Err(LlmError::AllFailed {
                role,
                tried: tried.join(", "),
                last: Box::new(last),
            }),
        }
    }

    /// Runs `op` against one provider with its breaker, rate limits and retries.
    async fn with_retries<T, F, Fut>(
        &self,
        provider: &Provider,
        tokens: u64,
        mut op: F,
    ) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let name = &provider.config.name;
        let mut attempt = 0;
        loop {
            let Some(guard) = provider.breaker.try_acquire() else {
                return Err(LlmError::BreakerOpen {
                    provider: name.clone(),
                });
            };
            provider.limits.acquire(tokens).await;
            let err = match op().await {
                Ok(value) => {
                    guard.record(CallHealth::Healthy);
                    return Ok(value);
                }
                Err(err) => err,
            };
            guard.record(err.call_health());
            self.inner.meter.record_failure(name);
            if !err.is_retryable() || attempt >= self.inner.retry.max_retries {
                return Err(err);
            }
            let Some(delay) = self.inner.retry.delay(attempt, err.retry_after()) else {
                return Err(err);
            };
            tracing::info!(provider = %name, error = %err, delay_ms = millis(delay), "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One request to one provider, up to its first token.
    async fn attempt(&self, provider: &Arc<Provider>, call: &Call) -> Result<Answer, LlmError> {
        let started = Instant::now();
        let request = providers::chat_request(
            &provider.http,
            &provider.config,
            &call.messages,
            call.max_tokens,
            call.temperature,
            call.schema.as_ref(),
        );
        let deadline = started + provider.first_token_timeout.min(provider.total_timeout);
        let response = send(provider, request, deadline, started).await?;
        let mut answer = Answer::new(
            Arc::clone(&self.inner),
            Arc::clone(provider),
            response,
            call.input_estimate,
            started,
        );
        answer.wait_first_token().await?;
        Ok(answer)
    }

    async fn embed_once(
        &self,
        provider: &Provider,
        inputs: &[String],
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let name = &provider.config.name;
        let started = Instant::now();
        let deadline = started + provider.total_timeout;
        let request = providers::embed_request(&provider.http, &provider.config, inputs)
            .ok_or_else(|| LlmError::Unsupported {
                provider: name.clone(),
                what: "embeddings",
            })?;
        let response = send(provider, request, deadline, started).await?;
        let body = match timeout_at(deadline, response.json::<Value>()).await {
            Err(_) => return Err(timeout(provider, TimeoutStage::Total, started)),
            Ok(Err(err)) => {
                return Err(LlmError::Malformed {
                    provider: name.clone(),
                    message: format!("embeddings body: {err}"),
                })
            }
            Ok(Ok(body)) => body,
        };
        let (vectors, tokens) =
            providers::parse_embeddings(provider.config.kind, &body).map_err(|message| {
                LlmError::Malformed {
                    provider: name.clone(),
                    message,
                }
            })?;
        if vectors.len() != inputs.len() {
            return Err(LlmError::Malformed {
                provider: name.clone(),
                message: format!("{} vectors for {} inputs", vectors.len(), inputs.len()),
            });
        }
        let tokens =
            tokens.unwrap_or_else(|| inputs.iter().map(|text| estimate_tokens(text)).sum());
        self.inner.meter.record_embed(name, tokens);
        Ok(vectors)
    }
}

fn schema_text(schema: &Value) -> Option<String> {
    if schema.as_object().is_some_and(|o| o.is_empty()) {
        None
    } else {
        serde_json::to_string(schema).ok()
    }
}
