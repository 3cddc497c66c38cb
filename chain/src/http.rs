//! HTTP plumbing shared by the drand and subtensor clients: bounded retries
//! with exponential backoff, and response bodies read under a size cap.
use std::future::Future;
use std::time::Duration;

/// Bounded retries with exponential backoff.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    /// Attempts in all (0 counts as 1).
    pub attempts: u32,
    /// Wait before the first retry; doubled after each, up to `max`.
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Run `once` until it succeeds, fails with an error `retryable` rejects,
    /// or the attempts are used up; `on_retry(attempt, wait, error)` is called
    /// before each wait (for logging).
    pub async fn run<T, E, F, Fut>(
        self,
        retryable: impl Fn(&E) -> bool,
        on_retry: impl Fn(u32, Duration, &E),
        mut once: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut wait = self.initial;
        let mut attempt = 1;
        loop {
            match once().await {
                Ok(v) => return Ok(v),
                Err(e) if retryable(&e) && attempt < self.attempts => {
                    on_retry(attempt, wait, &e);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.max);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Why a capped body could not be read.
pub(crate) enum BodyError {
    /// The declared or received length exceeds the cap.
    TooLarge,
    /// The connection failed while reading.
    Read(reqwest::Error),
}

/// Read a response body of at most `limit` bytes: a larger declared
/// `Content-Length` is refused before reading, and reading stops as soon as
/// the received bytes would exceed the cap.
pub(crate) async fn read_body_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
