//! Behaviour of the group-committing store, on real files in temporary directories.

use super::*;
use crate::store::{decode, encode};
use redb::{ReadableTableMetadata, TableDefinition};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const T: TableDefinition<&str, &[u8]> = TableDefinition::new("t");

/// Limits that never close a batch early, so a test decides what shares a batch.
const WIDE: Limits = Limits {
    jobs: MAX_BATCH_JOBS,
    time: Duration::from_secs(60),
    reopen_every: Duration::from_secs(60),
};

fn open(dir: &tempfile::TempDir) -> Store {
    let path = dir.path().join("test.redb");
    Store::start(&path, Database::create(&path).unwrap(), WIDE).unwrap()
}

fn put(txn: &WriteTransaction, key: &str, value: u64) -> Result<(), StoreError> {
    txn.open_table(T)?.insert(key, encode(&value).as_slice())?;
    Ok(())
}

async fn get(store: &Store, key: &'static str) -> Option<u64> {
    store
        .read(move |txn| match txn.open_table(T) {
            Ok(table) => table.get(key)?.map(|v| decode(v.value())).transpose(),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await
        .unwrap()
}

fn commits(store: &Store) -> u64 {
    *store.commits().borrow()
}

/// Occupies the writer with an empty job until `release` is sent, so that the jobs queued
/// meanwhile run as one batch behind it.
struct Hold {
    release: std::sync::mpsc::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), WriteError<Infallible>>>,
}

async fn hold(store: &Store) -> Hold {
    let (started, mut is_started) = mpsc::unbounded_channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let s = store.clone();
    let task = tokio::spawn(async move {
        s.write(move |_| {
            let _ = started.send(());
            let _ = released.recv();
            Ok(())
        })
        .await
    });
    is_started.recv().await.unwrap();
    Hold { release, task }
}

async fn until_queued(store: &Store, n: usize) {
    while store.queued() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

impl Hold {
    /// Waits until `n` jobs are queued behind the hold, then lets the batch run.
    async fn release_after(
        self,
        store: &Store,
        n: usize,
    ) -> tokio::task::JoinHandle<Result<(), WriteError<Infallible>>> {
        until_queued(store, n).await;
        self.release.send(()).unwrap();
        self.task
    }
}

fn spawn_write<T: Send + 'static, E: Send + 'static>(
    store: &Store,
    f: impl Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
) -> tokio::task::JoinHandle<Result<T, WriteError<E>>> {
    let s = store.clone();
    tokio::spawn(async move { s.write(f).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (writers, each) = (64, 20);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let s = store.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    let key = format!("{w}-{i}");
                    s.write(move |txn| put(txn, &key, i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let writes = writers * each;
    let commits = commits(&store);
    assert!(
        commits * 4 <= writes,
        "{writes} writes took {commits} commits: not batched"
    );
    let count = store
        .read(|txn| Ok(txn.open_table(T)?.len()?))
        .await
        .unwrap();
    assert_eq!(count, writes);
}

#[tokio::test]
async fn queued_jobs_commit_together_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hold = hold(&store).await;
    let before = commits(&store);
    let tasks: Vec<_> = (0..10u64)
        .map(|i| spawn_write(&store, move |txn| put(txn, &format!("k{i}"), i)))
        .collect();
    hold.release_after(&store, 10).await;
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(commits(&store), before + 1, "hold + 10 jobs = one commit");
    assert_eq!(get(&store, "k9").await, Some(9));
}

#[tokio::test]
async fn a_rejected_job_leaves_nothing_and_its_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hold = hold(&store).await;
    let before = commits(&store);
    let a = spawn_write(&store, |txn| put(txn, "a", 1).map_err(|e| e.to_string()));
    let b = spawn_write(&store, refuses_after_writing::<()>("b"));
    let c = spawn_write(&store, |txn| put(txn, "c", 3).map_err(|e| e.to_string()));
    // Last in the batch and rejected: the batch still has to end with a durable commit.
    let d = spawn_write(&store, refuses_after_writing::<()>("d"));
    hold.release_after(&store, 4).await;
    a.await.unwrap().unwrap();
    assert!(matches!(b.await.unwrap(), Err(WriteError::Rejected(e)) if e == "no"));
    c.await.unwrap().unwrap();
    assert!(matches!(d.await.unwrap(), Err(WriteError::Rejected(_))));
    assert_eq!(commits(&store), before + 1);
    assert_eq!(
        (get(&store, "a").await, get(&store, "b").await),
        (Some(1), None)
    );
    assert_eq!(
        (get(&store, "c").await, get(&store, "d").await),
        (Some(3), None)
    );

    // What was acknowledged is durable, what was rejected is gone.
    drop(store);
    let store = open(&dir);
    assert_eq!(
        (get(&store, "a").await, get(&store, "b").await),
        (Some(1), None)
    );
    assert_eq!(
        (get(&store, "c").await, get(&store, "d").await),
        (Some(3), None)
    );
}

/// A write job that writes `key` and then refuses with "no".
fn refuses_after_writing<T>(
    key: &'static str,
) -> impl Fn(&WriteTransaction) -> Result<T, String> + Send + 'static {
    move |txn| {
        put(txn, key, 0).map_err(|e| e.to_string())?;
        Err("no".to_string())
    }
}

/// A write job that counts its runs and answers how many there were.
fn counted(
    key: &'static str,
    runs: &Arc<AtomicUsize>,
) -> impl Fn(&WriteTransaction) -> Result<usize, String> + Send + 'static {
    let runs = runs.clone();
    move |txn| {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        put(txn, key, n as u64).map_err(|e| e.to_string())?;
        Ok(n)
    }
}

#[tokio::test]
async fn jobs_before_a_rejected_one_run_again_once_and_answer_their_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hold = hold(&store).await;
    let before = commits(&store);
    let [a_runs, c_runs, e_runs] = [(); 3].map(|()| Arc::new(AtomicUsize::new(0)));
    let a = spawn_write(&store, counted("a", &a_runs));
    let b = spawn_write(&store, refuses_after_writing::<usize>("b"));
    let c = spawn_write(&store, counted("c", &c_runs));
    let d = spawn_write(&store, refuses_after_writing::<usize>("d"));
    let e = spawn_write(&store, counted("e", &e_runs));
    hold.release_after(&store, 5).await;
    // The hold and `a` shared the transaction `b` wrote in, so they ran again; `c` ran after
    // them (they were committed non-durably) and again after `d`. `e` ran once.
    assert_eq!(a.await.unwrap().unwrap(), 2, "a answers its second run");
    assert!(matches!(b.await.unwrap(), Err(WriteError::Rejected(_))));
    assert_eq!(c.await.unwrap().unwrap(), 2);
    assert!(matches!(d.await.unwrap(), Err(WriteError::Rejected(_))));
    assert_eq!(e.await.unwrap().unwrap(), 1);
    assert_eq!(commits(&store), before + 1, "still one durable commit");
    drop(store);
    let store = open(&dir);
    let got = [
        get(&store, "a").await,
        get(&store, "b").await,
        get(&store, "c").await,
        get(&store, "d").await,
        get(&store, "e").await,
    ];
    assert_eq!(
        got,
        [Some(2), None, Some(2), None, Some(1)],
        "a..e after reopen"
    );
}

#[tokio::test]
async fn a_job_that_fails_when_run_again_is_answered_with_that_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hold = hold(&store).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    // Writes on its first run, refuses on its second: what a job reading the clock might do.
    let flaky = spawn_write(&store, move |txn| {
        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
        put(txn, "flaky", n as u64).map_err(|e| e.to_string())?;
        if n == 2 {
            Err("changed its mind".to_string())
        } else {
            Ok(n)
        }
    });
    let c_runs = Arc::new(AtomicUsize::new(0));
    let c = spawn_write(&store, counted("c", &c_runs));
    let b = spawn_write(&store, refuses_after_writing::<usize>("b"));
    hold.release_after(&store, 3).await;
    assert!(
        matches!(flaky.await.unwrap(), Err(WriteError::Rejected(e)) if e == "changed its mind")
    );
    assert!(matches!(b.await.unwrap(), Err(WriteError::Rejected(_))));
    // `c` ran in the shared transaction; the run after `b`'s refusal stopped at `flaky`, before
    // reaching it; the run after that, without `flaky`, is its second.
    assert_eq!(c.await.unwrap().unwrap(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(get(&store, "flaky").await, None);
    assert_eq!(get(&store, "b").await, None);
    assert_eq!(get(&store, "c").await, Some(2));
}

#[tokio::test]
async fn a_panicking_job_is_isolated_and_the_writer_survives() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hold = hold(&store).await;
    let a = spawn_write(&store, |txn| put(txn, "a", 1));
    let b = spawn_write(&store, |txn| {
        put(txn, "b", 2)?;
        panic!("boom") as Result<(), StoreError>
    });
    let c = spawn_write(&store, |txn| put(txn, "c", 3));
    hold.release_after(&store, 3).await;
    a.await.unwrap().unwrap();
    match b.await.unwrap() {
        Err(WriteError::Store(StoreError::Panicked { job, message, path })) => {
            assert_eq!((job, message.as_str()), ("write", "boom"));
            assert_eq!(path, store.path());
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    c.await.unwrap().unwrap();
    assert_eq!(get(&store, "a").await, Some(1));
    assert_eq!(get(&store, "b").await, None);
    assert_eq!(get(&store, "c").await, Some(3));
    // The writer thread is still there.
    store.write(|txn| put(txn, "d", 4)).await.unwrap();
    assert_eq!(get(&store, "d").await, Some(4));
}

#[tokio::test]
async fn reads_see_acknowledged_writes_and_nothing_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.write(|txn| put(txn, "a", 1)).await.unwrap();
    assert_eq!(get(&store, "a").await, Some(1), "read after write");

    // "b" is committed non-durably (a job is queued behind it); the next job then blocks, so the
    // batch's durable commit has not happened yet. A read must not see "b".
    let hold = hold(&store).await;
    let b = spawn_write(&store, |txn| put(txn, "b", 2));
    let (in_c, mut c_running) = mpsc::unbounded_channel();
    let (release_c, c_released) = std::sync::mpsc::channel::<()>();
    let c = spawn_write(&store, move |txn| {
        let _ = in_c.send(());
        let _ = c_released.recv();
        put(txn, "c", 3)
    });
    hold.release_after(&store, 2).await;
    c_running.recv().await.unwrap();
    // A fresh redb read transaction would see "b" here (it sees non-durable commits).
    assert_eq!(
        get(&store, "b").await,
        None,
        "not durable yet, not readable"
    );
    release_c.send(()).unwrap();
    b.await.unwrap().unwrap();
    c.await.unwrap().unwrap();
    assert_eq!(get(&store, "b").await, Some(2));
}

#[tokio::test]
async fn read_errors_name_the_file_and_panics_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let e = store.read(|_| decode::<u64>(&[9, b'1'])).await.unwrap_err();
    assert!(
        matches!(e, StoreError::UnknownFormat { found: 9, .. }),
        "{e:?}"
    );
    assert_eq!(e.path(), store.path());
    let e = store
        .read(|_| -> Result<(), _> { panic!("oops") })
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Panicked { job: "read", .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn commit_watchers_wake_after_a_durable_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut rx = store.commits();
    assert!(!rx.has_changed().unwrap());
    store.write(|txn| put(txn, "a", 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*rx.borrow(), 1);
    // A batch of only rejected jobs commits nothing and wakes nobody.
    let _ = store.write(|_| Err::<(), _>(())).await;
    assert!(!rx.has_changed().unwrap());
}

#[tokio::test]
async fn dropping_finishes_queued_jobs_and_a_reopen_sees_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for (i, key) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        store
            .write(move |txn| put(txn, key, i as u64))
            .await
            .unwrap();
    }
    // Jobs whose callers gave up (futures dropped) still run when the store is dropped.
    let hold = hold(&store).await;
    let abandoned: Vec<_> = (0..3u64)
        .zip(["x", "y", "z"])
        .map(|(i, key)| spawn_write(&store, move |txn| put(txn, key, i)))
        .collect();
    until_queued(&store, 3).await;
    for task in &abandoned {
        task.abort();
    }
    hold.task.abort();
    for task in abandoned {
        assert!(task.await.unwrap_err().is_cancelled());
    }
    assert!(hold.task.await.unwrap_err().is_cancelled());
    // `store` is now the last handle, and the hold still occupies the writer: the drop below
    // starts while three jobs are queued, and must let them commit before it returns.
    let path = store.path().to_path_buf();
    let release = hold.release;
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        release.send(()).unwrap();
    });
    drop(store);
    releaser.join().unwrap();
    // The file is closed once drop returns: a second open would fail while it is held.
    let store = Store::open(&path).unwrap();
    for (key, value) in [("a", 0), ("e", 4), ("x", 0), ("z", 2)] {
        assert_eq!(get(&store, key).await, Some(value), "{key}");
    }
    assert!(store.file_size() > 0);
    assert!(matches!(Store::open(&path), Err(StoreError::Open { .. })));
}

/// A backend whose fsync can be made to fail, standing in for a full or failing disk.
#[derive(Debug, Default)]
struct FlakyDisk {
    memory: redb::backends::InMemoryBackend,
    fail_sync: Arc<AtomicBool>,
}

impl redb::StorageBackend for FlakyDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.memory.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.memory.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.memory.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.memory.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.memory.write(offset, data)
    }
}

#[tokio::test]
async fn a_failed_commit_fails_its_whole_batch_and_poisons_the_store() {
    let disk = FlakyDisk::default();
    let fail_sync = disk.fail_sync.clone();
    let db = redb::Builder::new().create_with_backend(disk).unwrap();
    let store = Store::start(Path::new("flaky.redb"), db, WIDE).unwrap();
    store.write(|txn| put(txn, "before", 1)).await.unwrap();

    let hold = hold(&store).await;
    let a = spawn_write(&store, |txn| put(txn, "a", 1));
    let b = spawn_write(&store, |txn| put(txn, "b", 2));
    let r = spawn_write(&store, |_| Err::<(), _>("rejected"));
    until_queued(&store, 3).await;
    fail_sync.store(true, Ordering::SeqCst);
    // Dropped once sent: the rejection makes the hold run again, and it must not wait then.
    let release = hold.release;
    release.send(()).unwrap();
    drop(release);
    assert!(matches!(
        hold.task.await.unwrap(),
        Err(WriteError::Store(StoreError::Commit { .. }))
    ));
    for t in [a, b] {
        match t.await.unwrap() {
            Err(WriteError::Store(e @ StoreError::Commit { .. })) => {
                assert!(e.to_string().contains("injected fsync failure"), "{e}");
                assert_eq!(e.path(), Path::new("flaky.redb"));
            }
            other => panic!("expected a commit error, got {other:?}"),
        }
    }
    // A rejection is the job's own answer, whatever happened to the batch.
    assert!(matches!(
        r.await.unwrap(),
        Err(WriteError::Rejected("rejected"))
    ));

    // Later writes are refused even once the disk recovers; reads keep the last durable state.
    fail_sync.store(false, Ordering::SeqCst);
    let later = store.write(|txn| put(txn, "later", 3)).await;
    assert!(
        matches!(later, Err(WriteError::Store(StoreError::Poisoned { .. }))),
        "{later:?}"
    );
    assert_eq!(get(&store, "before").await, Some(1));
    assert_eq!(get(&store, "a").await, None);
    assert_eq!(get(&store, "later").await, None);
}

/// A file whose writes can be made to fail, as on a full disk.
#[derive(Debug)]
struct FullDisk {
    file: redb::backends::FileBackend,
    full: Arc<AtomicBool>,
}

impl redb::StorageBackend for FullDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.file.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }
}

#[tokio::test]
async fn a_poisoned_store_reopens_once_the_disk_takes_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.redb");
    let full = Arc::new(AtomicBool::new(false));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap();
    let disk = FullDisk {
        file: redb::backends::FileBackend::new(file).unwrap(),
        full: full.clone(),
    };
    let db = redb::Builder::new().create_with_backend(disk).unwrap();
    let limits = Limits {
        reopen_every: Duration::from_millis(200),
        ..WIDE
    };
    let store = Store::start(&path, db, limits).unwrap();
    let mut failures = store.failures();
    store.write(|txn| put(txn, "before", 1)).await.unwrap();
    assert_eq!(*failures.borrow_and_update(), None);

    full.store(true, Ordering::SeqCst);
    let failed = store.write(|txn| put(txn, "during", 2)).await;
    assert!(
        matches!(failed, Err(WriteError::Store(StoreError::Commit { .. }))),
        "{failed:?}"
    );
    let cause = failures.borrow_and_update().clone();
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("No space left on device")),
        "{cause:?}"
    );
    // Within `reopen_every` of the failure: refused at once, and reads still answer.
    let refused = store.write(|txn| put(txn, "soon", 3)).await;
    assert!(
        matches!(refused, Err(WriteError::Store(StoreError::Poisoned { .. }))),
        "{refused:?}"
    );
    assert_eq!(get(&store, "before").await, Some(1));

    // The old handle stays broken (its disk is still "full"), but the file can be reopened.
    tokio::time::sleep(Duration::from_millis(250)).await;
    store.write(|txn| put(txn, "after", 4)).await.unwrap();
    assert_eq!(*failures.borrow_and_update(), None);
    assert_eq!(get(&store, "before").await, Some(1));
    assert_eq!(get(&store, "after").await, Some(4));
    assert_eq!(get(&store, "soon").await, None);
    assert!(!dir.path().join("full.redb.probe").exists());
    // And what was written survives closing and opening the file again.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(get(&store, "after").await, Some(4));
    assert_eq!(get(&store, "before").await, Some(1));
}
