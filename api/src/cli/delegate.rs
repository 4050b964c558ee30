//! The command line beside a running `serve`: a data directory's embedded vector stores have one
//! owner at a time, so when a server of the same data directory is running (its `server.json`,
//! see [`aiex_api::server::server_file`]) and answers, `index`, `docs add`, `search`,
//! `research` and `sessions resume` send their work to it over its HTTP API, and `mcp` relays
//! its stdio to the server's `/mcp`, authenticated with its local owner token, and print what
//! the local path prints. `--no-server` (or `AIEX_NO_SERVER=1`) runs locally.
//!
//! This module is the transport: finding the server, requests, errors and server-sent events.
//! The commands turn the API's answers into their own types and print them with their own code.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::de::DeserializeOwned;

use aiex_api::server::server_file::{self, ServerFile};

/// How long the health check may take: a server that does not answer by then is not used.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(1500);
/// Connecting to the loopback server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A running server of this data directory that answered its health check.
pub struct Server {
    file: ServerFile,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("file", &self.file).finish()
    }
}

/// The server of `config`'s data directory to send work to, if one runs and answers. Never an
/// error: whatever is wrong (no file, a stale or unreadable one, a server that does not answer)
/// means running locally, said on stderr at `-v`. `stay_local` is why this command runs here
/// even beside a server (a flag the HTTP API has no equivalent for): said at `-v` when a server
/// is running.
pub fn find(
    config: &aiex_config::Config,
    no_server: bool,
    stay_local: Option<&str>,
) -> Option<Server> {
    if no_server {
        tracing::info!("--no-server: running locally");
        return None;
    }
    if config.vector.backend == aiex_config::VectorBackend::Server {
        // Vectors live in Qdrant: processes share them, nothing to hand over.
        return None;
    }
    let server = find_in(&config.data_dir)?;
    if let Some(reason) = stay_local {
        tracing::info!(
            "a server runs at {}, but {reason}: running in this process",
            server.url()
        );
        return None;
    }
    tracing::info!("sending the work to the server at {}", server.url());
    Some(server)
}

fn find_in(data_dir: &Path) -> Option<Server> {
    let file = match ServerFile::read(data_dir) {
        Ok(Some(file)) => file,
        Ok(None) => return None,
        Err(err) => {
            tracing::info!("ignoring the server file: {err}");
            return None;
        }
    };
    if file.process_gone() {
        tracing::info!(
            "ignoring {}: its server (process {}) is gone",
            server_file::path(data_dir).display(),
            file.pid
        );
        server_file::remove_if_stale(data_dir, &file);
        return None;
    }
    if file.version != env!("CARGO_PKG_VERSION") {
        tracing::info!(
            "the server at {} is version {}, this is {}: running locally",
            file.url,
            file.version,
            env!("CARGO_PKG_VERSION")
        );
        return None;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::info!("starting the async runtime: {err}: running locally");
            return None;
        }
    };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::info!("building the HTTP client: {err}: running locally");
            return None;
        }
    };
    let health = runtime.block_on(async {
        client
            .get(format!("{}/healthz", file.url))
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
    });
    if let Err(err) = health {
        tracing::info!(
            "the server at {} does not answer ({err}): running locally",
            file.url
        );
        return None;
    }
    Some(Server {
        file,
        client,
        runtime,
    })
}

impl Server {
    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.file.url
    }

    /// Whether it runs indexing jobs (`serve --no-jobs` only queues them).
    pub fn runs_jobs(&self) -> bool {
        self.file.jobs
    }

    /// The server's MCP endpoint and the token that authenticates this process there.
    pub fn mcp_endpoint(&self) -> (String, String) {
        (format!("{}/mcp", self.file.url), self.file.token.clone())
    }

    /// Runs `future` on this client's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.file.url))
            .bearer_auth(&self.file.token)
    }

    /// `POST path` with a JSON body; the answer when it is a success, else the API's error.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        accept: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::ACCEPT, accept)
            .json(body)
            .send()
            .await
            .with_context(|| format!("sending the request to the server at {}", self.url()))?;
        checked(response).await
    }

    /// `POST path` with a JSON body, the JSON answer.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        let response = self.post(path, body, "application/json").await?;
        response
            .json()
            .await
            .with_context(|| format!("reading the answer of the server at {}", self.url()))
    }

    /// `GET path`, the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .request(reqwest::Method::GET, path)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("sending the request to the server at {}", self.url()))?;
        checked(response)
            .await?
            .json()
            .await
            .with_context(|| format!("reading the answer of the server at {}", self.url()))
    }

    /// `POST path` with a JSON body, the answer read as a stream of server-sent events.
    pub async fn post_events(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<EventStream> {
        let response = self.post(path, body, "text/event-stream").await?;
        Ok(EventStream::new(response))
    }

    /// `GET path` as a stream of server-sent events.
    pub async fn events(&self, path: &str) -> anyhow::Result<EventStream> {
        let response = self
            .request(reqwest::Method::GET, path)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .with_context(|| format!("following events on the server at {}", self.url()))?;
        Ok(EventStream::new(checked(response).await?))
    }

    /// Follows the server-sent events of `events_path` (a `job` or a `session`: `what`), each
    /// `data` read as a `T` and handed to `each` until it breaks the loop. Ctrl-C deletes
    /// `cancel_path` on the server and ends with `interrupted`; an error frame, a stream that
    /// ends first or an event that cannot be read end with an error.
    pub async fn follow<T: DeserializeOwned>(
        &self,
        events_path: &str,
        what: &str,
        cancel_path: &str,
        interrupted: &str,
        mut each: impl FnMut(T) -> anyhow::Result<std::ops::ControlFlow<()>>,
    ) -> anyhow::Result<()> {
        let mut events = self.events(events_path).await?;
        let interrupt = tokio::signal::ctrl_c();
        tokio::pin!(interrupt);
        loop {
            let frame = tokio::select! {
                frame = events.next() => frame?,
                _ = &mut interrupt => {
                    self.delete(cancel_path).await;
                    anyhow::bail!("{interrupted}");
                }
            };
            let Some(frame) = frame else {
                anyhow::bail!("the server's event stream ended before the {what}");
            };
            if frame.event == "error" {
                anyhow::bail!("{}", frame.error_message());
            }
            let event: T = serde_json::from_str(&frame.data)
                .with_context(|| format!("reading an event of the server's {what}"))?;
            if each(event)?.is_break() {
                return Ok(());
            }
        }
    }

    /// `DELETE path`, its outcome ignored (a best effort, such as cancelling on Ctrl-C).
    pub async fn delete(&self, path: &str) {
        let _ = self
            .request(reqwest::Method::DELETE, path)
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await;
    }
}

/// The response if it is a success, else an error with the API's message
/// (`{"error":{"code","message"}}`).
async fn checked(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/message")
                .and_then(|message| message.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("the server answered {status}"));
    Err(anyhow::anyhow!(message))
}

/// One server-sent event: its name (`message` when none is given) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

impl Frame {
    /// An `error` frame's message (`{"type":"error","code","message"}`), for the user. A
    /// server stopping mid-way says to reconnect, which this command cannot: it says what
    /// happens to the work instead.
    pub fn error_message(&self) -> String {
        let value = serde_json::from_str::<serde_json::Value>(&self.data).ok();
        let field = |name: &str| {
            value
                .as_ref()
                .and_then(|value| value.get(name)?.as_str().map(str::to_string))
        };
        if field("code").as_deref() == Some("shutting_down") {
            return "the server stopped before the end (its indexing jobs and research sessions \
                    resume when it starts again)"
                .to_string();
        }
        field("message").unwrap_or_else(|| self.data.clone())
    }
}

/// Reads server-sent events off a response as they come.
pub struct EventStream {
    response: reqwest::Response,
    parser: FrameParser,
}

impl EventStream {
    fn new(response: reqwest::Response) -> Self {
        EventStream {
            response,
            parser: FrameParser::default(),
        }
    }

    /// The next event, or None when the stream has ended.
    pub async fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.parser.next_frame() {
                return Ok(Some(frame));
            }
            let chunk = self
                .response
                .chunk()
                .await
                .context("reading the server's events")?;
            match chunk {
                Some(bytes) => self.parser.push(&bytes),
                None => return Ok(self.parser.finish()),
            }
        }
    }
}

/// The text/event-stream format, fed in arbitrary pieces: `event:` and `data:` lines (several
/// data lines joined by newlines), frames ended by a blank line, comments (keep-alives) and
/// `id:`/`retry:` skipped, `\r\n` line ends accepted.
#[derive(Debug, Default)]
struct FrameParser {
    pending: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl FrameParser {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    fn next_frame(&mut self) -> Option<Frame> {
        while let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let Some(frame) = self.take() {
                    return Some(frame);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                },
                _ => {}
            }
        }
        None
    }

    /// The frame left when the stream ends without a blank line.
    fn finish(&mut self) -> Option<Frame> {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            if let Some(frame) = self.next_frame() {
                return Some(frame);
            }
        }
        self.take()
    }

    fn take(&mut self) -> Option<Frame> {
        let event = self.event.take();
        let data = self.data.take()?;
        Some(Frame {
            event: event.unwrap_or_else(|| "message".to_string()),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_across_pieces() {
        let mut parser = FrameParser::default();
        parser.push(b": keep-alive\n\nid: 1\nevent: resu");
        assert_eq!(parser.next_frame(), None);
        parser.push(b"lts\r\ndata: {\"a\":1}\r\ndata: x\r\n\r\nevent: done\ndata:{}\n");
        assert_eq!(
            parser.next_frame(),
            Some(Frame {
                event: "results".into(),
                data: "{\"a\":1}\nx".into()
            })
        );
        assert_eq!(parser.next_frame(), None);
        assert_eq!(
            parser.finish(),
            Some(Frame {
                event: "done".into(),
                data: "{}".into()
            })
        );
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn error_frames_carry_their_message() {
        let frame = Frame {
            event: "error".into(),
            data: r#"{"type":"error","code":"events_expired","message":"the events are gone"}"#
                .into(),
        };
        assert_eq!(frame.error_message(), "the events are gone");
        let stopping = Frame {
            event: "error".into(),
            data: r#"{"type":"error","code":"shutting_down","message":"reconnect"}"#.into(),
        };
        assert!(stopping
            .error_message()
            .starts_with("the server stopped before the end"));
        let plain = Frame {
            event: "error".into(),
            data: "broken".into(),
        };
        assert_eq!(plain.error_message(), "broken");
    }

    #[test]
    fn no_server_file_means_local() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(find_in(dir.path()).is_none());
        std::fs::write(server_file::path(dir.path()), b"{not json").expect("write");
        assert!(find_in(dir.path()).is_none());
    }

    #[test]
    fn a_server_that_does_not_answer_is_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("port")
            .port();
        let file = ServerFile {
            pid: std::process::id(),
            url: format!("http://127.0.0.1:{port}"),
            token: server_file::new_token(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            jobs: true,
        };
        file.write(dir.path()).expect("write");
        assert!(find_in(dir.path()).is_none());
        // Its process lives (this one), so the file stays.
        assert!(server_file::path(dir.path()).exists());
    }
}
