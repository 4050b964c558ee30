//! `aiex-research llm chat|health`: talk to the configured LLM providers directly.

use std::io::Write;
use std::path::PathBuf;

use aiex_llm::{ChatDelta, ChatRequest, ChatResponse, Llm, Message, Role};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures_util::StreamExt;

use super::llm_args::LlmArgs;

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Ask the configured LLM one question and print the answer.
    Chat(ChatArgs),
    /// Probe every configured provider; fails when a chat role has no healthy provider.
    Health(HealthArgs),
}

impl LlmCommand {
    /// Configuration overrides from the command's flags.
    pub fn overrides(&self) -> Vec<(String, String)> {
        match self {
            LlmCommand::Chat(args) => args.llm.overrides(),
            LlmCommand::Health(args) => args.llm.overrides(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The question.
    pub prompt: String,
    /// Role whose providers answer: fast, smart or embed.
    #[arg(long, default_value = "fast", value_parser = parse_role)]
    pub role: Role,
    /// Print the answer as it streams.
    #[arg(long, conflicts_with = "json_schema")]
    pub stream: bool,
    /// Ask for JSON valid against this JSON Schema file; prints the JSON value.
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// A system message.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Output token limit.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    #[command(flatten)]
    pub llm: LlmArgs,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub llm: LlmArgs,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

pub fn run(config: &aiex_config::Config, command: &LlmCommand) -> anyhow::Result<()> {
    let llm = Llm::from_config(&config.llm)
        .context("cannot set up the llm providers")?
        .context(
            "no llm provider is configured: pass --llm-url and --llm-model, set AIEX_LLM_URL \
             and AIEX_LLM_MODEL, or add [llm] providers to the configuration",
        )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        LlmCommand::Chat(args) => runtime.block_on(chat(&llm, args)),
        LlmCommand::Health(args) => runtime.block_on(health(&llm, args)),
    }
}

async fn chat(llm: &Llm, args: &ChatArgs) -> anyhow::Result<()> {
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(args.prompt.clone()));
    let mut request = ChatRequest::new(args.role, messages);
    request.max_tokens = args.max_tokens;
    request.temperature = args.temperature;
    let mut out = std::io::stdout().lock();

    if let Some(path) = &args.json_schema {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not json", path.display()))?;
        let (value, response) = llm.chat_json(request, &schema).await?;
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        print_usage(&response);
        return Ok(());
    }
    if !args.stream {
        let response = llm.chat(request).await?;
        writeln!(out, "{}", response.text)?;
        print_usage(&response);
        return Ok(());
    }
    let mut stream = llm.chat_stream(request).await?;
    while let Some(delta) = stream.next().await {
        match delta? {
            ChatDelta::Text(text) => {
                write!(out, "{text}")?;
                out.flush()?;
            }
            ChatDelta::Done(response) => {
                writeln!(out)?;
                print_usage(&response);
            }
        }
    }
    Ok(())
}

fn print_usage(response: &ChatResponse) {
    let usage = &response.usage;
    eprintln!(
        "{} ({}): {} tokens in, {} out{}, ${:.6}{}",
        response.provider,
        response.model,
        usage.input_tokens,
        usage.output_tokens,
        if usage.estimated { " (estimated)" } else { "" },
        usage.cost_usd,
        response
            .finish_reason
            .as_deref()
            .map(|reason| format!(", finished: {reason}"))
            .unwrap_or_default(),
    );
}

async fn health(llm: &Llm, args: &HealthArgs) -> anyhow::Result<()> {
    let report = llm.health().await;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for provider in &report.providers {
            let model = match provider.model_available {
                Some(false) => format!("{} (not listed)", provider.model),
                _ => provider.model.clone(),
            };
            writeln!(
                out,
                "{:<12} {:<9} {:<24} {:<4} breaker {:<9} {:>5} ms{}",
                provider.name,
                provider.kind.as_str(),
                model,
                if provider.ok { "ok" } else { "down" },
                provider.breaker.as_str(),
                provider.latency_ms,
                provider
                    .error
                    .as_deref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default(),
            )?;
        }
        writeln!(out, "ready: {}", report.ready)?;
    }
    if !report.ready {
        bail!("no healthy llm provider for the fast and smart roles");
    }
    Ok(())
}
