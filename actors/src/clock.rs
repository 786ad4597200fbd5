//! Time and chance are inputs: every component that reads the time or draws randomness takes
//! them from here, so the engine can run on virtual time with a fixed seed in tests.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use rand::{RngCore, SeedableRng, rngs::StdRng};
use std::sync::Arc;

/// The source of wall-clock time, and of the engine's timers (a call's deadline), so that a
/// simulation decides when time passes.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once `duration` has passed on this clock.
    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Microsecond precision: what both databases store, so a timestamp reads back equal to
    /// what was answered when it was written.
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that only moves when told to, for simulations: its timers fire when
/// [`ManualClock::advance`] passes their time, never by themselves.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    timers: Mutex<Vec<(DateTime<Utc>, tokio::sync::oneshot::Sender<()>)>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
            timers: Mutex::new(Vec::new()),
        }
    }

    /// Moves the time on and fires every timer that is due; returns how many fired.
    pub fn advance(&self, by: chrono::Duration) -> usize {
        let now = {
            let mut now = self.now.lock();
            *now += by;
            *now
        };
        let due: Vec<_> = {
            let mut timers = self.timers.lock();
            let (due, later) = std::mem::take(&mut *timers)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            *timers = later;
            due
        };
        due.into_iter()
            .filter(|(_, fire)| !fire.is_closed())
            .map(|(_, fire)| fire.send(()))
            .filter(Result::is_ok)
            .count()
    }

    /// Timers set and not yet fired nor abandoned.
    pub fn pending_timers(&self) -> usize {
        self.timers
            .lock()
            .iter()
            .filter(|(_, fire)| !fire.is_closed())
            .count()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }

    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        let at = self.now() + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let (fire, fired) = tokio::sync::oneshot::channel();
        self.timers.lock().push((at, fire));
        Box::pin(async move {
            // A clock dropped with its timers never fires them.
            if fired.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// The source of randomness: secrets (API keys, reset tokens) and identifiers.
pub trait Entropy: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG, for production.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}

/// A seeded generator, so a simulation replays exactly. Never use it for real secrets.
pub struct SeededEntropy(Mutex<StdRng>);

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        self.0.lock().fill_bytes(buf);
    }
}

/// The clock and the entropy a hub runs with.
#[derive(Clone)]
pub struct Env {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

impl Env {
    pub fn system() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `n` random bytes as lower-case hex.
    pub fn random_hex(&self, n: usize) -> String {
        let mut buf = vec![0u8; n];
        self.entropy.fill(&mut buf);
        hex::encode(buf)
    }

    /// A time-ordered UUID (v7) whose random part comes from this environment's entropy.
    pub fn new_id(&self) -> uuid::Uuid {
        let mut rand = [0u8; 10];
        self.entropy.fill(&mut rand);
        let millis = u64::try_from(self.now().timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid()
    }
}
