//! The tokio side of syncing: a task that runs the [`SyncStateMachine`] against the HTTP
//! transport, and the uploader task ([`crate::upload`]).
//!
//! The sync task loops over iterations: fetch credentials, `Start` the state machine, open the
//! stream with its request, feed the decoded lines in (all lines of a received chunk in one
//! transaction), carry out the actions, and when the stream ends or fails, reconnect with
//! exponential backoff and jitter (reset once a checkpoint is published). Bad input (a garbage,
//! truncated or oversize line, an HTTP error, an idle stream) sets the status's `download_error`
//! and reconnects; since a checkpoint is only ever published in one transaction, nothing is
//! half-applied. Credentials are prefetched when the token expires within 30 s, and fetched anew
//! after an HTTP 401, an expired token, or a failure to reach the endpoint (the app's connector
//! may point somewhere else by then).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_protocol::{StreamingSyncRequest, SyncLine, SyncLineDecoder, DEFAULT_MAX_LINE_LEN};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::connector::{Connector, Credentials};
use crate::database::{blocking, Inner};
use crate::error::{Error, Result};
use crate::sync::{SyncAction, SyncEvent, SyncStateMachine};
use crate::transport::http::HttpTransport;
use crate::upload::Uploader;

/// How the client syncs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Client parameters sent with the sync request (`request.parameters()` in sync rules).
    pub parameters: Option<Map<String, Value>>,
    /// The first delay before retrying after a failure (doubled per failure, with jitter).
    pub retry_delay: Duration,
    /// The longest delay between retries.
    pub max_retry_delay: Duration,
    /// A stream that delivers nothing for this long is considered dead (the service sends a
    /// keepalive about every 20 s).
    pub stream_idle_timeout: Duration,
    /// The longest line accepted on the stream.
    pub max_line_len: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            parameters: None,
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
            stream_idle_timeout: Duration::from_secs(60),
            max_line_len: DEFAULT_MAX_LINE_LEN,
        }
    }
}

/// The running sync: stop it to end both tasks.
pub(crate) struct SyncHandle {
    cancel: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SyncHandle {
    pub(crate) async fn stop(self) {
        let _ = self.cancel.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The credentials in use, shared by the sync and upload tasks.
#[derive(Debug, Default)]
pub(crate) struct CredentialsCache {
    current: tokio::sync::Mutex<Option<Credentials>>,
}

fn connector_error(e: &crate::connector::BoxError) -> Error {
    Error::Connector(format!("fetching credentials failed: {e}"))
}

impl CredentialsCache {
    /// The current credentials, fetched if there are none.
    pub(crate) async fn get<C: Connector>(&self, connector: &C) -> Result<Credentials> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            return Ok(c.clone());
        }
        let fresh = connector
            .fetch_credentials()
            .await
            .map_err(|e| connector_error(&e))?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets the credentials (the service refused them).
    pub(crate) async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    /// Fetches new credentials for the next connection, keeping the old ones if that fails.
    async fn refresh<C: Connector>(&self, connector: &C) -> Result<()> {
        let fresh = connector
            .fetch_credentials()
            .await
            .map_err(|e| connector_error(&e))?;
        *self.current.lock().await = Some(fresh);
        Ok(())
    }
}

/// Sleeps `delay`; `false` if cancelled meanwhile.
pub(crate) async fn sleep_or_cancel(delay: Duration, cancel: &mut watch::Receiver<bool>) -> bool {
    if *cancel.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => !*cancel.borrow(),
        _ = cancel.changed() => false,
    }
}

/// Starts the sync and upload tasks.
pub(crate) fn start<C: Connector>(
    inner: Arc<Inner>,
    connector: C,
    options: SyncOptions,
) -> Result<SyncHandle> {
    let http = Arc::new(HttpTransport::new()?);
    let connector = Arc::new(connector);
    let credentials = Arc::new(CredentialsCache::default());
    let (cancel, cancel_rx) = watch::channel(false);
    let (upload_completed, upload_rx) = mpsc::unbounded_channel();
    let uploader = Uploader {
        inner: inner.clone(),
        connector: connector.clone(),
        credentials: credentials.clone(),
        http: http.clone(),
        upload_completed,
        backoff: Backoff::new(options.retry_delay, options.max_retry_delay),
        checkpoint_error: None,
    };
    let sm = SyncStateMachine::new(
        inner.client_id.clone(),
        &inner.schema,
        options.parameters.clone(),
    );
    let task = SyncTask {
        backoff: Backoff::new(options.retry_delay, options.max_retry_delay),
        inner,
        connector,
        credentials,
        http,
        options,
        sm: Arc::new(Mutex::new(sm)),
        published: false,
    };
    let tasks = vec![
        tokio::spawn(uploader.run(cancel_rx.clone())),
        tokio::spawn(task.run(cancel_rx, upload_rx)),
    ];
    Ok(SyncHandle { cancel, tasks })
}

/// How a connection ended.
enum Outcome {
    /// `disconnect()`.
    Cancelled,
    /// The stream ended or was closed without a problem: connect again.
    Reconnect,
    /// Something went wrong: report it, back off, connect again.
    Failed(Error),
}

struct SyncTask<C> {
    inner: Arc<Inner>,
    connector: Arc<C>,
    credentials: Arc<CredentialsCache>,
    http: Arc<HttpTransport>,
    options: SyncOptions,
    sm: Arc<Mutex<SyncStateMachine>>,
    backoff: Backoff,
    /// A checkpoint was published on the current connection.
    published: bool,
}

impl<C: Connector> SyncTask<C> {
    async fn run(
        mut self,
        mut cancel: watch::Receiver<bool>,
        mut upload_rx: mpsc::UnboundedReceiver<()>,
    ) {
        loop {
            if *cancel.borrow() {
                break;
            }
            self.published = false;
            let outcome = self.iteration(&mut cancel, &mut upload_rx).await;
            if let Ok(actions) = self.handle(SyncEvent::ConnectionEnded).await {
                self.process(actions).await;
            }
            self.inner.status.update(|s| {
                s.connected = false;
                s.connecting = true;
            });
            let delay = match outcome {
                Outcome::Cancelled => break,
                Outcome::Reconnect if self.published => Duration::ZERO,
                Outcome::Reconnect => self.backoff.next_delay(),
                Outcome::Failed(error) => {
                    tracing::warn!(%error, "sync failed; reconnecting");
                    let message = error.to_string();
                    self.inner
                        .status
                        .update(|s| s.download_error = Some(message));
                    self.backoff.next_delay()
                }
            };
            if !sleep_or_cancel(delay, &mut cancel).await {
                break;
            }
        }
        self.inner.status.update(|s| {
            s.connected = false;
            s.connecting = false;
        });
    }

    /// Runs `event` through the state machine in one transaction.
    async fn handle(&self, event: SyncEvent) -> Result<Vec<SyncAction>> {
        let sm = self.sm.clone();
        blocking(&self.inner, move |inner| {
            inner.write_tx(|tx| {
                sm.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .handle(tx, event)
            })
        })
        .await
    }

    /// Runs lines through the state machine in one transaction, stopping after one that closes
    /// the stream.
    async fn handle_lines(&self, lines: Vec<SyncLine>) -> Result<Vec<SyncAction>> {
        let sm = self.sm.clone();
        blocking(&self.inner, move |inner| {
            inner.write_tx(|tx| {
                let mut sm = sm.lock().unwrap_or_else(PoisonError::into_inner);
                let mut actions = Vec::new();
                for line in lines {
                    let out = sm.handle(tx, SyncEvent::Line(line))?;
                    let close = out
                        .iter()
                        .any(|a| matches!(a, SyncAction::CloseStream { .. }));
                    actions.extend(out);
                    if close {
                        break;
                    }
                }
                Ok(actions)
            })
        })
        .await
    }

    /// Carries out actions; returns how the connection ends if one of them closes it.
    async fn process(&mut self, actions: Vec<SyncAction>) -> Option<Outcome> {
        let mut outcome = None;
        for action in actions {
            match action {
                SyncAction::StatusChanged(download) => {
                    self.inner.status.update(|s| s.apply_download(&download));
                }
                SyncAction::DidCompleteSync {
                    priority,
                    published,
                } => {
                    tracing::debug!(?priority, rows = published.rows, "checkpoint published");
                    self.published = true;
                    self.backoff.reset();
                    self.inner.status.update(|s| s.download_error = None);
                }
                SyncAction::FetchCredentials { expired: true } => {
                    self.credentials.invalidate().await;
                }
                SyncAction::FetchCredentials { expired: false } => {
                    let credentials = self.credentials.clone();
                    let connector = self.connector.clone();
                    tokio::spawn(async move {
                        if let Err(error) = credentials.refresh(connector.as_ref()).await {
                            tracing::warn!(%error, "prefetching credentials failed");
                        }
                    });
                }
                SyncAction::CloseStream { error } => {
                    outcome.get_or_insert(match error {
                        Some(e) => Outcome::Failed(e),
                        None => Outcome::Reconnect,
                    });
                }
                SyncAction::EstablishStream(_) => {}
            }
        }
        outcome
    }

    async fn iteration(
        &mut self,
        cancel: &mut watch::Receiver<bool>,
        upload_rx: &mut mpsc::UnboundedReceiver<()>,
    ) -> Outcome {
        self.inner.status.update(|s| s.connecting = true);
        let actions = match self.handle(SyncEvent::Start).await {
            Ok(actions) => actions,
            Err(e) => return Outcome::Failed(e),
        };
        let mut request: Option<StreamingSyncRequest> = None;
        let mut rest = Vec::new();
        for action in actions {
            match action {
                SyncAction::EstablishStream(r) => request = Some(r),
                other => rest.push(other),
            }
        }
        self.process(rest).await;
        let Some(request) = request else {
            return Outcome::Failed(Error::Task(
                "the state machine did not open a stream".into(),
            ));
        };
        let credentials = tokio::select! {
            c = self.credentials.get(self.connector.as_ref()) => match c {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(e),
            },
            _ = cancel.changed() => return Outcome::Cancelled,
        };
        let body = tokio::select! {
            r = self.http.sync_stream(&credentials, &request) => r,
            _ = cancel.changed() => return Outcome::Cancelled,
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                if e.needs_new_credentials() {
                    self.credentials.invalidate().await;
                }
                return Outcome::Failed(e);
            }
        };
        match self.handle(SyncEvent::ConnectionEstablished).await {
            Ok(actions) => {
                self.process(actions).await;
            }
            Err(e) => return Outcome::Failed(e),
        }
        self.inner.status.update(|s| {
            s.connected = true;
            s.connecting = false;
        });
        let url = format!("{}/sync/stream", credentials.endpoint.trim_end_matches('/'));
        self.read(body, &url, cancel, upload_rx).await
    }

    /// Reads the stream at `url` (named in errors) until it ends, fails or is cancelled.
    async fn read(
        &mut self,
        mut body: Incoming,
        url: &str,
        cancel: &mut watch::Receiver<bool>,
        upload_rx: &mut mpsc::UnboundedReceiver<()>,
    ) -> Outcome {
        let mut decoder = SyncLineDecoder::with_max_line_len(self.options.max_line_len);
        let idle = self.options.stream_idle_timeout;
        loop {
            tokio::select! {
                _ = cancel.changed() => return Outcome::Cancelled,
                Some(()) = upload_rx.recv() => {
                    match self.handle(SyncEvent::UploadCompleted).await {
                        Ok(actions) => {
                            if let Some(outcome) = self.process(actions).await {
                                return outcome;
                            }
                        }
                        Err(e) => return Outcome::Failed(e),
                    }
                }
                frame = tokio::time::timeout(idle, body.frame()) => {
                    let frame = match frame {
                        Err(_) => return Outcome::Failed(Error::StreamIdle(idle)),
                        Ok(None) => {
                            return match decoder.finish() {
                                Ok(()) => Outcome::Reconnect,
                                Err(e) => Outcome::Failed(Error::Protocol(e)),
                            };
                        }
                        Ok(Some(Err(e))) => {
                            return Outcome::Failed(Error::Network {
                                url: url.to_owned(),
                                message: format!("the stream broke: {e}"),
                            });
                        }
                        Ok(Some(Ok(frame))) => frame,
                    };
                    let Ok(data) = frame.into_data() else { continue };
                    decoder.push(&data);
                    let mut lines = Vec::new();
                    let mut bad = None;
                    while let Some(next) = decoder.next_line() {
                        match next {
                            Ok(line) => lines.push(line),
                            Err(e) => {
                                bad = Some(e);
                                break;
                            }
                        }
                    }
                    if !lines.is_empty() {
                        match self.handle_lines(lines).await {
                            Ok(actions) => {
                                if let Some(outcome) = self.process(actions).await {
                                    return outcome;
                                }
                            }
                            Err(e) => return Outcome::Failed(e),
                        }
                    }
                    if let Some(e) = bad {
                        return Outcome::Failed(Error::Protocol(e));
                    }
                }
            }
        }
    }
}
