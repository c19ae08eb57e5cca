// SPDX-License-Identifier: MPL-2.0
//! One model file, loaded once per process.
//!
//! Every recogniser that loads the same file (N element instances in one pipeline, a server
//! with a stream per client) shares one [`SessionPool`]: ONNX Runtime sessions of that file,
//! created on demand up to the number of runs the cores can serve at once, and handed out one
//! run at a time. `ort` lets a session run only through `&mut` (some ONNX Runtime internals are
//! not thread-safe), so one session serialises every run: right when each run uses every core
//! (the process's shared thread pool, the default), a waste when each has threads of its own;
//! a session per instance would hold N copies of the weights and N activation arenas. A pool
//! holds as many sessions as runs can usefully overlap ([`session_limit`]), and they share
//! their prepacked weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights};

use super::provider::{self, ExecutionProvider};
use super::runtime;
use crate::error::{Error, Result};

const WHAT: &str = "model file";

/// What makes two loads the same: the file (resolved, with its size and modification time, so
/// a file replaced on disk is loaded afresh) and the thread setting and execution provider its
/// sessions are built with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    threads: usize,
    provider: ExecutionProvider,
}

/// Sessions of one model file; see the module documentation.
pub struct SessionPool {
    path: PathBuf,
    threads: usize,
    /// Weights ONNX Runtime repacks for its kernels, packed once for all sessions.
    prepacked: PrepackedWeights,
    idle: Mutex<Idle>,
    returned: Condvar,
    /// Most sessions: runs that can overlap on this machine.
    limit: usize,
    /// The provider the sessions run on: the one asked for, or for `auto` CUDA or the CPU.
    running: ExecutionProvider,
    /// Why `auto` runs on the CPU (CUDA's error), if it does.
    fallback: Option<String>,
}

struct Idle {
    sessions: Vec<Session>,
    created: usize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("path", &self.path)
            .field("threads", &self.threads)
            .field("limit", &self.limit)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    /// The pool for `path` with `threads` intra-op threads per session (0: the process's
    /// shared pool), loading the file's first session unless this process holds it already.
    pub fn shared(path: &Path, threads: usize) -> Result<Arc<Self>> {
        Self::shared_on(path, threads, ExecutionProvider::Cpu)
    }

    /// [`shared`](Self::shared), with the sessions on `provider` ([`ExecutionProvider`]): a
    /// GPU provider that cannot start is an [`Error::ExecutionProvider`], except `auto`, which
    /// then runs on the CPU ([`fallback`](Self::fallback) says why).
    pub fn shared_on(
        path: &Path,
        threads: usize,
        provider: ExecutionProvider,
    ) -> Result<Arc<Self>> {
        static LOADED: LazyLock<Mutex<HashMap<Key, Weak<SessionPool>>>> =
            LazyLock::new(Default::default);
        let metadata = std::fs::metadata(path).map_err(|e| Error::io(WHAT, path, e))?;
        if !metadata.is_file() {
            return Err(Error::invalid(WHAT, path, "not a regular file"));
        }
        let key = Key {
            path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
            len: metadata.len(),
            modified: metadata.modified().ok(),
            threads,
            provider,
        };
        // A poisoned lock only means another thread panicked while loading: the map is intact.
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = loaded.get(&key).and_then(Weak::upgrade) {
            return Ok(pool);
        }
        let pool = Arc::new(Self::load(path, threads, provider)?);
        loaded.retain(|_, weak| weak.strong_count() > 0);
        loaded.insert(key, Arc::downgrade(&pool));
        Ok(pool)
    }

    fn load(path: &Path, threads: usize, provider: ExecutionProvider) -> Result<Self> {
        runtime::environment()?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut pool = Self {
            path: path.to_path_buf(),
            threads,
            prepacked: PrepackedWeights::new(),
            idle: Mutex::new(Idle {
                sessions: Vec::new(),
                created: 0,
            }),
            returned: Condvar::new(),
            limit: session_limit(threads, cores),
            running: match provider {
                ExecutionProvider::Auto => ExecutionProvider::Cuda,
                asked => asked,
            },
            fallback: None,
        };
        // The first session now, so a file ONNX Runtime cannot load (or a provider that cannot
        // start) fails the load.
        let first = match pool.create() {
            Ok(session) => session,
            // `auto` only: CUDA did not start, the CPU runs it and the pool says why.
            Err(e @ Error::ExecutionProvider { .. }) if provider == ExecutionProvider::Auto => {
                pool.running = ExecutionProvider::Cpu;
                pool.fallback = Some(e.to_string());
                pool.create()?
            }
            Err(e) => return Err(e),
        };
        let mut idle = pool.lock();
        idle.sessions.push(first);
        idle.created = 1;
        drop(idle);
        Ok(pool)
    }

    /// Sessions this pool may hold: as many runs as the cores serve at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The provider the sessions run on: the one asked for, or for `auto` what it chose
    /// ([`ExecutionProvider::Cuda`] or [`ExecutionProvider::Cpu`]).
    pub fn provider(&self) -> ExecutionProvider {
        self.running
    }

    /// Why an `auto` pool runs on the CPU: the error CUDA gave. `None` when it runs where it
    /// was asked to.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Sessions created so far.
    pub fn sessions(&self) -> usize {
        self.lock().created
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        // Sessions are only pushed and popped under the lock: a panic elsewhere leaves the
        // list consistent.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create(&self) -> Result<Session> {
        let name = self.path.display().to_string();
        let env = runtime::environment()?;
        let threads = self.threads;
        let running = self.running;
        let registrations = provider::registrations(running)?;
        let builder = Session::builder(env)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(Into::into)
            })
            // Weights packed for the CPU's kernels; a GPU provider's sessions hold theirs on
            // the device.
            .and_then(|b| match running {
                ExecutionProvider::Cpu => b
                    .with_prepacked_weights(&self.prepacked)
                    .map_err(Into::into),
                _ => Ok(b),
            })
            // 0: the environment's shared pool; a count: a pool of the session's own, which
            // like the shared one does not spin after a run (runs come in bursts, one window
            // or step per chunk: spinning between them only burns the cores).
            .and_then(|b| match threads {
                0 => Ok(b),
                n => b
                    .with_independent_thread_pool()
                    .map_err(Into::into)
                    .and_then(|b| b.with_intra_threads(n).map_err(Into::into))
                    .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
                    .and_then(|b| b.with_intra_op_spinning(false).map_err(Into::into)),
            })
            .map_err(|e| {
                Error::Runtime(format!(
                    "model file {name}: cannot configure ONNX Runtime: {e}"
                ))
            })?;
        let mut builder = if registrations.is_empty() {
            builder
        } else {
            builder
                .with_execution_providers(registrations)
                .map_err(|e| provider::registration_failure(running, &e.to_string()))?
        };
        // From the path, never from bytes read here: ONNX Runtime then finds the weights
        // of a model saved with external data (every export over 2 GB) beside it.
        builder.commit_from_file(&self.path).map_err(|e| {
            let message = e.to_string();
            running
                .wants_gpu()
                .then(|| provider::session_failure(running, &message))
                .flatten()
                .unwrap_or_else(|| Error::invalid(WHAT, &self.path, load_failure(&message)))
        })
    }

    /// Runs `f` with a session of its own: an idle one, a new one while fewer than
    /// [`limit`](Self::limit) exist, else the first one another run gives back.
    pub fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut lease = Lease {
            pool: self,
            session: Some(self.checkout()),
        };
        f(lease
            .session
            .as_mut()
            .expect("a lease holds its session until dropped"))
    }

    fn checkout(&self) -> Session {
        let mut idle = self.lock();
        let mut may_create = true;
        loop {
            if let Some(session) = idle.sessions.pop() {
                return session;
            }
            if may_create && idle.created < self.limit {
                idle.created += 1;
                drop(idle);
                match self.create() {
                    Ok(session) => return session,
                    // The file loaded once, so at least one session exists and comes back: a
                    // later one that cannot be made (memory) only means waiting for it.
                    Err(_) => {
                        may_create = false;
                        idle = self.lock();
                        idle.created -= 1;
                        continue;
                    }
                }
            }
            idle = self.returned.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Why ONNX Runtime refused a model, in words that say what to do: its messages about
/// external data (weights in files beside the graph, as exports over 2 GB write them) name
/// a tensor and a source line.
fn load_failure(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("external data") || lower.contains("external initializer") {
        format!(
            "its weights are in external data files that cannot be read; they must be regular \
             files inside the model's folder, under the names the export gave them (move or copy \
             the whole folder): {message}"
        )
    } else {
        format!("not a loadable ONNX model: {message}")
    }
}

/// How many runs of one model can usefully overlap: a session with `threads` threads of its own
/// keeps that many cores busy, so `cores / threads` of them fill the machine; sessions on the
/// process's shared pool (0) each use every core already, so one is enough. Measured with 8
/// file pipelines on 2 cores (README, *Speed*): one shared-pool session ran them at 38.7 audio
/// seconds per second in 156 MB, two at 36.4 in 253 MB (each session holds its own weights and
/// activation arena).
fn session_limit(threads: usize, cores: usize) -> usize {
    match threads {
        0 => 1,
        n => (cores / n).max(1),
    }
}

/// A session out of its pool; goes back when dropped (also when the run panics).
struct Lease<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.lock().sessions.push(session);
            self.pool.returned.notify_one();
        }
    }
}
