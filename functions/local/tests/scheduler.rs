//! The in-process scheduler, driven by tokio's paused clock: hours of schedule pass in
//! microseconds, and no test sleeps for real.

use std::sync::Arc;
use std::time::Duration;

use backup_core::api::{JobStatus, RunStatus, Trigger};
use backup_engine::clock::{ManualClock, TokioClock};
use backup_engine::ports::TriggerScheduler;
use backup_engine::requests::{directory_cluster, hourly_job};
use backup_engine::{JobRecord, Scope};
use backup_local::{Firing, LocalMode, LocalOptions, LocalScheduler};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

fn at(minutes: i64, seconds: i64) -> DateTime<Utc> {
    // 2026-11-27T05:00:00Z
    DateTime::from_timestamp(1_795_755_600 + minutes * 60 + seconds, 0).unwrap()
}

fn job(id: &str, schedule: &str) -> JobRecord {
    JobRecord {
        id: id.to_owned(),
        scope: Scope::new("default", "default").unwrap(),
        description: "test".into(),
        schedule: schedule.into(),
        status: JobStatus::Active,
        cluster_id: "c1".into(),
        template: "{cluster}".into(),
        max_backup_count: 1,
        created: at(0, 0),
    }
}

async fn next(rx: &mut mpsc::Receiver<Firing>) -> Option<Firing> {
    // Four virtual hours; with paused time this returns at once either way.
    tokio::time::timeout(Duration::from_secs(4 * 3600), rx.recv())
        .await
        .ok()
        .flatten()
}

#[tokio::test(start_paused = true)]
async fn fires_each_job_at_its_scheduled_instants_in_utc() {
    // GIVEN the clock at 05:59:30 and an hourly job and a job at 07:30
    let clock = Arc::new(TokioClock::starting_at(at(59, 30)));
    let scheduler = LocalScheduler::new(clock.clone());
    scheduler
        .register(&job("hourly", "0 * * * *"))
        .await
        .unwrap();
    scheduler
        .register(&job("half", "30 7 * * *"))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    tokio::spawn(scheduler.clone().run(tx));
    // WHEN time passes THEN firings come in order, each with its scheduled instant
    let expected = [
        ("hourly", at(60, 0)),
        ("hourly", at(120, 0)),
        ("half", at(150, 0)),
        ("hourly", at(180, 0)),
    ];
    for (job_id, scheduled) in expected {
        let firing = next(&mut rx).await.expect("a firing");
        assert_eq!(
            (firing.job_id.as_str(), firing.scheduled),
            (job_id, scheduled)
        );
        // AND it is sent at (not before) its instant
        assert!(clock.now_for_test() >= scheduled);
    }
}

#[tokio::test(start_paused = true)]
async fn a_removed_job_stops_firing_and_a_new_one_starts() {
    let clock = Arc::new(TokioClock::starting_at(at(30, 0)));
    let scheduler = LocalScheduler::new(clock.clone());
    let (tx, mut rx) = mpsc::channel(8);
    tokio::spawn(scheduler.clone().run(tx));
    // GIVEN the scheduler already sleeping with no jobs, WHEN a job is added
    tokio::time::sleep(Duration::from_secs(5)).await;
    scheduler.register(&job("a", "0 * * * *")).await.unwrap();
    // THEN its first firing is not missed
    assert_eq!(next(&mut rx).await.unwrap().scheduled, at(60, 0));
    // WHEN it is removed THEN nothing fires any more
    scheduler.remove("a").await.unwrap();
    assert_eq!(next(&mut rx).await, None);
    assert!(scheduler.armed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rearmed_job_fires_on_its_new_schedule_only() {
    let clock = Arc::new(TokioClock::starting_at(at(30, 0)));
    let scheduler = LocalScheduler::new(clock.clone());
    let (tx, mut rx) = mpsc::channel(8);
    // GIVEN an hourly job, the scheduler sleeping towards its 06:00 firing
    let hourly = job("a", "0 * * * *");
    scheduler.register(&hourly).await.unwrap();
    tokio::spawn(scheduler.clone().run(tx));
    tokio::time::sleep(Duration::from_secs(5)).await;
    // WHEN its schedule changes to 07:30 daily (what updating a job does)
    let daily = job("a", "30 7 * * *");
    scheduler.rearm(&hourly, &daily).await.unwrap();
    // THEN the next firing is the new schedule's, not the old one's 06:00
    assert_eq!(scheduler.armed(), [("a".to_owned(), Some(at(150, 0)))]);
    assert_eq!(next(&mut rx).await.unwrap().scheduled, at(150, 0));
}

#[tokio::test(start_paused = true)]
async fn missed_firings_are_not_caught_up() {
    // GIVEN a job registered at 06:00:30, after its 06:00 firing (the server was down)
    let clock = Arc::new(TokioClock::starting_at(at(60, 30)));
    let scheduler = LocalScheduler::new(clock);
    scheduler.register(&job("a", "0 * * * *")).await.unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    tokio::spawn(scheduler.clone().run(tx));
    // THEN the first firing is 07:00, not 06:00
    assert_eq!(next(&mut rx).await.unwrap().scheduled, at(120, 0));
}

/// `TokioClock::now` through the port, for readability above.
trait NowForTest {
    fn now_for_test(&self) -> DateTime<Utc>;
}

impl NowForTest for TokioClock {
    fn now_for_test(&self) -> DateTime<Utc> {
        backup_engine::ports::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_mode_runs_a_job_when_its_schedule_fires() {
    // GIVEN a local server whose clock reads 05:59:59.8 and an hourly job
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), b"data").unwrap();
    let clock = Arc::new(ManualClock::new(
        at(59, 59) + chrono::Duration::milliseconds(800),
    ));
    let mut options = LocalOptions::new(dir.path().join("state"));
    options.clock = clock.clone();
    let local = LocalMode::start(options).await.unwrap();
    let scope = Scope::new("default", "default").unwrap();
    local
        .engine
        .register_cluster(
            &scope,
            &directory_cluster("c1", "Orders", data.to_string_lossy()),
        )
        .await
        .unwrap();
    let job = local
        .engine
        .create_job(&scope, &hourly_job("c1", "{cluster} {datetime}", 3))
        .await
        .unwrap();
    // WHEN the clock reaches 06:00
    clock.set(at(60, 0) + chrono::Duration::milliseconds(100));
    // THEN within a moment the job has run for 06:00 by schedule
    let mut item = None;
    for _ in 0..3000 {
        let items = local
            .engine
            .list_history(&scope, Some(&job.id), &backup_engine::ListQuery::default())
            .await
            .unwrap()
            .items;
        if let Some(done) = items.into_iter().find(|i| i.status != RunStatus::Running) {
            item = Some(done);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let item = item.expect("the job ran within 30 s");
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert_eq!(item.scheduled_time, at(60, 0));
    assert_eq!(item.trigger, Trigger::Schedule);
    let backups = local
        .engine
        .list_backups(
            &scope,
            &Default::default(),
            &backup_engine::ListQuery::default(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(backups[0].description, "Orders 2026-11-27 06:00:00 UTC");
    assert!(local.shutdown(Duration::from_secs(5)).await);
}
