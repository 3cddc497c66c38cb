//! A real S3 server on loopback for integration tests, with injected faults.
//!
//! The S3 protocol (routing, XML, SigV4 checks) is `s3s`; the operations are
//! `s3s-fs`, which keeps each object as a plain file at
//! `<dir>/<bucket>/<key>`. Both are served by hyper on a tokio listener bound
//! to 127.0.0.1, so clients such as `object_store`'s `AmazonS3` talk to it
//! exactly as they would to a remote store (path-style requests, any region).
//!
//! Every request must be signed with the configured access and secret key;
//! anything else is answered 403.
//!
//! Faults ([`Faults`]) stand in for what a real store does to a client:
//! `503 SlowDown` answers, and a server that dies in the middle of an upload
//! and comes back a little later on the same address with the same data.
//!
//! What s3s-fs 0.12 does with the bytes, read from its source and (all but
//! the fsync) checked by `tests/s3_server.rs`: object bytes (PutObject and
//! CompleteMultipartUpload) are written to a temporary file in the data
//! directory's root (`.tmp.<n>.internal.part`) and renamed onto the key when
//! the body has ended, so a reader never sees a prefix; a body that ends in
//! an error removes the temporary file and leaves the key as it was. It
//! does not fsync; it renames *before* comparing `Content-MD5` or
//! `x-amz-checksum-*` (a mismatching upload replaces the object and is then
//! answered `BadDigest`); and CompleteMultipartUpload deletes the upload id
//! before it assembles the parts, so a Complete repeated after one that
//! succeeded (its answer lost, say) is answered 403 AccessDenied.

use std::error::Error as StdError;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as _, Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// Listen backlog of the server socket.
const BACKLOG: u32 = 128;

/// How long a restart keeps trying to bind its old port again (another
/// socket may have taken it during the pause) before the server gives up.
const REBIND_FOR: Duration = Duration::from_secs(2);

/// Pause between two bind attempts, and after a failed `accept`.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Most request-body bytes read and discarded before a `503` is answered (so
/// the client, still sending, reads the answer instead of a reset); past it
/// the connection is closed.
const DRAIN_LIMIT: u64 = 64 << 20;

/// The body of an injected `503`, as S3 words it.
const SLOW_DOWN_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <Error><Code>SlowDown</Code><Message>Please reduce your request rate. \
    (injected by grail_tests::s3)</Message></Error>";

/// Faults the server injects. `Faults::default()` injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Answer every Nth request (counting all requests, 1-based) with HTTP
    /// 503 SlowDown instead of serving it; 0 = never.
    pub fail_every: u32,
    /// On the Nth PUT-like request (PutObject, UploadPart,
    /// CompleteMultipartUpload; 1-based, counting those not already answered
    /// 503; 0 = never): hand s3s-fs the first half of the body followed by a
    /// read error, as when a client vanishes mid-upload, then restart
    /// without answering: stop accepting, close every connection, wait
    /// `restart_pause`, and serve again on the same port and data directory.
    pub crash_on_put: u32,
    /// How long a crash keeps the server down.
    pub restart_pause: Duration,
}

/// How to start an [`S3Server`].
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The one bucket the server holds (created by [`S3Server::start`]).
    pub bucket: String,
    /// The only access key accepted.
    pub access_key: String,
    /// Its secret key; requests signed with any other are answered 403.
    pub secret_key: String,
    pub faults: Faults,
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub method: String,
    /// The request's path, as sent (percent-encoded): `/<bucket>/<key>`.
    pub path: String,
    /// The query string, as sent, without the `?`; empty if none.
    pub query: String,
    /// The status answered; `None` when no answer was sent (an injected
    /// crash, or an error inside s3s that closed the connection).
    pub status: Option<u16>,
}

/// What the server has seen so far.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    /// Requests received, including failed and crashed ones.
    pub total: u32,
    /// Requests answered with an injected 503.
    pub failed: u32,
    /// Injected crashes (each is followed by a restart).
    pub crashes: u32,
    /// Restarts completed, injected or by hand: the server is serving again.
    pub restarts: u32,
    /// Every request in the order it ended.
    pub served: Vec<Served>,
    /// Why the server stopped serving for good (a restart could not bind
    /// its port again); `None` while it serves.
    pub stopped: Option<String>,
}

/// A running S3 server on 127.0.0.1. It stops when dropped.
pub struct S3Server {
    addr: SocketAddr,
    root: PathBuf,
    bucket: String,
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
}

/// State the supervisor and every connection share.
struct Shared {
    faults: Faults,
    log: Mutex<Counters>,
    restarts: mpsc::UnboundedSender<Restart>,
}

#[derive(Default)]
struct Counters {
    log: RequestLog,
    put_like: u32,
}

/// A request to take the server down for `pause` and bring it back.
struct Restart {
    pause: Duration,
    /// Told when the server serves again (or could not).
    done: Option<oneshot::Sender<io::Result<()>>>,
}

/// What to do with one request.
enum Verdict {
    Serve,
    SlowDown,
    Crash,
}

impl S3Server {
    /// Creates `dir/<bucket>` and serves `dir` on a free port of 127.0.0.1.
    /// Needs a tokio runtime with I/O and time enabled.
    pub async fn start(dir: &Path, config: S3Config) -> io::Result<S3Server> {
        std::fs::create_dir_all(dir.join(&config.bucket))?;
        let root = dir.canonicalize()?;
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        // Built once here so that a bad data directory fails `start`, not
        // the first request.
        let service = build_service(&root, &config.access_key, &config.secret_key)?;
        let (restart_tx, restart_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            faults: config.faults,
            log: Mutex::new(Counters::default()),
            restarts: restart_tx,
        });
        let supervisor = tokio::spawn(supervise(
            listener,
            service,
            root.clone(),
            (config.access_key, config.secret_key),
            shared.clone(),
            restart_rx,
        ));
        Ok(S3Server {
            addr,
            root,
            bucket: config.bucket,
            shared,
            supervisor,
        })
    }

    /// `http://127.0.0.1:PORT`; the same across restarts.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on; the same across restarts.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A snapshot of what the server has seen so far.
    pub fn requests(&self) -> RequestLog {
        self.shared.lock().log.clone()
    }

    /// Takes the server down for `pause` (stop accepting, close every
    /// connection) and serves again on the same port and data; returns when
    /// it serves again.
    pub async fn restart(&self, pause: Duration) -> io::Result<()> {
        let stopped = || io::Error::other("the S3 server has stopped");
        let (done, served) = oneshot::channel();
        self.shared
            .restarts
            .send(Restart {
                pause,
                done: Some(done),
            })
            .map_err(|_| stopped())?;
        served.await.map_err(|_| stopped())?
    }

    /// Where s3s-fs stores the object `key` of the bucket.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(&self.bucket).join(key)
    }

    /// s3s-fs's files of work in progress in the data directory: temporary
    /// files of writes not yet renamed onto their key (`.tmp.*`), and parts
    /// and records of multipart uploads not yet completed or aborted
    /// (`.upload_id-*`, `.upload-*`). Sorted.
    pub fn in_progress_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp.") || name.starts_with(".upload") {
                found.push(entry.path());
            }
        }
        found.sort();
        Ok(found)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Dropping the supervisor drops the listener and its JoinSet, which
        // aborts every connection task.
        self.supervisor.abort();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panicking test thread must not hide the log from the others.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the request and decides its fate.
    fn admit(&self, req: &Request<Incoming>) -> Verdict {
        let mut c = self.lock();
        c.log.total += 1;
        let n = c.log.total;
        if self.faults.fail_every != 0 && n.is_multiple_of(self.faults.fail_every) {
            c.log.failed += 1;
            return Verdict::SlowDown;
        }
        if is_put_like(req) {
            c.put_like += 1;
            if c.put_like == self.faults.crash_on_put {
                c.log.crashes += 1;
                return Verdict::Crash;
            }
        }
        Verdict::Serve
    }

    fn record(&self, served: Served) {
        self.lock().log.served.push(served);
    }
}

/// PutObject and UploadPart (PUT on a key, not a copy) and
/// CompleteMultipartUpload (POST on a key with an `uploadId`); path-style.
fn is_put_like<B>(req: &Request<B>) -> bool {
    let path = req.uri().path().trim_start_matches('/');
    let on_key = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
    let has_upload_id = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.split('=').next() == Some("uploadId"));
    match *req.method() {
        Method::PUT => on_key && !req.headers().contains_key("x-amz-copy-source"),
        Method::POST => on_key && has_upload_id,
        _ => false,
    }
}

/// A listener on `addr` with `SO_REUSEADDR`, so a restart can bind the port
/// again while the connections it closed sit in TIME_WAIT.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let give_up = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) if tokio::time::Instant::now() >= give_up => return Err(e),
            Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
}

/// s3s over a fresh s3s-fs on `root` (which, like a restarted process,
/// deletes temporary files a previous one left behind).
fn build_service(root: &Path, access_key: &str, secret_key: &str) -> io::Result<S3Service> {
    let fs = s3s_fs::FileSystem::new(root)
        .map_err(|e| io::Error::other(format!("s3s-fs on {}: {e:?}", root.display())))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
    Ok(builder.build())
}

/// Accepts connections until a restart is asked for; then closes everything,
/// pauses, and serves again on the same address with a fresh s3s-fs.
async fn supervise(
    mut listener: TcpListener,
    mut service: S3Service,
    root: PathBuf,
    (access_key, secret_key): (String, String),
    shared: Arc<Shared>,
    mut restarts: mpsc::UnboundedReceiver<Restart>,
) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    loop {
        let mut connections = JoinSet::new();
        let restart = loop {
            tokio::select! {
                restart = restarts.recv() => break restart,
                accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => {
                    match accepted {
                        Ok((stream, _)) => {
                            connections.spawn(serve_connection(stream, service.clone(), shared.clone()));
                        }
                        // Out of file descriptors and the like: try again shortly.
                        Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        };
        drop(listener);
        // Aborts every connection task and waits until they are gone, so
        // their sockets are closed and no old s3s-fs write is still running.
        connections.shutdown().await;
        // `shared` holds a sender, so the channel never closes while we run.
        let Some(Restart { pause, done }) = restart else {
            return;
        };
        tokio::time::sleep(pause).await;
        let back = rebind(addr).await.and_then(|l| {
            let s = build_service(&root, &access_key, &secret_key)?;
            Ok((l, s))
        });
        match back {
            Ok((l, s)) => {
                listener = l;
                service = s;
                shared.lock().log.restarts += 1;
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                shared.lock().log.stopped = Some(format!("restart on {addr}: {e}"));
                if let Some(done) = done {
                    let _ = done.send(Err(e));
                }
                return;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, service: S3Service, shared: Arc<Shared>) {
    let handler =
        hyper::service::service_fn(move |req| handle(req, service.clone(), shared.clone()));
    // A connection error (client gone, malformed request) ends only this
    // connection. Half-closed connections are served: a client may close
    // its sending side once the body is out and still read the answer.
    let _ = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(TokioIo::new(stream), handler)
        .await;
}

async fn handle(
    req: Request<Incoming>,
    service: S3Service,
    shared: Arc<Shared>,
) -> Result<HttpResponse, HttpError> {
    let mut served = Served {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or("").to_owned(),
        status: None,
    };
    match shared.admit(&req) {
        Verdict::Serve => {
            let answer = service.call(req.map(s3s::Body::from)).await;
            served.status = answer.as_ref().ok().map(|r| r.status().as_u16());
            shared.record(served);
            answer
        }
        Verdict::SlowDown => {
            drain(req.into_body()).await;
            served.status = Some(StatusCode::SERVICE_UNAVAILABLE.as_u16());
            shared.record(served);
            Ok(slow_down())
        }
        Verdict::Crash => {
            let length = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let req = req.map(|body| s3s::Body::http_body_unsync(CutBody::new(body, length / 2)));
            // s3s-fs sees the body end in an error; its answer is never sent.
            let _ = service.call(req).await;
            shared.record(served);
            let _ = shared.restarts.send(Restart {
                pause: shared.faults.restart_pause,
                done: None,
            });
            // The restart aborts this connection before anything is answered.
            std::future::pending().await
        }
    }
}

/// Reads and discards a request body, up to [`DRAIN_LIMIT`] bytes.
async fn drain(mut body: Incoming) {
    let mut read = 0u64;
    while read < DRAIN_LIMIT {
        match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            Some(Err(_)) | None => return,
        }
    }
}

fn slow_down() -> HttpResponse {
    let mut resp = Response::new(s3s::Body::from(SLOW_DOWN_XML.to_owned()));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp
}

/// A request body that passes on its first `left` bytes and then fails, as a
/// connection dropped mid-upload does.
struct CutBody {
    inner: Incoming,
    left: u64,
}

impl CutBody {
    fn new(inner: Incoming, left: u64) -> Self {
        CutBody { inner, left }
    }
}

impl hyper::body::Body for CutBody {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(Some(Err(
                "injected crash: connection dropped mid-body".into()
            )));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(mut data) => {
                if data.len() as u64 > self.left {
                    data.truncate(self.left as usize);
                }
                self.left -= data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Err(trailers) => Poll::Ready(Some(Ok(trailers))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, target: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(target)
            .body(())
            .unwrap()
    }

    #[test]
    fn put_like_requests_are_object_writes() {
        assert!(is_put_like(&request(Method::PUT, "/b/k")));
        assert!(is_put_like(&request(
            Method::PUT,
            "/b/a/b?partNumber=2&uploadId=x"
        )));
        assert!(is_put_like(&request(Method::POST, "/b/k?uploadId=x")));
        // CreateBucket, CreateMultipartUpload, AbortMultipartUpload, GET.
        assert!(!is_put_like(&request(Method::PUT, "/b")));
        assert!(!is_put_like(&request(Method::PUT, "/b/")));
        assert!(!is_put_like(&request(Method::POST, "/b/k?uploads")));
        assert!(!is_put_like(&request(Method::DELETE, "/b/k?uploadId=x")));
        assert!(!is_put_like(&request(Method::GET, "/b/k")));
        let mut copy = request(Method::PUT, "/b/k");
        copy.headers_mut()
            .insert("x-amz-copy-source", HeaderValue::from_static("/b/j"));
        assert!(!is_put_like(&copy));
    }
}
